"""Community correction (社區矯正): every rule allows its path and refuses the other,
and a refusal leaves the case as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import rules
from domain.case import Actor, CaseEvent, Context
from domain.clock import FixedClock
from domain.correction import Correction
from domain.errors import CasetrailError, InvalidData, NotPermitted, RuleViolation
from domain.sealing import SEAL_EVENTS, SealEvent

# 2026-03-02 09:00 in China Standard Time.
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

WORKER = Actor(user_id="u_worker", role="caseworker", unit="320102001")
VILLAGE_SUPERVISOR = Actor(user_id="u_village", role="supervisor", unit="320102001001")
TOWNSHIP_SUPERVISOR = Actor(user_id="u_township", role="supervisor", unit="320102001")
COUNTY_SUPERVISOR = Actor(user_id="u_county", role="supervisor", unit="320102")

IN_PROVINCE = "江蘇省南京市玄武區梅園新村街道大悲巷1號"
OUT_OF_PROVINCE = "上海市黃浦區南京東路1號"

DOMAIN_MD_EVENTS = {
    # 遷居 by the transfer the receiving unit accepts (docs/domain.md, transfers).
    "TransferProposed",
    "TransferAccepted",
    "TransferDeclined",
    "CorrectionSubjectReceived",
    "SubjectReportedIn",
    "CorrectionTeamFormed",
    "SupervisionLevelSet",
    "CheckInRecorded",
    "EducationSessionRecorded",
    "CommunityServiceRecorded",
    "CounsellingSessionRecorded",
    "LeaveRequested",
    "LeaveApproved",
    "LeaveDenied",
    "LeaveReturned",
    "ElectronicMonitoringStarted",
    "ElectronicMonitoringEnded",
    "ResidenceChanged",
    "ReprimandIssued",
    "WarningIssued",
    "PublicSecurityPenaltyProposed",
    "RevocationProposed",
    "SubjectCommitted",
    "SubjectAbsconded",
    "SubjectLocated",
    "Reoffended",
    "CorrectionCompleted",
    "SubjectDied",
}
ACTIVITIES = [
    "CheckInRecorded",
    "EducationSessionRecorded",
    "CommunityServiceRecorded",
    "CounsellingSessionRecorded",
]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def at(clock: FixedClock, actor: Actor = WORKER) -> Context:
    return Context(actor=actor, now=clock.now())


def on_day(clock: FixedClock, day: str) -> None:
    """Moves the clock to 10:00 CST of `day`."""
    clock.set(datetime.fromisoformat(f"{day}T02:00:00+00:00"))


def person(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "王某",
        "id_number": "320102199001011234",
        "gender": "male",
        "birth_date": "1990-01-01",
        "household_address": IN_PROVINCE,
        "residence_address": IN_PROVINCE,
        **overrides,
    }


def reception(**overrides: Any) -> dict[str, Any]:
    return {
        "person": person(),
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": "2026-02-20",
        "offence_date": "2025-06-01",
        "term_start": "2026-02-20",
        "term_end": "2027-02-19",
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
        **overrides,
    }


def received(clock: FixedClock, **overrides: Any) -> Correction:
    return Correction.open("320102001", reception(**overrides), at(clock))


def under_correction(clock: FixedClock, **overrides: Any) -> Correction:
    case = received(clock, **overrides)
    case.record("SubjectReportedIn", {"reported_on": "2026-02-25"}, at(clock))
    return case


def activity(type_name: str, on: str = "2026-03-01") -> dict[str, Any]:
    data: dict[str, Any] = {"on": on, "notes": "按時報告"}
    if type_name == "CommunityServiceRecorded":
        data["hours"] = 2.5
    return data


def leave(start: str, end: str, destination: str = "上海市") -> dict[str, Any]:
    return {"destination": destination, "from": start, "to": end}


def grounds(basis: str) -> dict[str, Any]:
    return {"grounds": {"basis": basis, "facts": "見案卷"}}


def committal(on: str) -> dict[str, Any]:
    return {
        "on": on,
        "decision": "人民法院裁定撤銷緩刑，收監執行",
        "decision_no": "（2026）蘇0102刑更12號",
    }


def refused(
    case: Correction,
    type_name: str,
    data: Any,
    ctx: Context,
    code: str,
    error: type[CasetrailError] = RuleViolation,
) -> CasetrailError:
    """Records an event that must be refused with `code`; the case must stay as it was."""
    version = case.version
    pending = [id(event) for event in case.pending_events]
    state = case.state(ctx.now)
    with pytest.raises(error) as raised:
        case.record(type_name, data, ctx)
    assert raised.value.code == code
    assert case.version == version
    assert [id(event) for event in case.pending_events] == pending
    assert case.state(ctx.now) == state
    return raised.value


def replayed(case: Correction) -> Correction:
    aggregate = None
    for event in case.pending_events:
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, Correction)
    return aggregate


# --- the kind ------------------------------------------------------------------------------


def test_every_event_type_of_domain_md_is_a_correction_event() -> None:
    # Besides DOMAIN.md's, the seal's events (domain.sealing: 犯罪記錄封存 of minors).
    names = {event.__name__ for event in Correction.events}
    assert names - {event.__name__ for event in SEAL_EVENTS} == DOMAIN_MD_EVENTS
    assert set(SEAL_EVENTS) <= set(Correction.events)
    assert Correction.kind == "correction"
    assert Correction.opening_event.__name__ == "CorrectionSubjectReceived"


def test_every_event_after_the_opening_is_limited_to_open_statuses() -> None:
    # A seal's events are recorded on a sealed record, after correction ended.
    for event_class in [e for e in Correction.events[1:] if not issubclass(e, SealEvent)]:
        assert event_class.allowed_in is not None
        assert event_class.allowed_in <= Correction.open_statuses


def test_event_data_refuses_unknown_fields(clock: FixedClock) -> None:
    case = under_correction(clock)
    error = refused(
        case,
        "CheckInRecorded",
        {**activity("CheckInRecorded"), "mood": "good"},
        at(clock),
        "invalid_data",
        InvalidData,
    )
    assert "mood" in error.details


def test_texts_are_bounded(clock: FixedClock) -> None:
    case = under_correction(clock)
    data = {"on": "2026-03-01", "notes": "很" * 4001}
    refused(case, "CheckInRecorded", data, at(clock), "invalid_data", InvalidData)


def test_state_is_the_same_when_the_events_are_replayed(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("CommunityServiceRecorded", activity("CommunityServiceRecorded"), at(clock))
    case.record("LeaveRequested", leave("2026-03-02", "2026-03-05"), at(clock))
    case.record("LeaveApproved", leave("2026-03-02", "2026-03-05"), at(clock, TOWNSHIP_SUPERVISOR))
    case.record("ReprimandIssued", SANCTIONS["ReprimandIssued"][0], at(clock, TOWNSHIP_SUPERVISOR))
    case.record("WarningIssued", SANCTIONS["WarningIssued"][0], at(clock, TOWNSHIP_SUPERVISOR))
    case.record(
        "ElectronicMonitoringStarted", monitoring("2026-04-01"), at(clock, COUNTY_SUPERVISOR)
    )
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    case.record("SubjectLocated", {"on": "2026-03-02"}, at(clock))
    assert replayed(case).state(clock.now()) == case.state(clock.now())


# --- reception and eligibility (社區矯正法 §17) ----------------------------------------------


def test_a_subject_living_in_the_province_is_received(clock: FixedClock) -> None:
    case = received(clock)
    state = case.state(clock.now())
    assert state["status"] == "received"
    assert state["kind"] == "correction"
    assert state["unit"] == "320102001"
    assert state["correction_type"] == "probation"
    assert state["term_end"] == "2027-02-19"
    assert state["report_in_due"] == "2026-03-02"
    assert state["minor"] is False
    assert case.names() == ["王某"]


def test_a_household_basis_needs_the_household_address_in_the_province(
    clock: FixedClock,
) -> None:
    data = reception(person=person(household_address=OUT_OF_PROVINCE))
    with pytest.raises(RuleViolation) as raised:
        Correction.open("320102001", data, at(clock))
    assert raised.value.code == "not_eligible_in_province"
    assert raised.value.details == {"basis": "household", "address_field": "household_address"}
    assert OUT_OF_PROVINCE not in raised.value.message


def test_a_household_in_the_province_is_enough_for_the_household_basis(
    clock: FixedClock,
) -> None:
    data = reception(person=person(residence_address=OUT_OF_PROVINCE))
    assert Correction.open("320102001", data, at(clock)).status == "received"


@pytest.mark.parametrize("basis", ["habitual_residence", "settled_non_local"])
def test_a_residence_basis_needs_the_residence_address_in_the_province(
    clock: FixedClock, basis: str
) -> None:
    eligibility = {"basis": basis, "evidence": "居住證及勞動合同"}
    settled = reception(
        person=person(household_address="安徽省合肥市廬陽區1號"), eligibility=eligibility
    )
    assert Correction.open("320102001", settled, at(clock)).status == "received"

    elsewhere = reception(person=person(residence_address=OUT_OF_PROVINCE), eligibility=eligibility)
    with pytest.raises(RuleViolation) as raised:
        Correction.open("320102001", elsewhere, at(clock))
    assert raised.value.code == "not_eligible_in_province"
    assert raised.value.details["address_field"] == "residence_address"


def test_an_address_in_simplified_script_counts_as_in_the_province(clock: FixedClock) -> None:
    data = reception(person=person(household_address="江苏省南京市玄武区1号"))
    assert Correction.open("320102001", data, at(clock)).status == "received"


def test_a_basis_outside_the_seeds_scope_is_refused(clock: FixedClock) -> None:
    data = reception(eligibility={"basis": "temporary_stay", "evidence": "暫住"})
    with pytest.raises(InvalidData) as raised:
        Correction.open("320102001", data, at(clock))
    assert "eligibility" in raised.value.details


def test_eligibility_needs_evidence(clock: FixedClock) -> None:
    with pytest.raises(InvalidData) as raised:
        Correction.open("320102001", reception(eligibility={"basis": "household"}), at(clock))
    assert "eligibility" in raised.value.details


def test_the_term_cannot_end_before_it_starts(clock: FixedClock) -> None:
    with pytest.raises(InvalidData) as raised:
        Correction.open("320102001", reception(term_end="2026-02-19"), at(clock))
    assert "term_end" in raised.value.details


def test_the_offence_comes_before_the_decision(clock: FixedClock) -> None:
    with pytest.raises(InvalidData) as raised:
        Correction.open("320102001", reception(offence_date="2026-02-21"), at(clock))
    assert "offence_date" in raised.value.details


def test_the_reception_is_of_a_decision_in_effect_and_a_term_begun(clock: FixedClock) -> None:
    """Gap 14: today is 2026-03-02. The decision has taken effect, the term has begun (not
    before the decision), the subject is born; the term may have ended already."""
    today, tomorrow = "2026-03-02", "2026-03-03"
    for changes, code, field in (
        ({"decision_effective_on": tomorrow, "term_start": tomorrow}, "date_in_future",
         "decision_effective_on"),
        ({"term_start": tomorrow}, "date_in_future", "term_start"),
        ({"term_start": "2026-02-19"}, "date_out_of_order", "term_start"),
        ({"person": person(birth_date=tomorrow), "offence_date": tomorrow,
          "decision_effective_on": tomorrow, "term_start": tomorrow}, "date_in_future",
         "person.birth_date"),
    ):  # fmt: skip
        with pytest.raises(RuleViolation) as raised:
            Correction.open("320102001", reception(**changes), at(clock))
        assert (raised.value.code, raised.value.details["field"]) == (code, field), changes
    for changes in (
        {"decision_effective_on": today, "term_start": today},
        {"term_start": "2026-02-25"},  # a parole's term from the release, after the ruling
        {
            "term_start": "2025-03-01",
            "decision_effective_on": "2025-03-01",
            "term_end": "2026-01-01",
            "offence_date": "2024-06-01",
        },
    ):
        assert Correction.open("320102001", reception(**changes), at(clock)).status == "received"


def test_the_reception_refuses_unknown_fields(clock: FixedClock) -> None:
    with pytest.raises(InvalidData) as raised:
        Correction.open("320102001", reception(religion="none"), at(clock))
    assert "religion" in raised.value.details


def test_a_subject_under_18_at_the_offence_is_a_minor(clock: FixedClock) -> None:
    data = reception(person=person(birth_date="2007-06-02"), offence_date="2025-06-01")
    assert Correction.open("320102001", data, at(clock)).state(clock.now())["minor"] is True


def test_a_subject_who_turned_18_before_the_offence_is_not_a_minor(clock: FixedClock) -> None:
    data = reception(person=person(birth_date="2007-06-01"), offence_date="2025-06-01")
    assert Correction.open("320102001", data, at(clock)).state(clock.now())["minor"] is False


# --- report-in (社區矯正法 §21) ---------------------------------------------------------------


def test_a_report_in_within_ten_days_is_on_time(clock: FixedClock) -> None:
    case = under_correction(clock)
    state = case.state(clock.now())
    assert state["status"] == "under_correction"
    assert state["reported_in_on"] == "2026-02-25"
    assert state["late_report_in"] is False


def test_a_late_report_in_is_accepted_and_flagged(clock: FixedClock) -> None:
    case = received(clock)
    on_day(clock, "2026-03-05")
    case.record("SubjectReportedIn", {"reported_on": "2026-03-03"}, at(clock))
    state = case.state(clock.now())
    assert state["status"] == "under_correction"
    assert state["late_report_in"] is True
    assert state["unreported_after_window"] is False


def test_no_report_in_after_the_window_flags_the_subject_unreported(clock: FixedClock) -> None:
    case = received(clock)
    assert case.state(clock.now())["unreported_after_window"] is False
    assert case.state(clock.now() + timedelta(days=1))["unreported_after_window"] is True


def test_a_report_in_before_the_decision_takes_effect_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    refused(
        case,
        "SubjectReportedIn",
        {"reported_on": "2026-02-19"},
        at(clock),
        "report_in_before_decision",
    )


def test_a_report_in_dated_in_the_future_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    refused(case, "SubjectReportedIn", {"reported_on": "2026-03-03"}, at(clock), "date_in_future")


def test_a_subject_reports_in_once(clock: FixedClock) -> None:
    case = under_correction(clock)
    refused(
        case, "SubjectReportedIn", {"reported_on": "2026-02-26"}, at(clock), "not_allowed_in_status"
    )


# --- the correction team (矯正小組, 社區矯正法 §25) ----------------------------------------------


def team(*volunteer_genders: str, officer: str = "male", worker: str = "male") -> dict[str, Any]:
    return {
        "officer": {"name": "李警官", "gender": officer},
        "social_worker": {"name": "張社工", "gender": worker},
        "volunteers": [
            {"name": f"志願者{i}", "gender": gender} for i, gender in enumerate(volunteer_genders)
        ],
    }


def test_a_female_subject_needs_a_woman_on_the_team(clock: FixedClock) -> None:
    case = received(clock, person=person(gender="female"))
    refused(
        case, "CorrectionTeamFormed", team("male"), at(clock), "female_subject_needs_woman_on_team"
    )
    case.record("CorrectionTeamFormed", team("male", "female"), at(clock))
    assert case.state(clock.now())["team"]["volunteers"][1]["gender"] == "female"


def test_a_male_subjects_team_may_be_all_men(clock: FixedClock) -> None:
    case = received(clock)
    case.record("CorrectionTeamFormed", team("male"), at(clock))
    assert case.version == 2


def test_the_team_has_at_least_one_volunteer(clock: FixedClock) -> None:
    case = received(clock)
    refused(case, "CorrectionTeamFormed", team(), at(clock), "invalid_data", InvalidData)


def test_a_supervision_level_is_one_of_the_classes(clock: FixedClock) -> None:
    case = received(clock)
    case.record("SupervisionLevelSet", {"level": "strict"}, at(clock))
    assert case.state(clock.now())["supervision_level"] == "strict"
    refused(case, "SupervisionLevelSet", {"level": "harsh"}, at(clock), "invalid_data", InvalidData)


# --- check-ins, education, community service, counselling -------------------------------------


@pytest.mark.parametrize("type_name", ACTIVITIES)
def test_activities_are_recorded_only_while_under_correction(
    clock: FixedClock, type_name: str
) -> None:
    case = received(clock)
    refused(case, type_name, activity(type_name), at(clock), "not_allowed_in_status")
    case.record("SubjectReportedIn", {"reported_on": "2026-02-25"}, at(clock))
    case.record(type_name, activity(type_name), at(clock))
    assert case.version == 3


def test_activities_are_counted(clock: FixedClock) -> None:
    case = under_correction(clock)
    for type_name in ACTIVITIES:
        case.record(type_name, activity(type_name), at(clock))
    case.record("CommunityServiceRecorded", activity("CommunityServiceRecorded"), at(clock))
    state = case.state(clock.now())
    assert state["check_ins"] == 1
    assert state["last_check_in_on"] == "2026-03-01"
    assert state["education_sessions"] == 1
    assert state["counselling_sessions"] == 1
    assert state["community_service_hours"] == 5.0


def test_community_service_needs_some_hours(clock: FixedClock) -> None:
    case = under_correction(clock)
    data = {**activity("CommunityServiceRecorded"), "hours": 0}
    refused(case, "CommunityServiceRecorded", data, at(clock), "invalid_data", InvalidData)


@pytest.mark.parametrize("type_name", ACTIVITIES)
def test_an_activity_outside_the_term_is_refused(clock: FixedClock, type_name: str) -> None:
    case = under_correction(clock, term_start="2026-02-26")
    refused(case, type_name, activity(type_name, on="2026-02-25"), at(clock), "outside_term")


@pytest.mark.parametrize("type_name", ACTIVITIES)
def test_an_activity_dated_in_the_future_is_refused(clock: FixedClock, type_name: str) -> None:
    case = under_correction(clock)
    refused(case, type_name, activity(type_name, on="2026-03-03"), at(clock), "date_in_future")


@pytest.mark.parametrize("type_name", ACTIVITIES)
def test_no_activity_is_recorded_for_an_absconded_subject(
    clock: FixedClock, type_name: str
) -> None:
    case = under_correction(clock)
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    refused(case, type_name, activity(type_name), at(clock), "subject_absconded")
    case.record("SubjectLocated", {"on": "2026-03-02"}, at(clock))
    case.record(type_name, activity(type_name, on="2026-03-02"), at(clock))


# --- leave (請假外出) ---------------------------------------------------------------------------


def test_a_township_supervisor_approves_a_leave_of_up_to_seven_days(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-10", "2026-03-16"), at(clock))
    case.record("LeaveApproved", leave("2026-03-10", "2026-03-16"), at(clock, TOWNSHIP_SUPERVISOR))
    [approved] = case.state(clock.now())["leaves"]
    assert approved["status"] == "approved"
    assert case.state(clock.now())["on_leave"] is False
    on_day(clock, "2026-03-10")
    assert case.state(clock.now())["on_leave"] is True


def test_a_leave_longer_than_seven_days_needs_a_county_supervisor(clock: FixedClock) -> None:
    case = under_correction(clock)
    eight_days = leave("2026-03-10", "2026-03-17")
    case.record("LeaveRequested", eight_days, at(clock))
    error = refused(
        case,
        "LeaveApproved",
        eight_days,
        at(clock, TOWNSHIP_SUPERVISOR),
        "leave_needs_county_supervisor",
        NotPermitted,
    )
    assert error.status == 403
    refused(
        case,
        "LeaveDenied",
        eight_days,
        at(clock, TOWNSHIP_SUPERVISOR),
        "leave_needs_county_supervisor",
        NotPermitted,
    )
    case.record("LeaveApproved", eight_days, at(clock, COUNTY_SUPERVISOR))
    assert case.state(clock.now())["leaves"][0]["status"] == "approved"


def test_a_village_supervisor_does_not_decide_a_leave(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-10", "2026-03-11"), at(clock))
    refused(
        case,
        "LeaveApproved",
        leave("2026-03-10", "2026-03-11"),
        at(clock, VILLAGE_SUPERVISOR),
        "leave_needs_township_supervisor",
        NotPermitted,
    )


@pytest.mark.parametrize("type_name", ["LeaveApproved", "LeaveDenied"])
def test_a_caseworker_does_not_decide_a_leave(clock: FixedClock, type_name: str) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-10", "2026-03-11"), at(clock))
    refused(
        case,
        type_name,
        leave("2026-03-10", "2026-03-11"),
        at(clock),
        "supervisor_only",
        NotPermitted,
    )


def test_a_leave_lasts_at_most_thirty_days(clock: FixedClock) -> None:
    case = under_correction(clock)
    refused(case, "LeaveRequested", leave("2026-03-10", "2026-04-09"), at(clock), "leave_too_long")
    case.record("LeaveRequested", leave("2026-03-10", "2026-04-08"), at(clock))
    case.record("LeaveApproved", leave("2026-03-10", "2026-04-08"), at(clock, COUNTY_SUPERVISOR))


def test_a_leave_ends_before_the_term_does(clock: FixedClock) -> None:
    case = under_correction(clock, term_end="2026-03-20")
    refused(case, "LeaveRequested", leave("2026-03-18", "2026-03-21"), at(clock), "outside_term")


def test_a_leave_to_after_from_is_valid_data(clock: FixedClock) -> None:
    case = under_correction(clock)
    refused(
        case,
        "LeaveRequested",
        leave("2026-03-10", "2026-03-09"),
        at(clock),
        "invalid_data",
        InvalidData,
    )


def test_overlapping_leaves_are_refused(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-10", "2026-03-16"), at(clock))
    case.record("LeaveApproved", leave("2026-03-10", "2026-03-16"), at(clock, TOWNSHIP_SUPERVISOR))
    refused(
        case,
        "LeaveRequested",
        leave("2026-03-16", "2026-03-18", destination="蘇州市"),
        at(clock),
        "leave_overlaps",
    )
    case.record("LeaveRequested", leave("2026-03-17", "2026-03-18"), at(clock))


def test_one_leave_request_waits_for_a_decision_at_a_time(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-10", "2026-03-11"), at(clock))
    refused(
        case,
        "LeaveRequested",
        leave("2026-04-10", "2026-04-11"),
        at(clock),
        "leave_request_pending",
    )


def test_a_decision_names_the_pending_request(clock: FixedClock) -> None:
    case = under_correction(clock)
    supervisor = at(clock, TOWNSHIP_SUPERVISOR)
    refused(
        case, "LeaveDenied", leave("2026-03-10", "2026-03-11"), supervisor, "leave_not_requested"
    )
    case.record("LeaveRequested", leave("2026-03-10", "2026-03-11"), at(clock))
    refused(
        case, "LeaveApproved", leave("2026-03-10", "2026-03-12"), supervisor, "leave_not_requested"
    )
    refused(
        case,
        "LeaveApproved",
        leave("2026-03-10", "2026-03-11", destination="北京市"),
        supervisor,
        "leave_not_requested",
    )


def test_a_denied_leave_frees_its_days_for_another_request(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-10", "2026-03-11"), at(clock))
    case.record("LeaveDenied", leave("2026-03-10", "2026-03-11"), at(clock, TOWNSHIP_SUPERVISOR))
    assert case.state(clock.now())["leaves"][0]["status"] == "denied"
    case.record("LeaveRequested", leave("2026-03-10", "2026-03-11"), at(clock))


def test_a_return_closes_the_leave(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-02", "2026-03-08"), at(clock))
    case.record("LeaveApproved", leave("2026-03-02", "2026-03-08"), at(clock, TOWNSHIP_SUPERVISOR))
    assert case.state(clock.now())["on_leave"] is True
    on_day(clock, "2026-03-05")
    case.record("LeaveReturned", leave("2026-03-02", "2026-03-08"), at(clock))
    state = case.state(clock.now())
    assert state["on_leave"] is False
    assert state["leaves"][0]["status"] == "returned"
    assert state["leaves"][0]["returned_on"] == "2026-03-05"
    # The days after an early return are free again.
    case.record("LeaveRequested", leave("2026-03-06", "2026-03-07"), at(clock))


def test_a_return_needs_an_approved_leave(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-02", "2026-03-04"), at(clock))
    refused(
        case, "LeaveReturned", leave("2026-03-02", "2026-03-04"), at(clock), "leave_not_approved"
    )
    case.record("LeaveApproved", leave("2026-03-02", "2026-03-04"), at(clock, TOWNSHIP_SUPERVISOR))
    on_day(clock, "2026-03-04")
    case.record("LeaveReturned", leave("2026-03-02", "2026-03-04"), at(clock))
    refused(
        case, "LeaveReturned", leave("2026-03-02", "2026-03-04"), at(clock), "leave_not_approved"
    )


def test_a_return_comes_after_the_leave_begins(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("LeaveRequested", leave("2026-03-02", "2026-03-04"), at(clock))
    case.record("LeaveApproved", leave("2026-03-02", "2026-03-04"), at(clock, TOWNSHIP_SUPERVISOR))
    early = {**leave("2026-03-02", "2026-03-04"), "returned_on": "2026-03-01"}
    refused(case, "LeaveReturned", early, at(clock), "returned_before_leave")
    later = {**leave("2026-03-02", "2026-03-04"), "returned_on": "2026-03-03"}
    refused(case, "LeaveReturned", later, at(clock), "date_in_future")


def test_an_absconded_subject_does_not_request_leave(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    refused(
        case, "LeaveRequested", leave("2026-03-10", "2026-03-11"), at(clock), "subject_absconded"
    )


# --- electronic monitoring (電子定位) -----------------------------------------------------------


def monitoring(until: str) -> dict[str, Any]:
    return {"grounds": "違反報告規定", "until": until}


def test_a_county_supervisor_grants_monitoring_for_up_to_three_months(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record(
        "ElectronicMonitoringStarted", monitoring("2026-06-02"), at(clock, COUNTY_SUPERVISOR)
    )
    state = case.state(clock.now())
    assert state["electronic_monitoring_active"] is True
    assert state["monitoring"] == {
        "started_on": "2026-03-02",
        "until": "2026-06-02",
        "ended_on": None,
    }
    on_day(clock, "2026-06-03")
    assert case.state(clock.now())["electronic_monitoring_active"] is False


def test_a_township_supervisor_does_not_grant_monitoring(clock: FixedClock) -> None:
    case = under_correction(clock)
    refused(
        case,
        "ElectronicMonitoringStarted",
        monitoring("2026-04-01"),
        at(clock, TOWNSHIP_SUPERVISOR),
        "monitoring_needs_county_supervisor",
        NotPermitted,
    )
    refused(
        case,
        "ElectronicMonitoringStarted",
        monitoring("2026-04-01"),
        at(clock),
        "supervisor_only",
        NotPermitted,
    )


def test_a_monitoring_grant_longer_than_three_months_is_refused(clock: FixedClock) -> None:
    case = under_correction(clock)
    error = refused(
        case,
        "ElectronicMonitoringStarted",
        monitoring("2026-06-03"),
        at(clock, COUNTY_SUPERVISOR),
        "monitoring_too_long",
    )
    assert error.details == {"latest": "2026-06-02"}


def test_monitoring_runs_until_a_later_day(clock: FixedClock) -> None:
    case = under_correction(clock)
    refused(
        case,
        "ElectronicMonitoringStarted",
        monitoring("2026-03-02"),
        at(clock, COUNTY_SUPERVISOR),
        "monitoring_until_not_after_start",
    )


def test_monitoring_grants_do_not_overlap(clock: FixedClock) -> None:
    case = under_correction(clock)
    county = at(clock, COUNTY_SUPERVISOR)
    case.record("ElectronicMonitoringStarted", monitoring("2026-04-01"), county)
    refused(
        case, "ElectronicMonitoringStarted", monitoring("2026-05-01"), county, "monitoring_overlaps"
    )
    on_day(clock, "2026-04-02")
    # The first grant has lapsed: a new one may start.
    case.record(
        "ElectronicMonitoringStarted", monitoring("2026-05-01"), at(clock, COUNTY_SUPERVISOR)
    )
    assert case.state(clock.now())["monitoring_grants"] == 2


def test_ending_monitoring_frees_the_way_for_a_new_grant(clock: FixedClock) -> None:
    case = under_correction(clock)
    county = at(clock, COUNTY_SUPERVISOR)
    case.record("ElectronicMonitoringStarted", monitoring("2026-04-01"), county)
    refused(
        case,
        "ElectronicMonitoringEnded",
        {"grounds": "表現良好"},
        at(clock, TOWNSHIP_SUPERVISOR),
        "monitoring_needs_county_supervisor",
        NotPermitted,
    )
    case.record("ElectronicMonitoringEnded", {"grounds": "表現良好"}, county)
    assert case.state(clock.now())["electronic_monitoring_active"] is False
    refused(
        case, "ElectronicMonitoringEnded", {"grounds": "表現良好"}, county, "monitoring_not_running"
    )
    case.record("ElectronicMonitoringStarted", monitoring("2026-04-01"), county)


def test_monitoring_that_never_started_does_not_end(clock: FixedClock) -> None:
    case = under_correction(clock)
    refused(
        case,
        "ElectronicMonitoringEnded",
        {"grounds": "表現良好"},
        at(clock, COUNTY_SUPERVISOR),
        "monitoring_not_running",
    )


# --- residence change (遷居) -------------------------------------------------------------------


def test_a_residence_change_is_no_longer_recorded_directly(clock: FixedClock) -> None:
    # A case moves only when the receiving unit accepts (tests/domain/test_transfers.py).
    case = under_correction(clock)
    moved = {"to_unit": "320104002", "approved_on": "2026-03-01"}
    refused(case, "ResidenceChanged", moved, at(clock), "transfer_required")
    not_a_unit = {"to_unit": "nanjing", "approved_on": "2026-03-01"}
    refused(case, "ResidenceChanged", not_a_unit, at(clock), "invalid_data", InvalidData)


def test_a_residence_change_of_an_old_store_still_moves_the_case(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.trigger_event(
        case.event_class("ResidenceChanged"),
        data={"to_unit": "320104002", "approved_on": "2026-03-01"},
        timestamp=clock.now(),
        **at(clock).metadata(),
    )
    assert case.unit == "320104002"
    assert replayed(case).unit == "320104002"


# --- the sanction ladder (訓誡 → 警告 → 治安管理處罰 → revocation) ---------------------------------


SANCTIONS = {
    "ReprimandIssued": ({"violation": "未按時報告", "on": "2026-03-01"}, "reprimand"),
    "WarningIssued": ({"violation": "未經批准離開縣域", "on": "2026-03-01"}, "warning"),
    "PublicSecurityPenaltyProposed": ({"grounds": "經警告仍不改正"}, "public_security_penalty"),
}


@pytest.mark.parametrize("type_name", [*SANCTIONS, "RevocationProposed"])
def test_sanctions_are_for_supervisors(clock: FixedClock, type_name: str) -> None:
    case = under_correction(clock)
    data = SANCTIONS[type_name][0] if type_name in SANCTIONS else grounds("reoffending")
    refused(case, type_name, data, at(clock), "supervisor_only", NotPermitted)


def climbed(case: Correction, clock: FixedClock, *type_names: str) -> Correction:
    for type_name in type_names:
        case.record(type_name, SANCTIONS[type_name][0], at(clock, TOWNSHIP_SUPERVISOR))
    return case


def test_a_supervisor_climbs_the_ladder_in_order(clock: FixedClock) -> None:
    case = climbed(under_correction(clock), clock, *SANCTIONS)
    assert case.state(clock.now())["sanctions"] == {
        "reprimand": 1,
        "warning": 1,
        "public_security_penalty": 1,
        "revocation": 0,
    }


@pytest.mark.parametrize(
    ("type_name", "below", "needs"),
    [
        ("WarningIssued", [], "reprimand"),
        ("PublicSecurityPenaltyProposed", [], "warning"),
        ("PublicSecurityPenaltyProposed", ["ReprimandIssued"], "warning"),
    ],
)
def test_a_rung_is_not_climbed_before_the_one_below(
    clock: FixedClock, type_name: str, below: list[str], needs: str
) -> None:
    case = climbed(under_correction(clock), clock, *below)
    data, rung = SANCTIONS[type_name]
    error = refused(case, type_name, data, at(clock, TOWNSHIP_SUPERVISOR), "sanction_out_of_order")
    assert error.details == {"rung": rung, "needs": needs}


@pytest.mark.parametrize("type_name", ["ReprimandIssued", "WarningIssued"])
def test_a_sanction_dated_in_the_future_is_refused(clock: FixedClock, type_name: str) -> None:
    case = under_correction(clock)
    data = {**SANCTIONS[type_name][0], "on": "2026-03-03"}
    refused(case, type_name, data, at(clock, TOWNSHIP_SUPERVISOR), "date_in_future")


def test_revocation_for_warnings_needs_two_warnings(clock: FixedClock) -> None:
    case = climbed(under_correction(clock), clock, "ReprimandIssued")
    supervisor = at(clock, TOWNSHIP_SUPERVISOR)
    warning = SANCTIONS["WarningIssued"][0]
    case.record("WarningIssued", warning, supervisor)
    error = refused(
        case,
        "RevocationProposed",
        grounds("repeated_warnings"),
        supervisor,
        "revocation_grounds_not_borne_out",
    )
    assert error.details == {"basis": "repeated_warnings"}
    case.record("WarningIssued", warning, supervisor)
    case.record("RevocationProposed", grounds("repeated_warnings"), supervisor)
    state = case.state(clock.now())
    assert state["sanctions"]["revocation"] == 1
    assert state["revocation_basis"] == "repeated_warnings"


def test_revocation_for_absconding_needs_more_than_thirty_days(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    on_day(clock, "2026-03-31")
    refused(
        case,
        "RevocationProposed",
        grounds("absconding"),
        at(clock, TOWNSHIP_SUPERVISOR),
        "revocation_grounds_not_borne_out",
    )
    on_day(clock, "2026-04-01")
    case.record("RevocationProposed", grounds("absconding"), at(clock, TOWNSHIP_SUPERVISOR))


def test_a_past_absconding_of_over_a_month_bears_out_revocation(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    on_day(clock, "2026-04-05")
    case.record("SubjectLocated", {"on": "2026-04-05"}, at(clock))
    assert case.state(clock.now())["longest_absconding_days"] == 35
    case.record("RevocationProposed", grounds("absconding"), at(clock, TOWNSHIP_SUPERVISOR))


def test_revocation_for_reoffending_needs_a_recorded_offence(clock: FixedClock) -> None:
    case = under_correction(clock)
    supervisor = at(clock, TOWNSHIP_SUPERVISOR)
    refused(
        case,
        "RevocationProposed",
        grounds("reoffending"),
        supervisor,
        "revocation_grounds_not_borne_out",
    )
    case.record("Reoffended", {"offence": "盜竊", "on": "2026-03-01"}, at(clock))
    case.record("RevocationProposed", grounds("reoffending"), supervisor)


def test_revocation_after_a_penalty_needs_the_penalty_first(clock: FixedClock) -> None:
    case = under_correction(clock)
    supervisor = at(clock, TOWNSHIP_SUPERVISOR)
    basis = "after_public_security_penalty"
    refused(
        case, "RevocationProposed", grounds(basis), supervisor, "revocation_grounds_not_borne_out"
    )
    climbed(case, clock, "ReprimandIssued", "WarningIssued", "PublicSecurityPenaltyProposed")
    case.record("RevocationProposed", grounds(basis), supervisor)


def test_a_control_subject_is_not_revoked(clock: FixedClock) -> None:
    case = under_correction(clock, correction_type="control")
    case.record("Reoffended", {"offence": "盜竊", "on": "2026-03-01"}, at(clock))
    refused(
        case,
        "RevocationProposed",
        grounds("reoffending"),
        at(clock, TOWNSHIP_SUPERVISOR),
        "revocation_not_applicable",
    )


def test_revocation_grounds_are_one_of_the_table(clock: FixedClock) -> None:
    case = under_correction(clock)
    refused(
        case,
        "RevocationProposed",
        grounds("bad_attitude"),
        at(clock, TOWNSHIP_SUPERVISOR),
        "invalid_data",
        InvalidData,
    )
    assert set(rules.REVOCATION_GROUNDS) == {
        "repeated_warnings",
        "absconding",
        "after_public_security_penalty",
        "reoffending",
    }


# --- absconding (脫管) and re-offending ---------------------------------------------------------


def test_an_absconded_subject_is_absconded_until_located(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    assert case.state(clock.now())["absconded_now"] is True
    refused(case, "SubjectAbsconded", {"on": "2026-03-02"}, at(clock), "already_absconded")
    case.record("SubjectLocated", {"on": "2026-03-02"}, at(clock))
    assert case.state(clock.now())["absconded_now"] is False


def test_only_an_absconded_subject_is_located(clock: FixedClock) -> None:
    case = under_correction(clock)
    refused(case, "SubjectLocated", {"on": "2026-03-01"}, at(clock), "not_absconded")
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    refused(case, "SubjectLocated", {"on": "2026-02-28"}, at(clock), "located_before_absconding")


@pytest.mark.parametrize(
    ("type_name", "data"),
    [
        ("SubjectAbsconded", {"on": "2026-03-03"}),
        ("Reoffended", {"offence": "盜竊", "on": "2026-03-03"}),
        ("SubjectCommitted", committal("2026-03-03")),
        ("SubjectDied", {"on": "2026-03-03"}),
    ],
)
def test_a_day_in_the_future_is_refused(clock: FixedClock, type_name: str, data: Any) -> None:
    case = proposed_for_revocation(clock)
    refused(case, type_name, data, at(clock, COUNTY_SUPERVISOR), "date_in_future")


def test_a_new_offence_is_one_during_correction(clock: FixedClock) -> None:
    case = under_correction(clock)
    error = refused(
        case, "Reoffended", {"offence": "盜竊", "on": "2026-02-19"}, at(clock), "date_out_of_order"
    )
    assert error.details == {"field": "on"}
    case.record("Reoffended", {"offence": "盜竊", "on": "2026-02-20"}, at(clock))


def test_the_first_offence_by_date_is_the_reoffence_day(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("Reoffended", {"offence": "盜竊", "on": "2026-03-01"}, at(clock))
    case.record("Reoffended", {"offence": "詐騙", "on": "2026-02-25"}, at(clock))
    case.record("Reoffended", {"offence": "搶奪", "on": "2026-03-02"}, at(clock))
    state = case.state(clock.now())
    assert (state["reoffences"], state["reoffended_on"]) == (3, "2026-02-25")


# --- committal (收監執行) -----------------------------------------------------------------------


def proposed_for_revocation(clock: FixedClock, **overrides: Any) -> Correction:
    case = under_correction(clock, **overrides)
    case.record("Reoffended", {"offence": "盜竊", "on": "2026-03-01"}, at(clock))
    case.record("RevocationProposed", grounds("reoffending"), at(clock, COUNTY_SUPERVISOR))
    return case


def test_committal_follows_a_revocation_proposal_and_records_the_decision(
    clock: FixedClock,
) -> None:
    case = under_correction(clock)
    case.record("Reoffended", {"offence": "盜竊", "on": "2026-03-01"}, at(clock))
    supervisor = at(clock, COUNTY_SUPERVISOR)
    refused(
        case,
        "SubjectCommitted",
        committal("2026-03-02"),
        supervisor,
        "committal_without_revocation_proposal",
    )
    case.record("RevocationProposed", grounds("reoffending"), supervisor)
    case.record("SubjectCommitted", committal("2026-03-02"), supervisor)
    state = case.state(clock.now())
    assert state["status"] == "committed"
    assert state["committal_decision_no"] == "（2026）蘇0102刑更12號"
    assert replayed(case).committal_decision_no == "（2026）蘇0102刑更12號"


def test_committal_is_a_supervisors_act(clock: FixedClock) -> None:
    case = proposed_for_revocation(clock)
    refused(
        case,
        "SubjectCommitted",
        committal("2026-03-02"),
        at(clock),
        "supervisor_only",
        NotPermitted,
    )


def test_committal_names_the_decision_that_orders_it(clock: FixedClock) -> None:
    case = proposed_for_revocation(clock)
    data = {key: value for key, value in committal("2026-03-02").items() if key != "decision_no"}
    error = refused(
        case, "SubjectCommitted", data, at(clock, COUNTY_SUPERVISOR), "invalid_data", InvalidData
    )
    assert list(error.details) == ["decision_no"]


def test_committal_is_not_dated_before_the_revocation_proposal(clock: FixedClock) -> None:
    case = proposed_for_revocation(clock)
    error = refused(
        case,
        "SubjectCommitted",
        committal("2026-03-01"),
        at(clock, COUNTY_SUPERVISOR),
        "date_out_of_order",
    )
    assert error.details == {"field": "on"}


def test_a_control_subject_is_not_committed(clock: FixedClock) -> None:
    case = under_correction(clock, correction_type="control")
    refused(
        case,
        "SubjectCommitted",
        committal("2026-03-02"),
        at(clock, COUNTY_SUPERVISOR),
        "committal_not_applicable",
    )


def test_a_new_offence_is_recorded(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("Reoffended", {"offence": "盜竊", "on": "2026-03-01"}, at(clock))
    state = case.state(clock.now())
    assert state["reoffences"] == 1
    assert state["reoffended_on"] == "2026-03-01"


# --- the end of correction ---------------------------------------------------------------------


def test_correction_is_completed_not_before_the_term_ends(clock: FixedClock) -> None:
    case = under_correction(clock)
    on_day(clock, "2027-02-19")
    error = refused(
        case,
        "CorrectionCompleted",
        {"on": "2027-02-18", "certificate_no": "玄矯解字2027第1號"},
        at(clock),
        "completion_before_term_end",
    )
    assert error.details == {"term_end": "2027-02-19"}
    case.record(
        "CorrectionCompleted",
        {"on": "2027-02-19", "certificate_no": "玄矯解字2027第1號"},
        at(clock),
    )
    state = case.state(clock.now())
    assert state["status"] == "completed"
    assert state["ended_on"] == "2027-02-19"
    assert case.is_open is False


def test_an_absconded_subject_is_not_released(clock: FixedClock) -> None:
    case = under_correction(clock)
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    on_day(clock, "2027-02-19")
    refused(
        case,
        "CorrectionCompleted",
        {"on": "2027-02-19", "certificate_no": "玄矯解字2027第1號"},
        at(clock),
        "subject_absconded",
    )


def test_a_subject_who_never_reported_in_is_not_released(clock: FixedClock) -> None:
    case = received(clock)
    on_day(clock, "2027-02-19")
    refused(
        case,
        "CorrectionCompleted",
        {"on": "2027-02-19", "certificate_no": "玄矯解字2027第1號"},
        at(clock),
        "not_allowed_in_status",
    )


@pytest.mark.parametrize(
    ("type_name", "data", "status"),
    [
        ("SubjectCommitted", committal("2026-03-02"), "committed"),
        ("SubjectDied", {"on": "2026-03-01"}, "died"),
    ],
)
def test_after_the_end_nothing_more_is_recorded(
    clock: FixedClock, type_name: str, data: Any, status: str
) -> None:
    case = proposed_for_revocation(clock)
    case.record(type_name, data, at(clock, COUNTY_SUPERVISOR))
    assert case.status == status
    assert case.is_open is False
    refused(
        case, "CheckInRecorded", activity("CheckInRecorded"), at(clock), "not_allowed_in_status"
    )
    refused(
        case,
        "WarningIssued",
        SANCTIONS["WarningIssued"][0],
        at(clock, TOWNSHIP_SUPERVISOR),
        "not_allowed_in_status",
    )
    refused(case, "SubjectDied", {"on": "2026-03-02"}, at(clock), "not_allowed_in_status")


def test_every_open_flag_is_down_once_correction_ended(clock: FixedClock) -> None:
    case = proposed_for_revocation(clock)
    case.record("SubjectAbsconded", {"on": "2026-03-01"}, at(clock))
    case.record(
        "ElectronicMonitoringStarted", monitoring("2026-04-01"), at(clock, COUNTY_SUPERVISOR)
    )
    case.record("SubjectCommitted", committal("2026-03-02"), at(clock, COUNTY_SUPERVISOR))
    state = case.state(clock.now())
    assert state["absconded_now"] is False
    assert state["electronic_monitoring_active"] is False
    assert state["days_to_term_end"] is None


def test_a_term_ending_within_thirty_days_is_flagged(clock: FixedClock) -> None:
    case = under_correction(clock)
    term_end = datetime(2027, 2, 19, 2, 0, tzinfo=UTC)
    state = case.state(term_end - timedelta(days=rules.TERM_ENDING_SOON_DAYS))
    assert state["term_ending_soon"] is True
    assert state["days_to_term_end"] == rules.TERM_ENDING_SOON_DAYS
    assert case.state(term_end - timedelta(days=31))["term_ending_soon"] is False
    assert case.state(term_end + timedelta(days=1))["term_ending_soon"] is False


def test_every_event_class_names_its_chinese_term() -> None:
    for event_class in Correction.events:
        doc = event_class.__doc__ or ""
        assert any("\u4e00" <= char <= "\u9fff" for char in doc), event_class.__name__


def test_recorded_events_carry_who_recorded_them(clock: FixedClock) -> None:
    case = under_correction(clock)
    event = case.record("CheckInRecorded", activity("CheckInRecorded"), at(clock))
    assert isinstance(event, CaseEvent)
    assert (event.type, event.actor, event.actor_role, event.actor_unit) == (
        "CheckInRecorded",
        "u_worker",
        "caseworker",
        "320102001",
    )
    assert event.data == {"on": "2026-03-01", "notes": "按時報告"}
