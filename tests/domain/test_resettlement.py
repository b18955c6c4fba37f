"""Resettlement and assistance (刑釋解教人員安置幫教): the rules of DOMAIN.md section 2.

Pure domain: an aggregate, a fixed clock, no store. Every refusal must leave the case as
it was: same version, same pending events, same state.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest

from domain import rules
from domain.case import Actor, CaseEvent, Context
from domain.clock import CST, FixedClock
from domain.errors import CasetrailError, InvalidData, NotPermitted, RuleViolation
from domain.resettlement import Resettlement

UNIT = "320102001"
WORKER = Actor(user_id="u_worker", role="caseworker", unit="320102")
NOTICE_DAY = "2026-03-02"
RELEASE_DAY = "2026-04-15"  # 44 days after the notice
RECEPTION_DAY = "2026-04-17"
HANDOVER_DUE = "2026-04-22"  # release + HANDOVER_WINDOW_DAYS
PERIOD_ENDS = "2031-04-15"  # release + ASSISTANCE_PERIOD_YEARS


# --- helpers --------------------------------------------------------------------------


def at(day: str) -> datetime:
    """09:00 China Standard Time on `day`."""
    return datetime.combine(date.fromisoformat(day), time(9), tzinfo=CST)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(at(NOTICE_DAY))


def ctx(clock: FixedClock, actor: Actor = WORKER) -> Context:
    return Context(actor=actor, now=clock.now())


def person(**changes: Any) -> dict[str, Any]:
    return {
        "name": "王某某",
        "id_number": "32010219900101123X",
        "gender": "male",
        "birth_date": "1990-01-01",
        "household_address": "江蘇省南京市玄武區梅園新村街道某路1號",
        "residence_address": "江蘇省南京市玄武區梅園新村街道某路1號",
        **changes,
    }


def notice(**changes: Any) -> dict[str, Any]:
    return {
        "person": person(),
        "release_type": "sentence_completed",
        "institution": "江蘇省某監獄",
        "expected_release_date": RELEASE_DAY,
        "offence": "盜竊罪",
        **changes,
    }


def notified(clock: FixedClock, **changes: Any) -> Resettlement:
    return Resettlement.open(UNIT, notice(**changes), ctx(clock))


def record(case: Resettlement, clock: FixedClock, type_name: str, **data: Any) -> CaseEvent:
    return case.record(type_name, data, ctx(clock))


def released(clock: FixedClock, on: str = RELEASE_DAY) -> Resettlement:
    case = notified(clock)
    clock.set(at(on))
    record(case, clock, "PersonReleased", released_on=on)
    return case


def received(clock: FixedClock, on: str = RECEPTION_DAY, method: str = "escorted") -> Resettlement:
    case = released(clock)
    clock.set(at(on))
    record(case, clock, "PersonReceived", received_on=on, method=method)
    return case


def placed(clock: FixedClock, placement: str = "employment", **extra: Any) -> Resettlement:
    case = received(clock)
    record(case, clock, "PersonPlaced", placement=placement, placed_on=RECEPTION_DAY, **extra)
    return case


def lost(clock: FixedClock, on: str = "2026-05-01") -> Resettlement:
    case = received(clock)
    clock.set(at(on))
    record(case, clock, "ContactLost", on=on, notes="不在住所，電話停機")
    return case


def ended(clock: FixedClock) -> Resettlement:
    case = received(clock)
    clock.set(at(PERIOD_ENDS))
    record(case, clock, "AssistanceEnded", reason="period_completed", ended_on=PERIOD_ENDS)
    return case


def state(case: Resettlement, clock: FixedClock) -> dict[str, Any]:
    return case.state(clock.now())


def assert_refused(
    case: Resettlement,
    clock: FixedClock,
    type_name: str,
    data: dict[str, Any],
    code: str,
    *,
    actor: Actor = WORKER,
    error: type[CasetrailError] = RuleViolation,
) -> CasetrailError:
    """The command is refused with `code` and the case is exactly as it was."""
    version = case.version
    pending = list(case.pending_events)
    before = state(case, clock)
    with pytest.raises(error) as refused:
        case.record(type_name, data, ctx(clock, actor))
    assert refused.value.code == code
    assert case.version == version
    assert case.pending_events == pending
    assert state(case, clock) == before
    return refused.value


# --- the vocabulary ---------------------------------------------------------------------


def test_every_event_type_of_the_domain_is_known() -> None:
    assert [event.__name__ for event in Resettlement.events] == [
        "ReleaseNotified",
        "PreReleaseAssistanceProvided",
        "PersonReleased",
        "PersonReceived",
        "AssistanceCategorised",
        "AssistanceActivityRecorded",
        "AssistanceDelegated",
        "SkillTrainingCompleted",
        "PersonPlaced",
        "PlacementEnded",
        "ContactLost",
        "ContactRestored",
        "Reoffended",
        "AssistanceEnded",
        "TransferProposed",
        "TransferAccepted",
        "TransferDeclined",
    ]
    assert Resettlement.kind == "resettlement"
    assert Resettlement.opening_event.__name__ == "ReleaseNotified"


@pytest.mark.parametrize(
    "sanction", ["ReprimandIssued", "WarningIssued", "RevocationProposed", "SubjectCommitted"]
)
def test_assistance_has_no_sanctions(clock: FixedClock, sanction: str) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        sanction,
        {"violation": "x", "on": RECEPTION_DAY},
        "unknown_event_type",
        error=CasetrailError,
    )


def test_an_auditor_cannot_record_assistance(clock: FixedClock) -> None:
    case = received(clock)
    auditor = Actor(user_id="u_audit", role="auditor", unit="320000")
    assert_refused(
        case,
        clock,
        "AssistanceCategorised",
        {"category": "ordinary", "risk_level": "low"},
        "role_cannot_write",
        actor=auditor,
        error=NotPermitted,
    )


# --- ReleaseNotified ------------------------------------------------------------------------


def test_a_release_notice_opens_a_resettlement_case(clock: FixedClock) -> None:
    case = notified(clock)
    current = state(case, clock)
    assert case.version == 1
    assert current["kind"] == "resettlement"
    assert current["status"] == "notified"
    assert current["unit"] == UNIT
    assert current["notified_on"] == NOTICE_DAY
    assert current["notice_days"] == 44
    assert current["late_notice"] is False
    assert current["unreceived_after_window"] is False
    assert current["contact_lost"] is False
    assert case.is_open


def test_a_late_release_notice_is_flagged_not_refused(clock: FixedClock) -> None:
    case = notified(clock, expected_release_date="2026-03-31")
    assert case.version == 1
    assert state(case, clock)["late_notice"] is True
    assert state(case, clock)["notice_days"] == 29


def test_a_notice_exactly_thirty_days_ahead_is_on_time(clock: FixedClock) -> None:
    case = notified(clock, expected_release_date="2026-04-01")
    assert state(case, clock)["notice_days"] == rules.RELEASE_NOTICE_MIN_DAYS
    assert state(case, clock)["late_notice"] is False


def test_a_notice_after_the_release_itself_is_accepted_and_flagged(clock: FixedClock) -> None:
    case = notified(clock, expected_release_date="2026-02-20")
    assert state(case, clock)["late_notice"] is True
    assert state(case, clock)["notice_days"] == -10


def test_lateness_is_judged_by_the_day_the_notice_is_recorded(clock: FixedClock) -> None:
    # The client says the notice arrived 32 days ahead; the server recorded it 29 days ahead.
    case = notified(clock, expected_release_date="2026-03-31", notified_on="2026-02-27")
    current = state(case, clock)
    assert current["notified_on"] == "2026-02-27"
    assert (current["notice_recorded_on"], current["notice_days"]) == (NOTICE_DAY, 29)
    assert current["late_notice"] is True
    on_time = notified(clock, expected_release_date="2026-04-01", notified_on="2026-02-27")
    assert state(on_time, clock)["late_notice"] is False


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"notified_on": "2026-03-03"}, "notified_on"),
        ({"person": person(birth_date="2026-03-03")}, "person.birth_date"),
    ],
)
def test_a_release_notice_dated_in_the_future_is_refused(
    clock: FixedClock, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(RuleViolation) as refused:
        notified(clock, **changes)
    assert refused.value.code == "date_in_future"
    assert refused.value.details == {"field": field}


@pytest.mark.parametrize(
    "changes",
    [
        {"prison_cell": "3-12"},
        {"person": person(nickname="小王")},
        {"person": person(id_number="3201021990")},
        {"person": person(gender="unknown")},
        {"release_type": "pardoned"},
        {"expected_release_date": "2026-02-30"},
        {"offence": ""},
        {"institution": "監" * 201},
    ],
)
def test_a_release_notice_with_bad_data_is_invalid(
    clock: FixedClock, changes: dict[str, Any]
) -> None:
    with pytest.raises(InvalidData):
        notified(clock, **changes)


@pytest.mark.parametrize("missing", ["person", "release_type", "institution", "offence"])
def test_a_release_notice_needs_its_required_data(clock: FixedClock, missing: str) -> None:
    data = notice()
    del data[missing]
    with pytest.raises(InvalidData) as refused:
        Resettlement.open(UNIT, data, ctx(clock))
    assert missing in refused.value.details


def test_a_second_release_notice_on_the_same_case_is_refused(clock: FixedClock) -> None:
    case = notified(clock)
    assert_refused(case, clock, "ReleaseNotified", notice(), "case_already_open")


def test_the_person_s_name_is_searchable(clock: FixedClock) -> None:
    assert notified(clock).names() == ["王某某"]


# --- PreReleaseAssistanceProvided ---------------------------------------------------------


def test_assistance_before_release_is_recorded(clock: FixedClock) -> None:
    case = notified(clock)
    record(case, clock, "PreReleaseAssistanceProvided", provided_on=NOTICE_DAY, notes="入監幫教")
    assert state(case, clock)["pre_release_assistance"] == 1


def test_pre_release_assistance_after_release_is_refused(clock: FixedClock) -> None:
    case = released(clock)
    assert_refused(
        case,
        clock,
        "PreReleaseAssistanceProvided",
        {"provided_on": RELEASE_DAY, "notes": "x"},
        "not_allowed_in_status",
    )


# --- PersonReleased -----------------------------------------------------------------------


def test_release_starts_the_handover_window_and_the_assistance_period(clock: FixedClock) -> None:
    case = released(clock)
    current = state(case, clock)
    assert current["status"] == "released"
    assert current["released_on"] == RELEASE_DAY
    assert current["handover_due"] == HANDOVER_DUE
    assert current["assistance_period_ends_on"] == PERIOD_ENDS


def test_a_person_is_released_only_once(clock: FixedClock) -> None:
    case = released(clock)
    assert_refused(
        case, clock, "PersonReleased", {"released_on": RELEASE_DAY}, "not_allowed_in_status"
    )


def test_a_release_dated_in_the_future_is_refused(clock: FixedClock) -> None:
    case = notified(clock)
    assert_refused(case, clock, "PersonReleased", {"released_on": RELEASE_DAY}, "date_in_future")


def test_a_release_dated_before_the_notice_is_accepted_and_the_notice_is_late(
    clock: FixedClock,
) -> None:
    """Gap 14, decided: `released_on` is not compared with the notice. A prison's notice may
    come after the release (the person turns up first); refusing the release would leave
    them out of the handover (漏管). The notice's own lateness records it."""
    case = notified(clock, expected_release_date="2026-02-20")
    record(case, clock, "PersonReleased", released_on="2026-02-20")
    current = state(case, clock)
    assert (current["status"], current["released_on"]) == ("released", "2026-02-20")
    assert current["late_notice"] is True
    # Earlier or later than expected alike (a sentence reduced, a release delayed).
    early = notified(clock)
    record(early, clock, "PersonReleased", released_on="2026-03-01")
    assert state(early, clock)["released_on"] == "2026-03-01"


# --- PersonReceived and the handover window (銜接, 漏管) ----------------------------------


def test_a_person_received_within_the_window_is_not_a_late_handover(clock: FixedClock) -> None:
    case = received(clock, on=HANDOVER_DUE)
    current = state(case, clock)
    assert current["status"] == "received"
    assert current["received_on"] == HANDOVER_DUE
    assert current["reception_method"] == "escorted"
    assert current["late_handover"] is False


def test_a_person_received_after_the_window_is_a_late_handover(clock: FixedClock) -> None:
    case = received(clock, on="2026-04-23")
    assert state(case, clock)["late_handover"] is True


def test_a_person_cannot_be_received_before_release(clock: FixedClock) -> None:
    case = notified(clock)
    assert_refused(
        case,
        clock,
        "PersonReceived",
        {"received_on": NOTICE_DAY, "method": "escorted"},
        "not_allowed_in_status",
    )


def test_a_reception_dated_before_the_release_is_refused(clock: FixedClock) -> None:
    case = released(clock)
    error = assert_refused(
        case,
        clock,
        "PersonReceived",
        {"received_on": "2026-04-14", "method": "escorted"},
        "date_out_of_order",
    )
    assert error.details == {"field": "received_on", "earliest": RELEASE_DAY}


def test_a_reception_dated_in_the_future_is_refused(clock: FixedClock) -> None:
    case = released(clock)
    assert_refused(
        case,
        clock,
        "PersonReceived",
        {"received_on": RECEPTION_DAY, "method": "escorted"},
        "date_in_future",
    )


def test_a_person_is_received_only_once(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "PersonReceived",
        {"received_on": RECEPTION_DAY, "method": "escorted"},
        "not_allowed_in_status",
    )


def test_a_released_person_not_received_in_the_window_is_unreceived(clock: FixedClock) -> None:
    case = released(clock)
    assert case.derived(at(HANDOVER_DUE))["unreceived_after_window"] is False
    assert case.derived(at("2026-04-23"))["unreceived_after_window"] is True


def test_reception_clears_the_unreceived_flag(clock: FixedClock) -> None:
    case = received(clock, on="2026-05-10")
    assert state(case, clock)["unreceived_after_window"] is False
    assert state(case, clock)["late_handover"] is True


def test_a_person_not_yet_released_is_never_unreceived(clock: FixedClock) -> None:
    case = notified(clock)
    assert case.derived(at("2027-01-01"))["unreceived_after_window"] is False


# --- key people are escorted (必接必送) -----------------------------------------------------


def test_a_key_person_received_escorted_is_accepted(clock: FixedClock) -> None:
    case = notified(clock)
    record(case, clock, "AssistanceCategorised", category="key", risk_level="high")
    clock.set(at(RELEASE_DAY))
    record(case, clock, "PersonReleased", released_on=RELEASE_DAY)
    record(case, clock, "PersonReceived", received_on=RELEASE_DAY, method="escorted")
    assert state(case, clock)["reception_method"] == "escorted"


def test_a_key_person_cannot_be_received_self_reported(clock: FixedClock) -> None:
    case = notified(clock)
    record(case, clock, "AssistanceCategorised", category="key", risk_level="high")
    clock.set(at(RELEASE_DAY))
    record(case, clock, "PersonReleased", released_on=RELEASE_DAY)
    assert_refused(
        case,
        clock,
        "PersonReceived",
        {"received_on": RELEASE_DAY, "method": "self_reported"},
        "key_person_not_escorted",
    )


def test_an_ordinary_person_may_report_in_themselves(clock: FixedClock) -> None:
    case = notified(clock)
    record(case, clock, "AssistanceCategorised", category="ordinary", risk_level="low")
    clock.set(at(RELEASE_DAY))
    record(case, clock, "PersonReleased", released_on=RELEASE_DAY)
    record(case, clock, "PersonReceived", received_on=RELEASE_DAY, method="self_reported")
    assert state(case, clock)["reception_method"] == "self_reported"


def test_a_person_may_be_categorised_key_after_a_self_reported_reception(
    clock: FixedClock,
) -> None:
    case = received(clock, method="self_reported")
    record(case, clock, "AssistanceCategorised", category="key", risk_level="high")
    current = state(case, clock)
    assert (current["category"], current["risk_level"], current["categorised"]) == (
        "key",
        "high",
        True,
    )


# --- AssistanceActivityRecorded -------------------------------------------------------------


def test_assistance_activities_are_counted(clock: FixedClock) -> None:
    case = received(clock)
    record(
        case, clock, "AssistanceActivityRecorded", held_on=RECEPTION_DAY, kind="visit", notes="家訪"
    )
    record(
        case, clock, "AssistanceActivityRecorded", held_on=RECEPTION_DAY, kind="talk", notes="談話"
    )
    assert state(case, clock)["activities"] == 2
    assert state(case, clock)["last_activity_on"] == RECEPTION_DAY


def test_an_activity_before_reception_is_refused(clock: FixedClock) -> None:
    case = released(clock)
    assert_refused(
        case,
        clock,
        "AssistanceActivityRecorded",
        {"held_on": RELEASE_DAY, "kind": "visit", "notes": "x"},
        "not_allowed_in_status",
    )


def test_an_activity_while_contact_is_lost_is_refused(clock: FixedClock) -> None:
    case = lost(clock)
    assert_refused(
        case,
        clock,
        "AssistanceActivityRecorded",
        {"held_on": "2026-05-01", "kind": "visit", "notes": "x"},
        "not_allowed_in_status",
    )


def test_an_activity_dated_before_the_release_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "AssistanceActivityRecorded",
        {"held_on": "2026-04-01", "kind": "visit", "notes": "x"},
        "date_out_of_order",
    )


def test_an_activity_of_an_unknown_kind_is_invalid(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "AssistanceActivityRecorded",
        {"held_on": RECEPTION_DAY, "kind": "surveillance", "notes": "x"},
        "invalid_data",
        error=InvalidData,
    )


# --- AssistanceDelegated (委托幫教) -----------------------------------------------------------


def test_a_delegation_is_no_longer_recorded_directly(clock: FixedClock) -> None:
    # A case moves only when the receiving unit accepts (tests/domain/test_transfers.py).
    case = received(clock)
    assert_refused(
        case,
        clock,
        "AssistanceDelegated",
        {"to_unit": "320104002", "reason": "在秦淮區務工居住"},
        "transfer_required",
    )


def test_delegation_to_something_not_a_unit_code_is_invalid(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "AssistanceDelegated",
        {"to_unit": "秦淮區", "reason": "x"},
        "invalid_data",
        error=InvalidData,
    )


# --- SkillTrainingCompleted ----------------------------------------------------------------


def test_skill_training_is_counted_even_before_release(clock: FixedClock) -> None:
    case = notified(clock)
    record(case, clock, "SkillTrainingCompleted", course="中式烹調師", completed_on="2026-02-10")
    assert state(case, clock)["trainings"] == 1


def test_skill_training_dated_in_the_future_is_refused(clock: FixedClock) -> None:
    case = notified(clock)
    assert_refused(
        case,
        clock,
        "SkillTrainingCompleted",
        {"course": "電工", "completed_on": "2026-03-03"},
        "date_in_future",
    )


# --- PersonPlaced and PlacementEnded -----------------------------------------------------------


def test_a_placement_at_a_transitional_base_names_the_base(clock: FixedClock) -> None:
    case = placed(clock, "transitional_base", base_id="JS-NJ-007")
    current = state(case, clock)
    assert (current["placement"], current["base_id"]) == ("transitional_base", "JS-NJ-007")
    assert current["ever_placed"] is True
    assert current["placements"] == 1


def test_a_transitional_placement_without_a_base_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "PersonPlaced",
        {"placement": "transitional_base", "placed_on": RECEPTION_DAY},
        "base_id_required",
    )


def test_a_base_on_another_kind_of_placement_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "PersonPlaced",
        {"placement": "employment", "placed_on": RECEPTION_DAY, "base_id": "JS-NJ-007"},
        "base_id_without_transitional_base",
    )


def test_a_second_placement_while_placed_is_refused(clock: FixedClock) -> None:
    case = placed(clock)
    assert_refused(
        case,
        clock,
        "PersonPlaced",
        {"placement": "family", "placed_on": RECEPTION_DAY},
        "already_placed",
    )


def test_a_placement_before_reception_is_refused(clock: FixedClock) -> None:
    case = released(clock)
    assert_refused(
        case,
        clock,
        "PersonPlaced",
        {"placement": "employment", "placed_on": RELEASE_DAY},
        "not_allowed_in_status",
    )


def test_a_job_found_between_release_and_reception_counts(clock: FixedClock) -> None:
    case = received(clock)
    record(case, clock, "PersonPlaced", placement="self_employment", placed_on="2026-04-16")
    assert state(case, clock)["placed_on"] == "2026-04-16"


def test_a_placement_dated_before_the_release_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "PersonPlaced",
        {"placement": "employment", "placed_on": "2026-04-14"},
        "date_out_of_order",
    )


def test_a_placement_ends_and_the_person_stays_ever_placed(clock: FixedClock) -> None:
    case = placed(clock, "transitional_base", base_id="JS-NJ-007")
    clock.set(at("2026-06-01"))
    record(case, clock, "PlacementEnded", ended_on="2026-06-01", reason="找到工作")
    current = state(case, clock)
    assert (current["placement"], current["base_id"]) == (None, None)
    assert current["ever_placed"] is True


def test_a_new_placement_may_follow_an_ended_one(clock: FixedClock) -> None:
    case = placed(clock, "transitional_base", base_id="JS-NJ-007")
    record(case, clock, "PlacementEnded", ended_on=RECEPTION_DAY, reason="轉就業")
    record(case, clock, "PersonPlaced", placement="employment", placed_on=RECEPTION_DAY)
    assert state(case, clock)["placement"] == "employment"
    assert state(case, clock)["placements"] == 2


def test_ending_a_placement_when_not_placed_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case, clock, "PlacementEnded", {"ended_on": RECEPTION_DAY, "reason": "x"}, "not_placed"
    )


def test_a_placement_cannot_end_before_it_began(clock: FixedClock) -> None:
    case = placed(clock)
    assert_refused(
        case,
        clock,
        "PlacementEnded",
        {"ended_on": "2026-04-16", "reason": "x"},
        "date_out_of_order",
    )


# --- ContactLost / ContactRestored (脫管) -----------------------------------------------------


def test_lost_contact_is_flagged_until_restored(clock: FixedClock) -> None:
    case = lost(clock)
    assert state(case, clock)["contact_lost"] is True
    assert state(case, clock)["status"] == "contact_lost"
    clock.set(at("2026-05-20"))
    record(case, clock, "ContactRestored", on="2026-05-20", notes="本人回到住所")
    assert state(case, clock)["contact_lost"] is False
    assert state(case, clock)["status"] == "received"
    assert state(case, clock)["contact_losses"] == 1


def test_contact_is_not_lost_twice_without_being_restored(clock: FixedClock) -> None:
    case = lost(clock)
    assert_refused(
        case, clock, "ContactLost", {"on": "2026-05-01", "notes": "x"}, "not_allowed_in_status"
    )


def test_contact_cannot_be_restored_if_it_was_not_lost(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "ContactRestored",
        {"on": RECEPTION_DAY, "notes": "x"},
        "not_allowed_in_status",
    )


def test_contact_cannot_be_lost_before_reception(clock: FixedClock) -> None:
    case = released(clock)
    assert_refused(
        case, clock, "ContactLost", {"on": RELEASE_DAY, "notes": "x"}, "not_allowed_in_status"
    )


def test_contact_lost_dated_before_the_reception_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case, clock, "ContactLost", {"on": RELEASE_DAY, "notes": "x"}, "date_out_of_order"
    )


def test_contact_restored_before_it_was_lost_is_refused(clock: FixedClock) -> None:
    case = lost(clock)
    assert_refused(
        case, clock, "ContactRestored", {"on": "2026-04-30", "notes": "x"}, "date_out_of_order"
    )


# --- Reoffended ---------------------------------------------------------------------------


def test_reoffending_records_the_years_it_happened(clock: FixedClock) -> None:
    case = received(clock)
    clock.set(at("2027-02-01"))
    record(case, clock, "Reoffended", offence="詐騙罪", on="2027-01-20")
    record(case, clock, "Reoffended", offence="盜竊罪", on="2026-12-30")
    current = state(case, clock)
    assert current["reoffended"] is True
    assert current["reoffended_on"] == "2026-12-30"
    assert current["reoffended_year"] == 2026
    assert current["reoffence_years"] == [2026, 2027]


def test_a_released_person_not_yet_received_may_reoffend(clock: FixedClock) -> None:
    case = released(clock)
    record(case, clock, "Reoffended", offence="搶劫罪", on=RELEASE_DAY)
    assert state(case, clock)["reoffended"] is True


def test_reoffending_before_release_is_refused(clock: FixedClock) -> None:
    case = notified(clock)
    assert_refused(
        case, clock, "Reoffended", {"offence": "x", "on": NOTICE_DAY}, "not_allowed_in_status"
    )


def test_a_reoffence_dated_before_the_release_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case, clock, "Reoffended", {"offence": "x", "on": "2026-04-01"}, "date_out_of_order"
    )


# --- AssistanceEnded -------------------------------------------------------------------------


def test_assistance_ends_when_the_period_is_completed(clock: FixedClock) -> None:
    case = ended(clock)
    current = state(case, clock)
    assert current["status"] == "closed"
    assert current["end_reason"] == "period_completed"
    assert current["ended_on"] == PERIOD_ENDS
    assert not case.is_open


def test_period_completed_before_the_assistance_period_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    clock.set(at(PERIOD_ENDS))
    error = assert_refused(
        case,
        clock,
        "AssistanceEnded",
        {"reason": "period_completed", "ended_on": "2031-04-14"},
        "assistance_period_not_completed",
    )
    assert error.details == {"period_ends_on": PERIOD_ENDS}


def test_period_completed_before_release_is_refused(clock: FixedClock) -> None:
    case = notified(clock)
    assert_refused(
        case,
        clock,
        "AssistanceEnded",
        {"reason": "period_completed", "ended_on": NOTICE_DAY},
        "assistance_period_not_completed",
    )


def test_assistance_may_end_early_for_death(clock: FixedClock) -> None:
    case = received(clock)
    record(case, clock, "AssistanceEnded", reason="death", ended_on=RECEPTION_DAY)
    assert state(case, clock)["status"] == "closed"


def test_an_ended_case_is_never_unreceived(clock: FixedClock) -> None:
    case = released(clock)
    record(case, clock, "AssistanceEnded", reason="other", ended_on=RELEASE_DAY)
    assert case.derived(at("2026-06-01"))["unreceived_after_window"] is False


def test_an_end_dated_before_the_release_is_refused(clock: FixedClock) -> None:
    case = received(clock)
    assert_refused(
        case,
        clock,
        "AssistanceEnded",
        {"reason": "other", "ended_on": "2026-04-01"},
        "date_out_of_order",
    )


def test_ending_assistance_frees_the_place_at_the_base(clock: FixedClock) -> None:
    case = placed(clock, "transitional_base", base_id="JS-NJ-007")
    record(case, clock, "AssistanceEnded", reason="other", ended_on=RECEPTION_DAY)
    current = state(case, clock)
    assert (current["placement"], current["base_id"], current["ever_placed"]) == (
        None,
        None,
        True,
    )


ANY_EVENT_AFTER_THE_END: list[tuple[str, dict[str, Any]]] = [
    ("PreReleaseAssistanceProvided", {"provided_on": PERIOD_ENDS, "notes": "x"}),
    ("PersonReleased", {"released_on": PERIOD_ENDS}),
    ("PersonReceived", {"received_on": PERIOD_ENDS, "method": "escorted"}),
    ("AssistanceCategorised", {"category": "key", "risk_level": "high"}),
    ("AssistanceActivityRecorded", {"held_on": PERIOD_ENDS, "kind": "visit", "notes": "x"}),
    ("AssistanceDelegated", {"to_unit": "320104002", "reason": "x"}),
    ("SkillTrainingCompleted", {"course": "x", "completed_on": PERIOD_ENDS}),
    ("PersonPlaced", {"placement": "family", "placed_on": PERIOD_ENDS}),
    ("PlacementEnded", {"ended_on": PERIOD_ENDS, "reason": "x"}),
    ("ContactLost", {"on": PERIOD_ENDS, "notes": "x"}),
    ("ContactRestored", {"on": PERIOD_ENDS, "notes": "x"}),
    ("Reoffended", {"offence": "x", "on": PERIOD_ENDS}),
    ("AssistanceEnded", {"reason": "other", "ended_on": PERIOD_ENDS}),
]


@pytest.mark.parametrize(("type_name", "data"), ANY_EVENT_AFTER_THE_END)
def test_nothing_is_recorded_after_assistance_ended(
    clock: FixedClock, type_name: str, data: dict[str, Any]
) -> None:
    case = ended(clock)
    error = assert_refused(case, clock, type_name, data, "not_allowed_in_status")
    assert error.details["status"] == "closed"


def test_the_case_kind_covers_every_event_in_the_closed_check() -> None:
    covered = {type_name for type_name, _ in ANY_EVENT_AFTER_THE_END}
    # The transfers are a supervisor's (tests/domain/test_transfers.py covers them).
    transfers = {"TransferProposed", "TransferAccepted", "TransferDeclined"}
    assert covered == {event.__name__ for event in Resettlement.events} - {
        "ReleaseNotified",
        *transfers,
    }


# --- dates of things that happened are not in the future -------------------------------------

TOMORROW = "2026-04-18"  # the day after RECEPTION_DAY, where the received case stands


@pytest.mark.parametrize(
    ("type_name", "data", "field"),
    [
        (
            "AssistanceActivityRecorded",
            {"held_on": TOMORROW, "kind": "visit", "notes": "x"},
            "held_on",
        ),
        ("SkillTrainingCompleted", {"course": "x", "completed_on": TOMORROW}, "completed_on"),
        ("PersonPlaced", {"placement": "family", "placed_on": TOMORROW}, "placed_on"),
        ("ContactLost", {"on": TOMORROW, "notes": "x"}, "on"),
        ("Reoffended", {"offence": "x", "on": TOMORROW}, "on"),
        ("AssistanceEnded", {"reason": "death", "ended_on": TOMORROW}, "ended_on"),
    ],
)
def test_a_record_dated_in_the_future_is_refused(
    clock: FixedClock, type_name: str, data: dict[str, Any], field: str
) -> None:
    case = received(clock)
    error = assert_refused(case, clock, type_name, data, "date_in_future")
    assert error.details == {"field": field}


def test_pre_release_assistance_dated_in_the_future_is_refused(clock: FixedClock) -> None:
    case = notified(clock)
    assert_refused(
        case,
        clock,
        "PreReleaseAssistanceProvided",
        {"provided_on": "2026-03-03", "notes": "x"},
        "date_in_future",
    )


def test_a_placement_end_dated_in_the_future_is_refused(clock: FixedClock) -> None:
    case = placed(clock)
    assert_refused(
        case, clock, "PlacementEnded", {"ended_on": TOMORROW, "reason": "x"}, "date_in_future"
    )


def test_a_restoration_dated_in_the_future_is_refused(clock: FixedClock) -> None:
    case = lost(clock)
    assert_refused(
        case, clock, "ContactRestored", {"on": "2026-05-02", "notes": "x"}, "date_in_future"
    )


# --- data and replay ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "data"),
    [
        ("PersonReceived", {"received_on": RECEPTION_DAY, "method": "escorted", "phone": "1"}),
        ("AssistanceCategorised", {"category": "dangerous", "risk_level": "high"}),
        ("AssistanceCategorised", {"category": "key"}),
        ("ContactLost", {"on": "yesterday", "notes": "x"}),
        ("ContactLost", {"on": RECEPTION_DAY, "notes": "x" * 4001}),
        ("PlacementEnded", {"ended_on": RECEPTION_DAY, "reason": ""}),
    ],
)
def test_event_data_that_does_not_match_its_schema_is_invalid(
    clock: FixedClock, type_name: str, data: dict[str, Any]
) -> None:
    case = received(clock)
    assert_refused(case, clock, type_name, data, "invalid_data", error=InvalidData)


def test_the_state_replays_from_the_recorded_events(clock: FixedClock) -> None:
    case = placed(clock, "transitional_base", base_id="JS-NJ-007")
    record(case, clock, "AssistanceCategorised", category="key", risk_level="medium")
    case.record(
        "TransferProposed",
        {"to_unit": "320104002", "reason": "x"},
        ctx(clock, Actor(user_id="u_sup", role="supervisor", unit=UNIT)),
    )
    case.record(
        "TransferAccepted",
        {"to_unit": "320104002"},
        ctx(clock, Actor(user_id="u_sup2", role="supervisor", unit="320104002")),
    )
    replayed: Any = None
    for event in case.pending_events:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, Resettlement)
    assert replayed.state(clock.now()) == state(case, clock)
