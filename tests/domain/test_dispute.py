"""The dispute kind (矛盾糾紛, DOMAIN.md section 1), on the aggregate alone.

Every rule has a test that the allowed path works and one that the forbidden path is
refused with its code and appends nothing: the version, the pending events and the
state are as they were.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain import rules
from domain.case import Actor, Context
from domain.clock import cst_date
from domain.dispute import OUTCOMES, Dispute
from domain.errors import CasetrailError
from tests.dispute_builders import event_data, registration

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 on 2026-03-02 in China Standard Time
REGISTERED_ON = date(2026, 3, 2)
WORKER = Actor(user_id="u_worker", role="caseworker", unit="320102")
SUPERVISOR = Actor(user_id="u_super", role="supervisor", unit="320102")
AUDITOR = Actor(user_id="u_audit", role="auditor", unit="320000")
ADMIN = Actor(user_id="u_admin", role="admin", unit="320000")
DEFAULT = rules.MEDIATION_TIME_LIMITS["default"]
COURT = rules.MEDIATION_TIME_LIMITS["court_referred"]
BUILT: Any = object()  # `refused(data=...)` default: valid data from the builders


def day(n: int) -> datetime:
    """`n` days after registration, at the same time of day."""
    return T0 + timedelta(days=n)


def ctx(now: datetime = T0, actor: Actor = WORKER) -> Context:
    return Context(actor=actor, now=now)


def register(now: datetime = T0, **changes: Any) -> Any:
    return Dispute.open("320102", registration(**changes), ctx(now))


def record(
    case: Dispute,
    event_type: str,
    now: datetime = T0,
    actor: Actor = WORKER,
    **changes: Any,
) -> Any:
    case.record(event_type, event_data(event_type, cst_date(now), **changes), ctx(now, actor))
    return case


def refused(
    case: Dispute,
    event_type: str,
    code: str,
    *,
    data: Any = BUILT,
    now: datetime = T0,
    actor: Actor = WORKER,
    **changes: Any,
) -> CasetrailError:
    """Records an event that must be refused with `code`, and checks nothing was appended."""
    if data is BUILT:
        data = event_data(event_type, cst_date(now), **changes)
    version = case.version
    pending = list(case.pending_events)
    state = case.state(now)
    with pytest.raises(CasetrailError) as refusal:
        case.record(event_type, data, ctx(now, actor))
    assert refusal.value.code == code, refusal.value.message
    assert case.version == version
    assert case.pending_events == pending
    assert case.state(now) == state
    return refusal.value


def triaged(**changes: Any) -> Any:
    return record(register(**changes), "DisputeTriaged")


def assigned(**changes: Any) -> Any:
    return record(triaged(**changes), "DisputeAssigned")


def in_mediation(**changes: Any) -> Any:
    return record(assigned(**changes), "MediationSessionHeld")


def returned() -> Any:
    return record(in_mediation(), "DisputeReturned")


def agreed(**changes: Any) -> Any:
    return record(in_mediation(), "AgreementReached", **changes)


def in_status(status: str) -> Any:
    """A dispute brought by valid events to `status`."""
    paths = {
        "registered": register,
        "triaged": triaged,
        "assigned": assigned,
        "in_mediation": in_mediation,
        "returned": returned,
        "agreement_reached": agreed,
        "mediation_failed": lambda: record(in_mediation(), "MediationFailed"),
        "refused": lambda: record(assigned(), "MediationRefused"),
        "withdrawn": lambda: record(triaged(), "DisputeWithdrawn"),
        "closed": lambda: record(agreed(), "DisputeClosed"),
    }
    case = paths[status]()
    assert case.status == status
    return case


OPEN_STATUSES = [
    "registered",
    "triaged",
    "assigned",
    "in_mediation",
    "returned",
    "agreement_reached",
    "mediation_failed",
    "refused",
    "withdrawn",
]
BEFORE_OUTCOME = ["registered", "triaged", "assigned", "in_mediation", "returned"]


# --- registration ---------------------------------------------------------------------------


def test_a_registered_dispute_starts_registered_with_the_ordinary_time_limit() -> None:
    case = register()
    state = case.state(T0)
    assert state["status"] == "registered"
    assert state["kind"] == "dispute"
    assert state["version"] == 1
    assert state["registered_on"] == "2026-03-02"
    assert state["deadline"] == (REGISTERED_ON + timedelta(days=10)).isoformat()
    assert state["overdue"] is False
    assert [type(e).__name__ for e in case.pending_events] == ["DisputeRegistered"]


def test_the_time_limits_are_the_seeds_figures() -> None:
    assert (DEFAULT.ordinary_days, DEFAULT.major_days, DEFAULT.max_months) == (10, 20, 2)
    assert (COURT.ordinary_days, COURT.major_days) == (30, 30)
    assert rules.TIME_LIMIT_CLASS_BY_SOURCE["court"] == "court_referred"


def test_registration_is_dated_by_the_calendar_day_in_china_standard_time() -> None:
    # 16:30 UTC on 1 March is already 00:30 on 2 March in CST.
    case = register(now=datetime(2026, 3, 1, 16, 30, tzinfo=UTC))
    assert case.registered_on == date(2026, 3, 2)
    assert case.deadline == date(2026, 3, 12)


@pytest.mark.parametrize("people", [5, 6, 300])
def test_five_or_more_people_involved_make_a_collective_dispute(people: int) -> None:
    assert register(people_involved=people).state(T0)["collective"] is True


@pytest.mark.parametrize("people", [2, 4])
def test_fewer_than_five_people_involved_is_not_a_collective_dispute(people: int) -> None:
    assert register(people_involved=people).state(T0)["collective"] is False


def test_the_collective_threshold_is_five() -> None:
    assert rules.COLLECTIVE_DISPUTE_THRESHOLD == 5


def test_a_dispute_needs_two_parties() -> None:
    data = registration()
    data["parties"] = data["parties"][:1]
    with pytest.raises(CasetrailError) as refusal:
        Dispute.open("320102", data, ctx())
    assert refusal.value.code == "invalid_data"
    assert "parties" in refusal.value.details


def test_a_dispute_needs_an_applicant_and_a_respondent() -> None:
    data = registration()
    for party in data["parties"]:
        party["role"] = "applicant"
    with pytest.raises(CasetrailError) as refusal:
        Dispute.open("320102", data, ctx())
    assert refusal.value.code == "parties_on_both_sides"


def test_party_id_numbers_and_phones_are_optional() -> None:
    data = registration()
    data["parties"] = [
        {"name": "甲", "role": "applicant"},
        {"name": "乙", "role": "respondent", "phone": "+86 139 0000 0000"},
    ]
    assert Dispute.open("320102", data, ctx()).status == "registered"


def test_a_registered_dispute_cannot_be_registered_again() -> None:
    refused(register(), "DisputeRegistered", "case_already_open", data=registration())


def test_an_unknown_event_type_is_refused() -> None:
    error = refused(register(), "DisputeExploded", "unknown_event_type", data={})
    assert "DisputeTriaged" in error.details["known"]


@pytest.mark.parametrize("actor", [AUDITOR, ADMIN], ids=["auditor", "admin"])
def test_only_caseworkers_and_supervisors_write(actor: Actor) -> None:
    refused(in_mediation(), "HearingHeld", "role_cannot_write", actor=actor)
    with pytest.raises(CasetrailError) as refusal:
        Dispute.open("320102", registration(), ctx(actor=actor))
    assert refusal.value.code == "role_cannot_write"


# --- schemas --------------------------------------------------------------------------------


def test_an_unknown_field_is_refused_and_named() -> None:
    data = event_data("DisputeTriaged", REGISTERED_ON, colour="red")
    error = refused(register(), "DisputeTriaged", "invalid_data", data=data)
    assert "colour" in error.details


def test_a_missing_field_is_refused_and_named() -> None:
    data = event_data("DisputeTriaged", REGISTERED_ON)
    del data["complexity"]
    error = refused(register(), "DisputeTriaged", "invalid_data", data=data)
    assert list(error.details) == ["complexity"]


@pytest.mark.parametrize("bad", ["2026-02-30", "02/03/2026", "tomorrow", "", 20260302])
def test_a_bad_date_is_refused_and_named(bad: Any) -> None:
    error = refused(assigned(), "MediationSessionHeld", "invalid_data", held_on=bad)
    assert list(error.details) == ["held_on"]


def test_an_over_long_text_is_refused_and_named() -> None:
    error = refused(assigned(), "MediationSessionHeld", "invalid_data", notes="x" * 4001)
    assert list(error.details) == ["notes"]
    error = refused(triaged(), "DisputeAssigned", "invalid_data", handling_body="x" * 201)
    assert list(error.details) == ["handling_body"]


def test_texts_up_to_their_bound_are_accepted() -> None:
    case = record(assigned(), "MediationSessionHeld", notes="x" * 4000)
    assert case.status == "in_mediation"


def test_an_over_long_summary_refuses_the_registration() -> None:
    with pytest.raises(CasetrailError) as refusal:
        Dispute.open("320102", registration(summary="x" * 4001), ctx())
    assert refusal.value.code == "invalid_data"
    assert list(refusal.value.details) == ["summary"]


def test_a_bad_party_field_is_named_inside_the_party() -> None:
    data = registration()
    data["parties"][0]["id_number"] = "12345"
    with pytest.raises(CasetrailError) as refusal:
        Dispute.open("320102", data, ctx())
    assert refusal.value.code == "invalid_data"
    assert "id_number" in refusal.value.details["parties"][0]


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("category", "alien_abduction"),
        ("scope", "planetary"),
        ("source", "rumour"),
        ("people_involved", 1),
        ("people_involved", "many"),
        ("center_unit", "32"),
    ],
)
def test_registration_values_outside_their_lists_are_refused_and_named(
    field: str, bad: Any
) -> None:
    with pytest.raises(CasetrailError) as refusal:
        Dispute.open("320102", registration(**{field: bad}), ctx())
    assert refusal.value.code == "invalid_data"
    assert list(refusal.value.details) == [field]


@pytest.mark.parametrize("data", [None, [], "text", 7])
def test_data_that_is_not_an_object_is_refused(data: Any) -> None:
    error = refused(register(), "DisputeTriaged", "invalid_data", data=data)
    assert "data" in error.details


# --- triage and time limits -----------------------------------------------------------------


def test_triage_of_an_ordinary_local_dispute_sets_ten_days_from_registration() -> None:
    case = record(register(), "DisputeTriaged", now=day(3), complexity="ordinary")
    assert case.status == "triaged"
    assert case.deadline == REGISTERED_ON + timedelta(days=DEFAULT.ordinary_days)
    assert case.deadline == date(2026, 3, 12)


def test_triage_of_a_major_dispute_sets_twenty_days_from_registration() -> None:
    case = record(register(), "DisputeTriaged", now=day(3), complexity="major")
    assert case.deadline == date(2026, 3, 22)


def test_triage_of_a_cross_region_dispute_sets_twenty_days() -> None:
    case = record(register(scope="cross_region"), "DisputeTriaged", complexity="ordinary")
    assert case.deadline == date(2026, 3, 22)


def test_a_cross_region_dispute_has_twenty_days_before_it_is_triaged() -> None:
    assert register(scope="cross_region").deadline == date(2026, 3, 22)


@pytest.mark.parametrize("complexity", ["ordinary", "major"])
def test_a_court_referred_dispute_has_thirty_days(complexity: str) -> None:
    case = register(source="court")
    assert case.time_limit_class == "court_referred"
    assert case.deadline == REGISTERED_ON + timedelta(days=30)
    record(case, "DisputeTriaged", complexity=complexity)
    assert case.deadline == date(2026, 4, 1)


def test_a_dispute_is_triaged_only_once() -> None:
    error = refused(triaged(), "DisputeTriaged", "not_allowed_in_status")
    assert error.details["status"] == "triaged"


@pytest.mark.parametrize("complexity", ["trivial", None])
def test_triage_needs_a_known_complexity(complexity: Any) -> None:
    error = refused(register(), "DisputeTriaged", "invalid_data", complexity=complexity)
    assert list(error.details) == ["complexity"]


def test_triage_keeps_a_supervisors_earlier_extension() -> None:
    case = record(register(), "DeadlineExtended", actor=SUPERVISOR, new_deadline="2026-04-20")
    record(case, "DisputeTriaged", complexity="major")
    assert case.deadline == date(2026, 4, 20)


# --- assignment, sessions, returns and joint handling ---------------------------------------


def test_assignment_follows_triage() -> None:
    case = record(triaged(), "DisputeAssigned", assigned_unit="320102001")
    assert case.status == "assigned"
    assert case.assigned_unit == "320102001"
    assert case.mediators == ["调解员甲"]


def test_assignment_before_triage_is_refused() -> None:
    refused(register(), "DisputeAssigned", "not_allowed_in_status")


def test_an_assigned_dispute_is_not_assigned_again_without_a_return() -> None:
    refused(assigned(), "DisputeAssigned", "already_assigned")


def test_a_session_puts_the_dispute_in_mediation() -> None:
    case = record(assigned(), "MediationSessionHeld")
    assert case.status == "in_mediation"
    record(case, "MediationSessionHeld", now=day(1))
    assert case.sessions == 2
    assert case.status == "in_mediation"


@pytest.mark.parametrize(
    "status", ["registered", "triaged", "returned", *sorted(OUTCOMES), "closed"]
)
def test_a_session_is_held_only_while_assigned_or_in_mediation(status: str) -> None:
    refused(in_status(status), "MediationSessionHeld", "not_allowed_in_status")


def test_a_session_cannot_be_dated_in_the_future() -> None:
    error = refused(assigned(), "MediationSessionHeld", "date_in_future", held_on="2026-03-03")
    assert error.details == {"field": "held_on"}


@pytest.mark.parametrize("status", ["assigned", "in_mediation"])
def test_a_dispute_returns_to_the_center_from_assigned_or_in_mediation(status: str) -> None:
    case = record(in_status(status), "DisputeReturned")
    assert case.status == "returned"
    assert case.returns == 1


@pytest.mark.parametrize(
    "status", ["registered", "triaged", "returned", *sorted(OUTCOMES), "closed"]
)
def test_a_return_is_refused_outside_assigned_and_in_mediation(status: str) -> None:
    refused(in_status(status), "DisputeReturned", "not_allowed_in_status")


def test_joint_handling_after_a_return_sends_the_dispute_back_to_assigned() -> None:
    case = record(returned(), "JointHandlingConvened")
    assert case.status == "assigned"
    assert case.joint_handling_convened is True


@pytest.mark.parametrize("status", ["triaged", "assigned", "in_mediation", "agreement_reached"])
def test_joint_handling_is_convened_only_after_a_return(status: str) -> None:
    refused(in_status(status), "JointHandlingConvened", "not_allowed_in_status")


def test_joint_handling_needs_two_departments() -> None:
    error = refused(returned(), "JointHandlingConvened", "invalid_data", departments=["住建局"])
    assert list(error.details) == ["departments"]


def test_a_returned_dispute_is_not_reassigned_before_joint_handling() -> None:
    refused(returned(), "DisputeAssigned", "reassignment_before_joint_handling")


def test_a_returned_dispute_may_be_reassigned_after_joint_handling() -> None:
    case = record(returned(), "JointHandlingConvened")
    record(case, "DisputeAssigned", handling_body="住建局", assigned_unit="320102001")
    assert case.status == "assigned"
    assert case.handling_body == "住建局"
    record(case, "MediationSessionHeld")
    record(case, "AgreementReached")
    assert case.status == "agreement_reached"


def test_one_joint_handling_allows_one_reassignment() -> None:
    case = record(returned(), "JointHandlingConvened")
    record(case, "DisputeAssigned", handling_body="住建局", assigned_unit="320102001")
    assert case.joint_handling_convened is False
    refused(case, "DisputeAssigned", "already_assigned", handling_body="街道办")
    record(case, "MediationSessionHeld")
    record(record(case, "DisputeReturned"), "JointHandlingConvened")
    record(case, "DisputeAssigned", handling_body="街道办")
    assert case.handling_body == "街道办"


def test_a_second_return_needs_its_own_joint_handling() -> None:
    case = record(record(returned(), "JointHandlingConvened"), "DisputeReturned")
    assert case.returns == 2
    refused(case, "DisputeAssigned", "reassignment_before_joint_handling")


# --- hearings, notices, early warnings ------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "field"),
    [("MediationSessionHeld", "held_on"), ("HearingHeld", "held_on")],
)
def test_a_meeting_is_dated_between_the_registration_and_today(event_type: str, field: str) -> None:
    error = refused(assigned(), event_type, "date_out_of_order", **{field: "2026-03-01"})
    assert error.details == {"field": field, "earliest": "2026-03-02"}
    error = refused(assigned(), event_type, "date_in_future", **{field: "2026-03-03"})
    assert error.details == {"field": field}
    record(assigned(), event_type, **{field: "2026-03-02"})


def test_a_public_notice_is_dated_between_the_registration_and_today() -> None:
    refused(agreed(), "PublicNoticePosted", "date_out_of_order", posted_on="2026-03-01")
    refused(agreed(), "PublicNoticePosted", "date_in_future", posted_on="2026-03-03")
    assert record(agreed(), "PublicNoticePosted", posted_on="2026-03-02").public_notices == 1


def test_an_agreement_takes_effect_between_the_registration_and_today() -> None:
    case = record(in_mediation(), "MediationSessionHeld", now=day(3))
    error = refused(
        case, "AgreementReached", "date_out_of_order", now=day(3), effective_on="2026-03-01"
    )
    assert error.details == {"field": "effective_on", "earliest": "2026-03-02"}
    error = refused(
        case, "AgreementReached", "date_in_future", now=day(3), effective_on="2026-03-06"
    )
    assert error.details == {"field": "effective_on"}
    record(case, "AgreementReached", now=day(3), effective_on="2026-03-04")
    assert case.agreement_effective_on == date(2026, 3, 4)


def test_performance_is_due_once_the_agreement_took_effect() -> None:
    case = in_mediation()
    error = refused(case, "AgreementReached", "date_out_of_order", performance_due="2026-03-01")
    assert error.details == {"field": "performance_due", "earliest": "2026-03-02"}
    record(case, "AgreementReached", performance_due="2026-03-02")


@pytest.mark.parametrize("status", BEFORE_OUTCOME)
def test_a_hearing_may_be_held_before_an_outcome(status: str) -> None:
    assert record(in_status(status), "HearingHeld").hearings == 1


@pytest.mark.parametrize("status", [*sorted(OUTCOMES), "closed"])
def test_a_hearing_after_an_outcome_is_refused(status: str) -> None:
    refused(in_status(status), "HearingHeld", "not_allowed_in_status")


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_notices_and_early_warnings_are_recorded_while_open(status: str) -> None:
    case = record(in_status(status), "PublicNoticePosted")
    record(case, "EarlyWarningRaised", risk="criminal_risk")
    assert case.public_notices == 1
    assert case.early_warnings == ["criminal_risk"]


def test_an_early_warning_names_a_known_risk() -> None:
    error = refused(register(), "EarlyWarningRaised", "invalid_data", risk="bad_weather")
    assert list(error.details) == ["risk"]


# --- deadline extension ---------------------------------------------------------------------


@pytest.mark.parametrize("status", BEFORE_OUTCOME)
def test_a_supervisor_may_extend_the_deadline_to_two_months_after_registration(
    status: str,
) -> None:
    case = record(
        in_status(status), "DeadlineExtended", actor=SUPERVISOR, new_deadline="2026-05-02"
    )
    assert case.deadline == date(2026, 5, 2)
    assert case.deadline_extended is True


def test_an_extension_past_two_months_after_registration_is_refused() -> None:
    error = refused(
        triaged(),
        "DeadlineExtended",
        "extension_beyond_limit",
        actor=SUPERVISOR,
        new_deadline="2026-05-03",
    )
    assert error.details == {"latest": "2026-05-02"}


def test_two_months_from_the_last_day_of_a_month_end_on_the_shorter_months_last_day() -> None:
    # Registered on 31 December (CST): two months later is 28 February, not 3 March.
    case = register(now=datetime(2025, 12, 31, 2, 0, tzinfo=UTC))
    error = refused(
        case,
        "DeadlineExtended",
        "extension_beyond_limit",
        actor=SUPERVISOR,
        new_deadline="2026-03-01",
    )
    assert error.details == {"latest": "2026-02-28"}
    record(case, "DeadlineExtended", actor=SUPERVISOR, new_deadline="2026-02-28")
    assert case.deadline == date(2026, 2, 28)


def test_a_court_referred_dispute_is_also_held_to_two_months() -> None:
    case = register(source="court")
    refused(
        case,
        "DeadlineExtended",
        "extension_beyond_limit",
        actor=SUPERVISOR,
        new_deadline="2026-05-03",
    )
    record(case, "DeadlineExtended", actor=SUPERVISOR, new_deadline="2026-05-02")


def test_the_deadline_is_extended_once() -> None:
    case = record(triaged(), "DeadlineExtended", actor=SUPERVISOR, new_deadline="2026-04-01")
    assert case.deadline_extensions == 1
    error = refused(
        case,
        "DeadlineExtended",
        "extension_already_granted",
        actor=SUPERVISOR,
        new_deadline="2026-04-20",
    )
    assert error.details == {"deadline": "2026-04-01"}


def test_a_township_supervisor_cannot_extend_the_deadline() -> None:
    township = Actor(user_id="u_town", role="supervisor", unit="320102001")
    refused(
        triaged(),
        "DeadlineExtended",
        "extension_needs_county_supervisor",
        actor=township,
        new_deadline="2026-04-01",
    )
    city = Actor(user_id="u_city", role="supervisor", unit="320100")
    record(triaged(), "DeadlineExtended", actor=city, new_deadline="2026-04-01")


def test_a_caseworker_cannot_extend_the_deadline() -> None:
    refused(triaged(), "DeadlineExtended", "supervisor_only", new_deadline="2026-04-01")


def test_an_extension_must_move_the_deadline_later() -> None:
    error = refused(
        triaged(),
        "DeadlineExtended",
        "extension_not_later",
        actor=SUPERVISOR,
        new_deadline="2026-03-12",
    )
    assert error.details == {"deadline": "2026-03-12"}


@pytest.mark.parametrize("status", [*sorted(OUTCOMES), "closed"])
def test_the_deadline_is_not_extended_after_an_outcome(status: str) -> None:
    refused(
        in_status(status),
        "DeadlineExtended",
        "not_allowed_in_status",
        actor=SUPERVISOR,
        new_deadline="2026-04-01",
    )


# --- supervision (督辦) ------------------------------------------------------------------------


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_a_supervisor_may_order_supervision_in_any_open_status(status: str) -> None:
    case = record(in_status(status), "SupervisionOrdered", actor=SUPERVISOR)
    assert case.supervision_orders == 1
    assert case.status == status


def test_a_caseworker_cannot_order_supervision() -> None:
    refused(triaged(), "SupervisionOrdered", "supervisor_only")


def test_supervision_of_a_closed_dispute_is_refused() -> None:
    refused(in_status("closed"), "SupervisionOrdered", "not_allowed_in_status", actor=SUPERVISOR)


# --- outcomes ----------------------------------------------------------------------------------


def test_an_agreement_after_a_session_concludes_the_mediation() -> None:
    case = record(in_mediation(), "AgreementReached", now=day(4))
    assert case.status == "agreement_reached"
    assert case.outcome == "agreement_reached"
    assert case.outcome_on == date(2026, 3, 6)
    # Without an explicit effective_on, the agreement takes effect the day it is reached.
    assert case.agreement_effective_on == date(2026, 3, 6)


def test_agreement_needs_a_mediation_session_first() -> None:
    refused(assigned(), "AgreementReached", "agreement_before_mediation")


def test_agreement_after_a_return_needs_a_session_since_the_reassignment() -> None:
    case = record(returned(), "JointHandlingConvened")
    assert case.sessions == 1
    refused(case, "AgreementReached", "agreement_before_mediation")


@pytest.mark.parametrize(
    "status", ["registered", "triaged", "returned", *sorted(OUTCOMES), "closed"]
)
def test_an_agreement_is_refused_outside_mediation(status: str) -> None:
    refused(in_status(status), "AgreementReached", "not_allowed_in_status")


def test_an_agreement_names_its_form() -> None:
    error = refused(in_mediation(), "AgreementReached", "invalid_data", form="telepathic")
    assert list(error.details) == ["form"]


def test_mediation_fails_after_a_session() -> None:
    case = record(in_mediation(), "MediationFailed", referral="arbitration")
    assert case.status == "mediation_failed"
    assert case.referral == "arbitration"


def test_mediation_that_never_met_cannot_fail() -> None:
    # Before any session, a party refuses or the applicant withdraws; the success rate
    # counts only mediations that took place.
    refused(assigned(), "MediationFailed", "failure_before_mediation")
    assert record(assigned(), "MediationRefused").status == "refused"


def test_after_a_joint_handling_mediation_may_fail_without_a_new_session() -> None:
    case = record(returned(), "JointHandlingConvened")
    assert record(case, "MediationFailed").status == "mediation_failed"


@pytest.mark.parametrize(
    "status", ["registered", "triaged", "returned", *sorted(OUTCOMES), "closed"]
)
def test_mediation_failure_is_refused_outside_mediation(status: str) -> None:
    refused(in_status(status), "MediationFailed", "not_allowed_in_status")


@pytest.mark.parametrize("status", ["registered", "triaged", "assigned"])
def test_a_refusal_ends_the_dispute_unmediated(status: str) -> None:
    case = record(in_status(status), "MediationRefused")
    assert case.status == "refused"
    assert case.outcome == "refused"
    assert case.sessions == 0


def test_no_mediation_takes_place_after_a_refusal() -> None:
    case = in_status("refused")
    refused(case, "MediationSessionHeld", "not_allowed_in_status")
    refused(case, "DisputeAssigned", "not_allowed_in_status")
    refused(case, "AgreementReached", "not_allowed_in_status")


def test_a_refusal_after_a_session_is_refused() -> None:
    refused(in_mediation(), "MediationRefused", "refusal_after_mediation")
    refused(returned(), "MediationRefused", "refusal_after_mediation")


@pytest.mark.parametrize("status", BEFORE_OUTCOME)
def test_a_dispute_may_be_withdrawn_before_an_outcome(status: str) -> None:
    assert record(in_status(status), "DisputeWithdrawn").status == "withdrawn"


@pytest.mark.parametrize("status", [*sorted(OUTCOMES), "closed"])
def test_a_withdrawal_after_an_outcome_is_refused(status: str) -> None:
    refused(in_status(status), "DisputeWithdrawn", "not_allowed_in_status")


@pytest.mark.parametrize("outcome", ["MediationRefused", "DisputeWithdrawn"])
def test_an_outcome_is_final_until_the_close(outcome: str) -> None:
    case = record(assigned(), outcome)
    for other in ("MediationFailed", "MediationRefused", "DisputeWithdrawn", "AgreementReached"):
        refused(case, other, "not_allowed_in_status")


# --- judicial confirmation (人民調解法 §33) ----------------------------------------------------------


def test_judicial_confirmation_may_be_requested_on_the_thirtieth_day() -> None:
    case = agreed()
    record(case, "JudicialConfirmationRequested", now=day(30), requested_on="2026-04-01")
    assert case.judicial_confirmation_requested_on == date(2026, 4, 1)
    assert case.status == "agreement_reached"


def test_judicial_confirmation_after_thirty_days_is_refused() -> None:
    error = refused(
        agreed(),
        "JudicialConfirmationRequested",
        "judicial_confirmation_out_of_time",
        now=day(31),
        requested_on="2026-04-02",
    )
    assert error.details == {"latest": "2026-04-01"}


def test_the_thirty_days_run_from_the_agreement_taking_effect() -> None:
    case = record(
        in_mediation(),
        "AgreementReached",
        now=day(8),
        effective_on="2026-03-10",
        performance_due="2026-04-10",
    )
    refused(
        case,
        "JudicialConfirmationRequested",
        "judicial_confirmation_out_of_time",
        now=day(10),
        requested_on="2026-03-09",
    )
    record(case, "JudicialConfirmationRequested", now=day(38), requested_on="2026-04-09")


def test_judicial_confirmation_cannot_be_dated_in_the_future() -> None:
    refused(agreed(), "JudicialConfirmationRequested", "date_in_future", requested_on="2026-03-05")


def test_judicial_confirmation_may_follow_the_close_of_an_agreement() -> None:
    case = record(agreed(), "DisputeClosed", now=day(2))
    record(case, "JudicialConfirmationRequested", now=day(5))
    assert case.judicial_confirmation_requested_on == date(2026, 3, 7)
    assert case.status == "closed"


def test_judicial_confirmation_is_requested_once() -> None:
    case = record(agreed(), "JudicialConfirmationRequested")
    refused(case, "JudicialConfirmationRequested", "judicial_confirmation_already_requested")


@pytest.mark.parametrize("status", ["in_mediation", "mediation_failed", "refused", "withdrawn"])
def test_judicial_confirmation_needs_an_agreement(status: str) -> None:
    refused(in_status(status), "JudicialConfirmationRequested", "not_allowed_in_status")


@pytest.mark.parametrize("outcome", ["MediationFailed", "DisputeWithdrawn"])
def test_judicial_confirmation_of_a_closed_dispute_without_agreement_is_refused(
    outcome: str,
) -> None:
    case = record(record(in_mediation(), outcome), "DisputeClosed")
    refused(case, "JudicialConfirmationRequested", "judicial_confirmation_without_agreement")


# --- close (辦結) and after --------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_a_dispute_closes_after_any_outcome(outcome: str) -> None:
    case = record(in_status(outcome), "DisputeClosed", now=day(5))
    assert case.status == "closed"
    assert case.closed_on == date(2026, 3, 7)
    assert case.concluded_on == date(2026, 3, 7)
    assert case.outcome == outcome


@pytest.mark.parametrize("status", BEFORE_OUTCOME)
def test_a_dispute_does_not_close_before_an_outcome(status: str) -> None:
    refused(in_status(status), "DisputeClosed", "not_allowed_in_status")


AFTER_CLOSE_FORBIDDEN = [
    name
    for name in (event.__name__ for event in Dispute.events)
    if name
    not in (
        "DisputeRegistered",
        "FollowUpVisited",
        "JudicialConfirmationRequested",
        "DisputeTurnedCriminal",
    )
]


@pytest.mark.parametrize("event_type", AFTER_CLOSE_FORBIDDEN)
def test_nothing_but_follow_up_and_judicial_confirmation_after_the_close(
    event_type: str,
) -> None:
    # As a supervisor, so that the status is what refuses, not the role.
    refused(
        in_status("closed"),
        event_type,
        "not_allowed_in_status",
        actor=SUPERVISOR,
        now=day(1),
    )


def test_a_closed_dispute_keeps_its_outcome() -> None:
    case = in_status("closed")
    record(case, "FollowUpVisited", now=day(3))
    record(case, "JudicialConfirmationRequested", now=day(3))
    assert case.status == "closed"
    assert case.outcome == "agreement_reached"


# --- follow-up (回訪) -------------------------------------------------------------------------------


def test_a_follow_up_visit_after_the_close_records_satisfaction() -> None:
    case = record(in_status("closed"), "FollowUpVisited", now=day(20), satisfaction=4)
    record(case, "FollowUpVisited", now=day(40), satisfaction=1, agreement_performed=False)
    assert case.follow_ups == 2
    assert case.last_satisfaction == 1
    assert case.agreement_performed is False


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_a_follow_up_visit_before_the_close_is_refused(status: str) -> None:
    refused(in_status(status), "FollowUpVisited", "not_allowed_in_status")


@pytest.mark.parametrize("satisfaction", [1, 5])
def test_satisfaction_runs_from_one_to_five(satisfaction: int) -> None:
    case = record(in_status("closed"), "FollowUpVisited", satisfaction=satisfaction)
    assert case.last_satisfaction == satisfaction


@pytest.mark.parametrize("satisfaction", [0, 6, -1, "good", None])
def test_satisfaction_outside_one_to_five_is_refused(satisfaction: Any) -> None:
    error = refused(
        in_status("closed"), "FollowUpVisited", "invalid_data", satisfaction=satisfaction
    )
    assert list(error.details) == ["satisfaction"]


def test_a_follow_up_visit_cannot_be_dated_before_the_close() -> None:
    case = record(agreed(), "DisputeClosed", now=day(5))
    error = refused(
        case, "FollowUpVisited", "follow_up_before_close", now=day(6), visited_on="2026-03-06"
    )
    assert error.details == {"closed_on": "2026-03-07"}


def test_a_follow_up_visit_cannot_be_dated_in_the_future() -> None:
    refused(in_status("closed"), "FollowUpVisited", "date_in_future", visited_on="2026-03-03")


# --- overdue and on time (derived from the clock, CST calendar days) ------------------------------


def test_a_dispute_is_not_overdue_until_its_deadline_day_ends_in_cst() -> None:
    case = triaged()  # deadline 2026-03-12
    last_moment = datetime(2026, 3, 12, 15, 59, 59, tzinfo=UTC)  # 23:59:59 CST
    assert case.derived(last_moment) == {"overdue": False, "days_left": 0}


def test_a_dispute_is_overdue_once_the_day_after_its_deadline_begins_in_cst() -> None:
    case = triaged()
    next_day = datetime(2026, 3, 12, 16, 0, tzinfo=UTC)  # 00:00 on 13 March in CST
    assert case.derived(next_day) == {"overdue": True, "days_left": -1}
    assert case.state(next_day)["overdue"] is True


def test_an_outcome_without_a_close_is_still_overdue() -> None:
    case = in_status("agreement_reached")
    assert case.derived(day(11))["overdue"] is True


def test_a_closed_dispute_is_never_overdue() -> None:
    case = in_status("closed")
    assert case.derived(day(365)) == {"overdue": False, "days_left": None}


def test_an_extension_lifts_the_overdue_flag() -> None:
    case = triaged()
    assert case.derived(day(11))["overdue"] is True
    record(case, "DeadlineExtended", now=day(11), actor=SUPERVISOR, new_deadline="2026-03-20")
    assert case.derived(day(11))["overdue"] is False


def test_a_dispute_closed_on_its_deadline_day_is_on_time() -> None:
    case = record(agreed(), "DisputeClosed", now=datetime(2026, 3, 12, 15, 59, tzinfo=UTC))
    assert case.concluded_on == date(2026, 3, 12)
    assert case.on_time is True


def test_a_dispute_closed_the_day_after_its_deadline_in_cst_is_late() -> None:
    case = record(agreed(), "DisputeClosed", now=datetime(2026, 3, 12, 16, 0, tzinfo=UTC))
    assert case.concluded_on == date(2026, 3, 13)
    assert case.on_time is False


def test_an_open_dispute_is_neither_on_time_nor_late_yet() -> None:
    assert in_status("agreement_reached").on_time is None


def test_a_deep_copy_of_a_case_is_equal_and_shares_nothing_that_can_change() -> None:
    """The repository hands each command a deep copy of a cached case (Case.__deepcopy__
    copies only values that can change): a command that fails half-way must leave the
    cached case as it was."""
    case = in_mediation()
    clone = copy.deepcopy(case)
    assert type(clone) is type(case) and clone.__dict__ == case.__dict__
    for name, value in vars(case).items():
        if isinstance(value, (list, dict)):
            assert getattr(clone, name) is not value, name
    clone.parties[0]["name"] = "改过"
    clone.mediators.append("某人")
    record(clone, "MediationSessionHeld")
    assert case.parties[0]["name"] != "改过" and "某人" not in case.mediators
    assert case.version == clone.version - 1 and case.sessions == clone.sessions - 1
    assert copy.deepcopy(case).__dict__ == case.__dict__
