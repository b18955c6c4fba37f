"""A community correction case (社區矯正) through the one application service, on SQLite
and PostgreSQL: accepted events land in the store, refusals append nothing, and a residence
change moves the case to the new unit."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import FixedClock
from domain.errors import CaseNotFound, InvalidData, NotPermitted, RuleViolation
from tests.integration.steps import Steps, at

XUANWU_STREET = "320102001"
QINHUAI_STREET = "320104002"

STREET_WORKER = Actor(user_id="u_street", role="caseworker", unit=XUANWU_STREET)
STREET_SUPERVISOR = Actor(user_id="u_street_lead", role="supervisor", unit=XUANWU_STREET)
COUNTY_SUPERVISOR = Actor(user_id="u_county_lead", role="supervisor", unit="320102")
QINHUAI_WORKER = Actor(user_id="u_qinhuai", role="caseworker", unit=QINHUAI_STREET)
QINHUAI_SUPERVISOR = Actor(user_id="u_qinhuai_lead", role="supervisor", unit=QINHUAI_STREET)


def reception(**changes: Any) -> dict[str, Any]:
    return {
        "person": {
            "name": "趙某某",
            "id_number": "320102199203034567",
            "gender": "female",
            "birth_date": "1992-03-03",
            "household_address": "江蘇省南京市玄武區梅園新村街道大悲巷2號",
            "residence_address": "江蘇省南京市玄武區梅園新村街道大悲巷2號",
        },
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": "2026-02-27",
        "offence_date": "2025-08-01",
        "term_start": "2026-02-27",
        "term_end": "2026-08-26",
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
        **changes,
    }


def test_a_correction_case_from_reception_to_completion(
    casetrail: Casetrail, clock: FixedClock, auditor: Actor
) -> None:
    service = casetrail.service
    clock.set(at("2026-03-02"))

    head = casetrail.reads.head_position()
    outside = reception(
        person={**reception()["person"], "household_address": "上海市黃浦區南京東路1號"}
    )
    with pytest.raises(RuleViolation) as raised:
        service.open_case(
            STREET_WORKER, "correction", XUANWU_STREET, "CorrectionSubjectReceived", outside
        )
    assert raised.value.code == "not_eligible_in_province"
    assert casetrail.reads.head_position() == head

    opened = service.open_case(
        STREET_WORKER, "correction", XUANWU_STREET, "CorrectionSubjectReceived", reception()
    )
    assert (opened.kind, opened.version) == ("correction", 1)
    steps = Steps(casetrail, auditor, opened.id)

    assert steps.append(STREET_WORKER, "SubjectReportedIn", reported_on="2026-03-02") == 2
    men_only = {
        "officer": {"name": "李警官", "gender": "male"},
        "social_worker": {"name": "張社工", "gender": "male"},
        "volunteers": [{"name": "王志願者", "gender": "male"}],
    }
    steps.refused(
        STREET_WORKER, "CorrectionTeamFormed", "female_subject_needs_woman_on_team", **men_only
    )
    with_a_woman = {**men_only, "social_worker": {"name": "張社工", "gender": "female"}}
    steps.append(STREET_WORKER, "CorrectionTeamFormed", **with_a_woman)
    steps.append(STREET_WORKER, "SupervisionLevelSet", level="ordinary")
    steps.append(STREET_WORKER, "CheckInRecorded", on="2026-03-02", notes="按時報告")
    steps.append(
        STREET_WORKER, "CommunityServiceRecorded", on="2026-03-02", notes="社區清潔", hours=3
    )

    eight_days = {"destination": "上海市", "from": "2026-03-02", "to": "2026-03-09"}
    steps.append(STREET_WORKER, "LeaveRequested", **eight_days)
    steps.refused(
        STREET_SUPERVISOR,
        "LeaveApproved",
        "leave_needs_county_supervisor",
        NotPermitted,
        **eight_days,
    )
    steps.append(COUNTY_SUPERVISOR, "LeaveApproved", **eight_days)
    assert steps.state()["on_leave"] is True
    clock.set(at("2026-03-09"))
    steps.append(STREET_WORKER, "LeaveReturned", **eight_days)
    assert steps.state()["on_leave"] is False

    steps.refused(
        STREET_SUPERVISOR,
        "ElectronicMonitoringStarted",
        "monitoring_needs_county_supervisor",
        NotPermitted,
        grounds="違反外出規定",
        until="2026-05-09",
    )
    steps.append(
        COUNTY_SUPERVISOR, "ElectronicMonitoringStarted", grounds="違反外出規定", until="2026-05-09"
    )
    assert steps.state()["electronic_monitoring_active"] is True

    steps.refused(
        STREET_SUPERVISOR,
        "WarningIssued",
        "sanction_out_of_order",
        violation="未按時報告",
        on="2026-03-09",
    )
    steps.append(STREET_SUPERVISOR, "ReprimandIssued", violation="未按時報告", on="2026-03-09")
    steps.append(STREET_SUPERVISOR, "WarningIssued", violation="再次未按時報告", on="2026-03-09")
    steps.refused(
        STREET_SUPERVISOR,
        "RevocationProposed",
        "revocation_grounds_not_borne_out",
        grounds={"basis": "repeated_warnings", "facts": "一次警告"},
    )

    # 遷居: the old direct move is refused; the street's supervisor proposes, the case stays
    # until Qinhuai's supervisor accepts.
    steps.refused(
        STREET_SUPERVISOR,
        "ResidenceChanged",
        "transfer_required",
        to_unit=QINHUAI_STREET,
        approved_on="2026-03-09",
    )
    steps.refused(
        STREET_SUPERVISOR,
        "TransferProposed",
        "invalid_data",
        InvalidData,
        to_unit="320199001",
        reason="x",
    )
    steps.append(STREET_SUPERVISOR, "TransferProposed", to_unit=QINHUAI_STREET, reason="經批准遷居")
    assert steps.state()["unit"] == XUANWU_STREET
    assert steps.state()["pending_transfer"]["to_unit"] == QINHUAI_STREET
    # Only the receiving unit answers: the proposer's side is refused.
    steps.refused(
        COUNTY_SUPERVISOR,
        "TransferAccepted",
        "outside_jurisdiction",
        NotPermitted,
        to_unit=QINHUAI_STREET,
    )
    version_before_move = steps.append(
        QINHUAI_SUPERVISOR, "TransferAccepted", to_unit=QINHUAI_STREET
    )
    state = steps.state()
    assert state["unit"] == QINHUAI_STREET
    assert state["residence_changes"] == 1
    assert [event["type"] for event in steps.history()[-2:]] == [
        "TransferProposed",
        "TransferAccepted",
    ]
    before = casetrail.reads.case_state(auditor, opened.id, as_of_version=version_before_move - 1)
    assert before["unit"] == XUANWU_STREET
    # The case now belongs to the new unit: for the old street it no longer exists.
    steps.refused(
        STREET_WORKER,
        "CheckInRecorded",
        "case_not_found",
        CaseNotFound,
        on="2026-03-09",
        notes="按時報告",
    )
    steps.append(QINHUAI_WORKER, "CheckInRecorded", on="2026-03-09", notes="到新居住地報到")

    clock.set(at("2026-08-25"))
    assert steps.state()["term_ending_soon"] is True
    steps.refused(
        QINHUAI_WORKER,
        "CorrectionCompleted",
        "completion_before_term_end",
        on="2026-08-25",
        certificate_no="秦矯解字2026第7號",
    )
    clock.set(at("2026-08-26"))
    last = steps.append(
        QINHUAI_WORKER, "CorrectionCompleted", on="2026-08-26", certificate_no="秦矯解字2026第7號"
    )
    final = steps.state()
    assert (final["status"], final["version"]) == ("completed", last)
    assert final["electronic_monitoring_active"] is False
    steps.refused(
        QINHUAI_WORKER,
        "CheckInRecorded",
        "not_allowed_in_status",
        on="2026-08-26",
        notes="按時報告",
    )
    assert [event["type"] for event in steps.history()][:3] == [
        "CorrectionSubjectReceived",
        "SubjectReportedIn",
        "CorrectionTeamFormed",
    ]
    assert all(event["kind"] == "correction" for event in steps.history())


def test_leave_and_monitoring_survive_a_snapshot(
    casetrail: Casetrail, clock: FixedClock, auditor: Actor
) -> None:
    """Past the snapshot interval the case is read back from a snapshot: its dates still work."""
    service = casetrail.service
    clock.set(at("2026-03-02"))
    opened = service.open_case(
        STREET_WORKER, "correction", XUANWU_STREET, "CorrectionSubjectReceived", reception()
    )
    steps = Steps(casetrail, auditor, opened.id)
    steps.append(STREET_WORKER, "SubjectReportedIn", reported_on="2026-03-02")
    leave = {"destination": "蘇州市", "from": "2026-03-02", "to": "2026-03-04"}
    steps.append(STREET_WORKER, "LeaveRequested", **leave)
    steps.append(STREET_SUPERVISOR, "LeaveApproved", **leave)
    steps.append(
        COUNTY_SUPERVISOR, "ElectronicMonitoringStarted", grounds="嚴管", until="2026-04-01"
    )
    version = 5
    while version < 55:
        version = steps.append(STREET_WORKER, "CheckInRecorded", on="2026-03-02", notes="電話報告")
    snapshots = casetrail.app.snapshots
    assert snapshots is not None
    assert [snapshot.originator_version for snapshot in snapshots.get(UUID(opened.id))] == [50]
    steps.refused(
        STREET_WORKER,
        "LeaveRequested",
        "leave_overlaps",
        destination="無錫市",
        **{"from": "2026-03-03", "to": "2026-03-05"},
    )
    steps.refused(
        COUNTY_SUPERVISOR,
        "ElectronicMonitoringStarted",
        "monitoring_overlaps",
        grounds="嚴管",
        until="2026-04-02",
    )
    steps.append(STREET_WORKER, "LeaveReturned", **leave)
    state = steps.state()
    assert state["check_ins"] == 50
    assert state["leaves"][0]["status"] == "returned"
    assert state["electronic_monitoring_active"] is True
