"""A resettlement case (刑釋解教人員安置幫教) through the one application service, on SQLite
and PostgreSQL: every accepted event lands in the store, every refusal appends nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from casetrail.application import SNAPSHOT_INTERVAL
from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import FixedClock
from domain.errors import CaseNotFound, CasetrailError, InvalidData, RuleViolation
from tests.integration.steps import Steps, at, register_base

XUANWU_COMMUNITY = "320102001001"
QINHUAI_STREET = "320104002"


def notice(**changes: Any) -> dict[str, Any]:
    return {
        "person": {
            "name": "李某某",
            "id_number": "320102198505052345",
            "gender": "female",
            "birth_date": "1985-05-05",
            "household_address": "江蘇省南京市玄武區梅園新村街道大悲巷1號",
            "residence_address": "江蘇省南京市玄武區梅園新村街道大悲巷1號",
        },
        "release_type": "sentence_completed",
        "institution": "江蘇省某女子監獄",
        "expected_release_date": "2026-04-15",
        "offence": "詐騙罪",
        **changes,
    }


def test_a_resettlement_case_runs_its_whole_course(
    casetrail: Casetrail, clock: FixedClock, caseworker: Actor, auditor: Actor
) -> None:
    service = casetrail.service
    clock.set(at("2026-03-02"))
    opened = service.open_case(
        caseworker, "resettlement", XUANWU_COMMUNITY, "ReleaseNotified", notice()
    )
    assert (opened.kind, opened.version) == ("resettlement", 1)
    steps = Steps(casetrail, auditor, opened.id)
    assert steps.state()["late_notice"] is False

    # Before release: assistance inside, categorisation; no reception yet.
    steps.refused(
        caseworker,
        "PersonReceived",
        "not_allowed_in_status",
        received_on="2026-03-02",
        method="escorted",
    )
    steps.append(
        caseworker, "PreReleaseAssistanceProvided", provided_on="2026-03-02", notes="入監幫教"
    )
    steps.append(caseworker, "AssistanceCategorised", category="key", risk_level="high")

    clock.set(at("2026-04-15"))
    steps.append(caseworker, "PersonReleased", released_on="2026-04-15")
    steps.refused(
        caseworker,
        "PreReleaseAssistanceProvided",
        "not_allowed_in_status",
        provided_on="2026-04-15",
        notes="x",
    )

    # Past the handover window and not received: 漏管.
    clock.set(at("2026-04-25"))
    assert steps.state()["unreceived_after_window"] is True
    steps.refused(
        caseworker,
        "PersonReceived",
        "key_person_not_escorted",
        received_on="2026-04-25",
        method="self_reported",
    )
    steps.append(caseworker, "PersonReceived", received_on="2026-04-25", method="escorted")
    received = steps.state()
    assert (received["status"], received["late_handover"]) == ("received", True)
    assert received["unreceived_after_window"] is False

    steps.append(
        caseworker, "AssistanceActivityRecorded", held_on="2026-04-25", kind="visit", notes="家訪"
    )
    steps.refused(
        caseworker,
        "PersonPlaced",
        "base_id_required",
        placement="transitional_base",
        placed_on="2026-04-25",
    )
    steps.refused(
        caseworker,
        "PersonPlaced",
        "unknown_base",
        placement="transitional_base",
        placed_on="2026-04-25",
        base_id="NJ-XW-01",
    )
    register_base(casetrail, "NJ-XW-01", "320102")
    steps.append(
        caseworker,
        "PersonPlaced",
        placement="transitional_base",
        placed_on="2026-04-25",
        base_id="NJ-XW-01",
    )

    # 委托幫教: the unit must exist; then the case moves and leaves Xuanwu's jurisdiction.
    steps.refused(
        caseworker,
        "AssistanceDelegated",
        "transfer_required",
        to_unit=QINHUAI_STREET,
        reason="x",
    )
    xuanwu_lead = Actor(user_id="u_xuanwu_lead", role="supervisor", unit=caseworker.unit)
    steps.refused(
        xuanwu_lead,
        "TransferProposed",
        "invalid_data",
        InvalidData,
        to_unit="320199999",
        reason="x",
    )
    steps.append(xuanwu_lead, "TransferProposed", to_unit=QINHUAI_STREET, reason="在秦淮區務工")
    assert steps.state()["unit"] == XUANWU_COMMUNITY
    qinhuai_lead = Actor(user_id="u_qinhuai_lead", role="supervisor", unit="320104")
    steps.append(qinhuai_lead, "TransferAccepted", to_unit=QINHUAI_STREET)
    moved = steps.state()
    assert moved["unit"] == QINHUAI_STREET
    assert moved["delegations"][0]["from_unit"] == XUANWU_COMMUNITY
    steps.refused(
        caseworker,
        "AssistanceActivityRecorded",
        "case_not_found",
        CaseNotFound,
        held_on="2026-04-25",
        kind="talk",
        notes="x",
    )

    qinhuai = Actor(user_id="u_qinhuai", role="caseworker", unit="320104")
    clock.set(at("2026-06-01"))
    steps.append(qinhuai, "PlacementEnded", ended_on="2026-06-01", reason="轉就業")
    steps.append(qinhuai, "PersonPlaced", placement="employment", placed_on="2026-06-01")
    steps.append(qinhuai, "SkillTrainingCompleted", course="家政服務員", completed_on="2026-05-20")
    steps.append(qinhuai, "ContactLost", on="2026-06-01", notes="不在住所")
    assert steps.state()["contact_lost"] is True
    steps.refused(
        qinhuai,
        "AssistanceActivityRecorded",
        "not_allowed_in_status",
        held_on="2026-06-01",
        kind="visit",
        notes="x",
    )
    clock.set(at("2026-06-10"))
    steps.append(qinhuai, "ContactRestored", on="2026-06-10", notes="本人返回")
    assert steps.state()["contact_lost"] is False

    clock.set(at("2027-03-01"))
    steps.append(qinhuai, "Reoffended", offence="盜竊罪", on="2027-02-15")
    steps.refused(
        qinhuai,
        "AssistanceEnded",
        "assistance_period_not_completed",
        reason="period_completed",
        ended_on="2027-03-01",
    )
    steps.refused(
        qinhuai,
        "WarningIssued",
        "unknown_event_type",
        CasetrailError,
        violation="x",
        on="2027-03-01",
    )

    clock.set(at("2031-04-15"))
    closed_version = steps.append(
        qinhuai, "AssistanceEnded", reason="period_completed", ended_on="2031-04-15"
    )
    final = steps.state()
    assert final["status"] == "closed"
    assert (final["ever_placed"], final["categorised"], final["activities"]) == (True, True, 1)
    assert (final["reoffended"], final["reoffended_year"]) == (True, 2027)
    steps.refused(
        qinhuai,
        "AssistanceActivityRecorded",
        "not_allowed_in_status",
        held_on="2031-04-15",
        kind="visit",
        notes="x",
    )

    history = steps.history()
    assert len(history) == closed_version == 16
    assert {event["kind"] for event in history} == {"resettlement"}
    assert [event["type"] for event in history][:5] == [
        "ReleaseNotified",
        "PreReleaseAssistanceProvided",
        "AssistanceCategorised",
        "PersonReleased",
        "PersonReceived",
    ]
    # The past as it was: right after release the person was not yet received.
    as_released = casetrail.reads.case_state(auditor, opened.id, as_of_version=4)
    assert as_released["status"] == "released"
    assert as_released["unit"] == XUANWU_COMMUNITY


def test_a_late_notice_is_stored_and_flagged(
    casetrail: Casetrail, clock: FixedClock, caseworker: Actor
) -> None:
    clock.set(at("2026-04-01"))
    opened = casetrail.service.open_case(
        caseworker, "resettlement", XUANWU_COMMUNITY, "ReleaseNotified", notice()
    )
    current = casetrail.reads.case_state(caseworker, opened.id)
    assert (current["late_notice"], current["notice_days"]) == (True, 14)


def test_a_resettlement_case_opens_only_with_a_release_notice(
    casetrail: Casetrail, clock: FixedClock, caseworker: Actor
) -> None:
    head = casetrail.reads.head_position()
    with pytest.raises(RuleViolation) as refusal:
        casetrail.service.open_case(
            caseworker,
            "resettlement",
            XUANWU_COMMUNITY,
            "PersonReleased",
            {"released_on": "2026-03-01"},
        )
    assert refusal.value.code == "wrong_opening_event"
    with pytest.raises(InvalidData):
        casetrail.service.open_case(
            caseworker,
            "resettlement",
            XUANWU_COMMUNITY,
            "ReleaseNotified",
            notice(unexpected="x"),
        )
    assert casetrail.reads.head_position() == head


def test_a_long_case_reads_back_the_same_from_its_snapshot(
    casetrail: Casetrail, clock: FixedClock, caseworker: Actor
) -> None:
    service = casetrail.service
    clock.set(at("2026-04-15"))
    case_id = service.open_case(
        caseworker, "resettlement", XUANWU_COMMUNITY, "ReleaseNotified", notice()
    ).id
    service.append(caseworker, case_id, "PersonReleased", {"released_on": "2026-04-15"})
    service.append(
        caseworker, case_id, "PersonReceived", {"received_on": "2026-04-15", "method": "escorted"}
    )
    lead = Actor(user_id="u_lead", role="supervisor", unit="320102")
    service.append(lead, case_id, "TransferProposed", {"to_unit": QINHUAI_STREET, "reason": "x"})
    qinhuai = Actor(user_id="u_qinhuai_lead", role="supervisor", unit=QINHUAI_STREET)
    service.append(qinhuai, case_id, "TransferAccepted", {"to_unit": QINHUAI_STREET})
    activity = {"held_on": "2026-04-15", "kind": "visit", "notes": "家訪"}
    for _ in range(SNAPSHOT_INTERVAL):
        service.append(qinhuai, case_id, "AssistanceActivityRecorded", activity)
    assert list(casetrail.app.snapshots.get(UUID(case_id)))  # type: ignore[union-attr]
    current = casetrail.reads.case_state(qinhuai, case_id)
    assert current["activities"] == SNAPSHOT_INTERVAL
    assert current["released_on"] == "2026-04-15"
    assert current["delegations"] == [
        {"from_unit": XUANWU_COMMUNITY, "to_unit": QINHUAI_STREET, "on": "2026-04-15"}
    ]
