"""Resettlement and correction indicators from the read models, against values computed by
hand from scripted cases, with unit-subtree and period boundaries, on SQLite and PostgreSQL.
"Now" is 2026-07-01 (CST) unless a test moves the clock."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import CST, FixedClock
from projections import engine_for
from projections.queries import ReadModels
from projections.upcoming import upcoming as upcoming_of
from tests.integration.steps import register_base

CITY_WORKER = Actor(user_id="u_city", role="caseworker", unit="320100")
CITY_SUPERVISOR = Actor(user_id="u_city_sup", role="supervisor", unit="320100")
OTHER_CITY_SUPERVISOR = Actor(user_id="u_city_sup2", role="supervisor", unit="320100")
COUNTY_SUPERVISOR = Actor(user_id="u_county_sup", role="supervisor", unit="320102")
NOW = "2026-07-01"


def at(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(9), tzinfo=CST)


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    value = round(numerator / denominator, 6) if denominator else None
    return {"value": value, "numerator": numerator, "denominator": denominator}


class Script:
    def __init__(self, ct: Casetrail, clock: FixedClock, kind: str, opening: str) -> None:
        self.ct, self.clock, self.kind, self.opening = ct, clock, kind, opening

    def open(self, day: str, unit: str, data: dict[str, Any]) -> str:
        self.clock.set(at(day))
        return self.ct.service.open_case(CITY_WORKER, self.kind, unit, self.opening, data).id

    def step(
        self, case_id: str, day: str, event_type: str, actor: Actor = CITY_WORKER, **data: Any
    ) -> None:
        self.clock.set(at(day))
        self.ct.service.append(actor, case_id, event_type, data)


# --- resettlement -------------------------------------------------------------------------


def person(n: int) -> dict[str, Any]:
    return {
        "name": f"刑释人员{n}",
        "id_number": f"32010219850505{n:03d}5",
        "gender": "male",
        "birth_date": "1985-05-05",
        "household_address": "江蘇省南京市玄武區梅園新村街道大悲巷1號",
        "residence_address": "江蘇省南京市玄武區梅園新村街道大悲巷1號",
    }


def notice(n: int, expected: str) -> dict[str, Any]:
    return {
        "person": person(n),
        "release_type": "sentence_completed",
        "institution": "江蘇省某監獄",
        "expected_release_date": expected,
        "offence": "盜竊罪",
    }


@pytest.fixture
def resettlement(casetrail: Casetrail, clock: FixedClock) -> ReadModels:
    """R1 street 320102001: on time, received in the window, categorised + visited, employed.
    R2 district 320102: late notice (13 days), late handover, categorised only, at base
       NJ-XW-01, re-offends in 2026.
    R3 street 320104002: released 04-01, never received: 漏管 now.
    R4 community 320102001001: received 2025, assisted, re-offends 2025 and 2026, delegated
       to 320104002 on 2026-02-01, contact lost now.
    R5 district 320104: placed at base NJ-QH-01 then left it; assistance ended 2026-04-01.
    """
    register_base(casetrail, "NJ-QH-01", "320104")
    register_base(casetrail, "NJ-XW-01", "320102")
    s = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    r4 = s.open("2025-10-01", "320102001001", notice(4, "2025-11-01"))
    s.step(r4, "2025-11-01", "PersonReleased", released_on="2025-11-01")
    s.step(r4, "2025-11-03", "PersonReceived", received_on="2025-11-03", method="escorted")
    s.step(r4, "2025-11-05", "AssistanceCategorised", category="ordinary", risk_level="low")
    s.step(
        r4,
        "2025-11-05",
        "AssistanceActivityRecorded",
        held_on="2025-11-05",
        kind="visit",
        notes="家訪",
    )
    s.step(r4, "2025-12-01", "Reoffended", offence="盜竊罪", on="2025-12-01")
    r1 = s.open("2026-01-05", "320102001", notice(1, "2026-03-01"))
    r5 = s.open("2026-01-10", "320104", notice(5, "2026-02-15"))
    r3 = s.open("2026-02-01", "320104002", notice(3, "2026-04-01"))
    s.step(
        r4, "2026-02-01", "TransferProposed", CITY_SUPERVISOR, to_unit="320104002", reason="務工"
    )
    s.step(r4, "2026-02-01", "TransferAccepted", OTHER_CITY_SUPERVISOR, to_unit="320104002")
    s.step(r5, "2026-02-15", "PersonReleased", released_on="2026-02-15")
    s.step(r5, "2026-02-16", "PersonReceived", received_on="2026-02-16", method="escorted")
    s.step(
        r5,
        "2026-02-20",
        "PersonPlaced",
        placement="transitional_base",
        placed_on="2026-02-20",
        base_id="NJ-QH-01",
    )
    r2 = s.open("2026-02-20", "320102", notice(2, "2026-03-05"))
    s.step(r1, "2026-03-01", "PersonReleased", released_on="2026-03-01")
    s.step(r5, "2026-03-01", "PlacementEnded", ended_on="2026-03-01", reason="返家")
    s.step(r1, "2026-03-03", "PersonReceived", received_on="2026-03-03", method="escorted")
    s.step(r1, "2026-03-03", "AssistanceCategorised", category="ordinary", risk_level="low")
    s.step(
        r1,
        "2026-03-04",
        "AssistanceActivityRecorded",
        held_on="2026-03-04",
        kind="talk",
        notes="談話",
    )
    s.step(r2, "2026-03-05", "PersonReleased", released_on="2026-03-05")
    s.step(r1, "2026-03-10", "PersonPlaced", placement="employment", placed_on="2026-03-10")
    s.step(r2, "2026-03-20", "PersonReceived", received_on="2026-03-20", method="escorted")
    s.step(r2, "2026-03-20", "AssistanceCategorised", category="ordinary", risk_level="medium")
    s.step(
        r2,
        "2026-03-21",
        "PersonPlaced",
        placement="transitional_base",
        placed_on="2026-03-21",
        base_id="NJ-XW-01",
    )
    s.step(r3, "2026-04-01", "PersonReleased", released_on="2026-04-01")
    s.step(r5, "2026-04-01", "AssistanceEnded", reason="other", ended_on="2026-04-01")
    s.step(r4, "2026-05-01", "ContactLost", on="2026-05-01", notes="不在住所")
    s.step(r4, "2026-05-20", "Reoffended", offence="盜竊罪", on="2026-05-20")
    s.step(r2, "2026-06-10", "Reoffended", offence="搶劫罪", on="2026-06-10")
    clock.set(at(NOW))
    engine_for(casetrail).catch_up()
    return ResettlementFigures(casetrail)


class ResettlementFigures(ReadModels):
    def figures(self, unit: str, **period: Any) -> dict[str, Any]:
        result = self.indicators(kind="resettlement", unit=unit, **period)
        keys = (
            "notified",
            "received",
            "placement_rate",
            "assistance_rate",
            "reoffending_rate",
            "late_notices",
            "late_handovers",
            "missed_handover_now",
            "lost_contact_now",
            "under_assistance_now",
            "transitional_bases",
            "transitional_base_occupancy",
        )
        return {key: result[key] for key in keys}


def test_resettlement_indicators_for_the_city_since_the_beginning(
    resettlement: ResettlementFigures,
) -> None:
    assert resettlement.figures("320100") == {
        "notified": 5,
        "received": 4,  # R1, R2, R4, R5
        "placement_rate": rate(3, 4),  # R1, R2, R5
        "assistance_rate": rate(2, 4),  # R1, R4: a category and an activity
        "reoffending_rate": rate(3, 4),  # person-years: R4 2025, R4 2026, R2 2026
        "late_notices": 1,
        "late_handovers": 1,
        "missed_handover_now": 1,
        "lost_contact_now": 1,
        "under_assistance_now": 3,  # R1, R2, R4
        "transitional_bases": 2,
        "transitional_base_occupancy": 1,
    }


def test_a_delegated_case_is_found_under_its_new_unit_only(
    resettlement: ResettlementFigures,
) -> None:
    # R4 was opened in 320102001001 and delegated to 320104002.
    for q in ("刑释人员4", "32010219850505004" + "5"):
        assert resettlement.list_cases(q=q, unit="320104")["total"] == 1
        assert resettlement.list_cases(q=q, unit="320104002")["total"] == 1
        assert resettlement.list_cases(q=q, unit="320102")["total"] == 0
        assert resettlement.list_cases(q=q, unit="320100")["total"] == 1
    found = resettlement.list_cases(q="刑释人员", unit="320104")
    assert found["total"] == 3  # R3, R4 (delegated here), R5
    assert resettlement.list_cases(q="刑释人员", unit="320102")["total"] == 2  # R1, R2


def test_the_yearly_reoffending_rate_counts_those_under_assistance_at_the_start(
    resettlement: ResettlementFigures,
) -> None:
    year = resettlement.figures("320100", from_="2026-01-01", to="2026-12-31")
    assert year["received"] == 3  # R1, R2, R5; R4 was received in 2025
    assert year["placement_rate"] == rate(3, 3)
    assert year["assistance_rate"] == rate(1, 3)
    # R2 and R4 re-offended in 2026 ÷ (R4 under assistance on 1 January + 3 received)
    assert year["reoffending_rate"] == rate(2, 4)
    assert year["notified"] == 4 and year["late_notices"] == 1
    # Qinhuai: R5 received there; R4 delegated in during the year, then re-offended there.
    qinhuai = resettlement.figures("320104", from_="2026-01-01", to="2026-12-31")
    assert qinhuai["received"] == 1
    assert qinhuai["reoffending_rate"] == rate(1, 2)
    assert resettlement.figures("320100", from_="2025-01-01", to="2025-12-31")[
        "reoffending_rate"
    ] == rate(1, 1)


def test_resettlement_subtrees_and_day_boundaries(resettlement: ResettlementFigures) -> None:
    xuanwu = resettlement.figures("320102")
    assert xuanwu["received"] == 3  # R1, R2 and R4 (received in Xuanwu, since delegated)
    assert xuanwu["placement_rate"] == rate(2, 3)
    assert xuanwu["assistance_rate"] == rate(2, 3)
    assert xuanwu["lost_contact_now"] == 0 and xuanwu["missed_handover_now"] == 0
    assert xuanwu["under_assistance_now"] == 2
    assert (xuanwu["transitional_bases"], xuanwu["transitional_base_occupancy"]) == (1, 1)
    qinhuai = resettlement.figures("320104")
    assert qinhuai["lost_contact_now"] == 1 and qinhuai["missed_handover_now"] == 1
    assert qinhuai["under_assistance_now"] == 1
    assert resettlement.figures("320100", from_="2026-03-03", to="2026-03-03")["received"] == 1
    assert resettlement.figures("320100", to="2026-03-02")["received"] == 2
    assert resettlement.bases("320100") == [
        {"base_id": "NJ-QH-01", "unit": "320104", "occupancy": 0, "placed_total": 1},
        {"base_id": "NJ-XW-01", "unit": "320102", "occupancy": 1, "placed_total": 1},
    ]
    listed = resettlement.list_cases(kind="resettlement", overdue=True)
    assert listed["total"] == 1 and listed["items"][0]["names"] == ["刑释人员3"]


# --- community correction ---------------------------------------------------------------


def reception(n: int, day: str, correction_type: str, term_end: str) -> dict[str, Any]:
    return {
        "person": {**person(n), "name": f"矯正對象{n}"},
        "correction_type": correction_type,
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": day,
        "offence_date": "2025-08-01",
        "term_start": day,
        "term_end": term_end,
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }


@pytest.fixture
def correction(casetrail: Casetrail, clock: FixedClock) -> ReadModels:
    """C1 street 320102001: reported on time, reprimand + warning, monitored, term ends 07-20.
    C2 street 320104002: reported late, re-offended, committed.
    C3 district 320102: never reported in: 漏管 now.
    C4 community 320102001001: received 2025, completed 2026-06-01.
    C5 district 320104: moved to 320102001, absconded now.
    """
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    c4 = s.open("2025-12-01", "320102001001", reception(4, "2025-12-01", "probation", "2026-06-01"))
    s.step(c4, "2025-12-05", "SubjectReportedIn", reported_on="2025-12-05")
    c1 = s.open("2026-02-27", "320102001", reception(1, "2026-02-27", "probation", "2026-07-20"))
    s.step(c1, "2026-03-05", "SubjectReportedIn", reported_on="2026-03-05")
    c2 = s.open("2026-03-10", "320104002", reception(2, "2026-03-10", "parole", "2027-03-10"))
    s.step(c2, "2026-03-25", "SubjectReportedIn", reported_on="2026-03-25")
    c5 = s.open(
        "2026-04-01",
        "320104",
        reception(5, "2026-04-01", "temporary_outside_execution", "2027-04-01"),
    )
    s.step(c5, "2026-04-02", "SubjectReportedIn", reported_on="2026-04-02")
    s.step(
        c1,
        "2026-04-01",
        "ReprimandIssued",
        CITY_SUPERVISOR,
        violation="未按時報告",
        on="2026-04-01",
    )
    s.step(c2, "2026-05-01", "Reoffended", offence="盜竊罪", on="2026-05-01")
    s.step(
        c1,
        "2026-05-01",
        "WarningIssued",
        CITY_SUPERVISOR,
        violation="再次未按時報告",
        on="2026-05-01",
    )
    s.step(
        c5, "2026-05-01", "TransferProposed", CITY_SUPERVISOR, to_unit="320102001", reason="遷居"
    )
    s.step(c5, "2026-05-01", "TransferAccepted", OTHER_CITY_SUPERVISOR, to_unit="320102001")
    s.step(
        c2,
        "2026-05-02",
        "RevocationProposed",
        CITY_SUPERVISOR,
        grounds={"basis": "reoffending", "facts": "矯正期間涉嫌盜竊"},
    )
    s.step(
        c2,
        "2026-05-10",
        "SubjectCommitted",
        CITY_SUPERVISOR,
        on="2026-05-10",
        decision="撤銷假釋，收監執行",
        decision_no="（2026）蘇0104刑更3號",
    )
    c3 = s.open("2026-06-01", "320102", reception(3, "2026-06-01", "control", "2026-12-01"))
    s.step(c4, "2026-06-01", "CorrectionCompleted", on="2026-06-01", certificate_no="JZ-2026-001")
    s.step(
        c1,
        "2026-06-01",
        "ElectronicMonitoringStarted",
        COUNTY_SUPERVISOR,
        grounds="警告後仍違規",
        until="2026-08-15",
    )
    s.step(c5, "2026-06-15", "SubjectAbsconded", on="2026-06-15")
    assert c3
    clock.set(at(NOW))
    engine_for(casetrail).catch_up()
    return ReadModels(casetrail)


def correction_figures(models: ReadModels, unit: str, **period: Any) -> dict[str, Any]:
    result = models.indicators(kind="correction", unit=unit, **period)
    keys = (
        "received",
        "cumulative_received",
        "current",
        "completed_on_schedule",
        "committed",
        "reoffended",
        "reoffending_per_mille",
        "on_time_report_in_rate",
        "missed_report_in_now",
        "absconded_now",
        "terms_ending_within_30_days",
        "sanctions",
        "electronic_monitoring_now",
    )
    return {key: result[key] for key in keys}


def test_correction_indicators_for_the_city(correction: ReadModels) -> None:
    assert correction_figures(correction, "320100") == {
        "received": 5,
        "cumulative_received": 5,
        "current": 3,  # C1, C3, C5
        "completed_on_schedule": 1,
        "committed": 1,
        "reoffended": 1,
        "reoffending_per_mille": {"value": 200.0, "numerator": 1, "denominator": 5},
        "on_time_report_in_rate": rate(3, 5),  # C1, C4, C5 within 10 days
        "missed_report_in_now": 1,  # C3
        "absconded_now": 1,
        "terms_ending_within_30_days": 1,  # C1 on 07-20
        "sanctions": {"reprimand": 1, "warning": 1, "public_security_penalty": 0, "revocation": 1},
        "electronic_monitoring_now": 1,
    }


def test_correction_subtrees_and_periods(correction: ReadModels) -> None:
    year = correction_figures(correction, "320100", from_="2026-01-01", to="2026-12-31")
    assert year["received"] == 4 and year["cumulative_received"] == 5
    assert year["reoffending_per_mille"] == {"value": 200.0, "numerator": 1, "denominator": 5}
    assert year["on_time_report_in_rate"] == rate(2, 4)
    qinhuai = correction_figures(correction, "320104")
    assert qinhuai["received"] == 2 and qinhuai["current"] == 0
    assert qinhuai["committed"] == 1 and qinhuai["absconded_now"] == 0
    assert qinhuai["reoffending_per_mille"] == {"value": 500.0, "numerator": 1, "denominator": 2}
    xuanwu = correction_figures(correction, "320102")
    assert xuanwu["received"] == 3 and xuanwu["current"] == 3 and xuanwu["absconded_now"] == 1
    assert xuanwu["sanctions"]["warning"] == 1 and xuanwu["completed_on_schedule"] == 1
    assert correction_figures(correction, "320100", to="2026-03-09")["received"] == 2
    assert (
        correction_figures(correction, "320100", from_="2026-03-10", to="2026-03-10")["received"]
        == 1
    )
    assert correction_figures(correction, "320100", to="2026-03-09")["cumulative_received"] == 2


def test_upcoming_term_ends_and_report_in_windows(
    correction: ReadModels, clock: FixedClock
) -> None:
    upcoming = upcoming_of(correction, "320100")
    assert [item["term_end"] for item in upcoming["term_ends"]] == ["2026-07-20"]
    assert upcoming["report_in_windows"] == []
    clock.set(at("2026-06-05"))
    soon = upcoming_of(correction, "320102", days=10)
    assert [item["report_due"] for item in soon["report_in_windows"]] == ["2026-06-11"]
    assert upcoming_of(correction, "320104", days=10)["report_in_windows"] == []
    listed = correction.list_cases(kind="correction", category="probation")
    assert listed["total"] == 2 and all(item["minor"] is False for item in listed["items"])


# --- populations: numerator and denominator count the same people ---------------------------


def test_a_reoffence_before_the_reception_is_not_in_the_resettlement_rate(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    # R6 re-offends between release and reception; R7's re-offence is recorded before the
    # reception, which is then dated earlier; R8 re-offends once received.
    r6 = s.open("2026-03-01", "320102001", notice(6, "2026-05-01"))
    r7 = s.open("2026-03-01", "320102001", notice(7, "2026-05-01"))
    r8 = s.open("2026-03-01", "320102001", notice(8, "2026-05-01"))
    for r in (r6, r7, r8):
        s.step(r, "2026-05-01", "PersonReleased", released_on="2026-05-01")
    s.step(r6, "2026-05-03", "Reoffended", offence="盜竊罪", on="2026-05-03")
    s.step(r7, "2026-05-05", "Reoffended", offence="盜竊罪", on="2026-05-04")
    s.step(r6, "2026-05-10", "PersonReceived", received_on="2026-05-10", method="escorted")
    s.step(r7, "2026-05-06", "PersonReceived", received_on="2026-05-02", method="escorted")
    s.step(r8, "2026-05-02", "PersonReceived", received_on="2026-05-02", method="escorted")
    s.step(r8, "2026-05-20", "Reoffended", offence="搶奪罪", on="2026-05-20")
    clock.set(at(NOW))
    engine_for(casetrail).catch_up()
    models = ReadModels(casetrail)
    year = models.indicators(
        kind="resettlement", unit="320100", from_="2026-01-01", to="2026-12-31"
    )
    assert year["received"] == 3
    assert year["reoffending_rate"] == rate(2, 3)  # R7, R8; not R6


def test_a_late_notice_is_judged_by_the_day_it_is_recorded(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    # Recorded 22 days before the release; the client says it arrived 40 days before.
    late = s.open(
        "2026-03-10", "320102001", {**notice(1, "2026-04-01"), "notified_on": "2026-02-20"}
    )
    s.open("2026-03-01", "320102001", notice(2, "2026-04-15"))  # 45 days ahead
    state = casetrail.reads.case_state(CITY_WORKER, late)
    assert (state["notified_on"], state["notice_days"], state["late_notice"]) == (
        "2026-02-20",
        22,
        True,
    )
    engine_for(casetrail).catch_up()
    figures = ReadModels(casetrail).indicators(kind="resettlement", unit="320100")
    assert (figures["notified"], figures["late_notices"]) == (2, 1)


def test_the_correction_per_mille_of_a_period_counts_those_under_correction_in_it(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    # S1 completed in 2025; S3 under correction through 2026; S2 received and re-offends in 2026.
    s1 = s.open("2025-09-01", "320102001", reception(1, "2025-09-01", "probation", "2025-11-01"))
    s.step(s1, "2025-09-02", "SubjectReportedIn", reported_on="2025-09-02")
    s.step(s1, "2025-11-01", "CorrectionCompleted", on="2025-11-01", certificate_no="JZ-1")
    s.open("2025-12-01", "320102001", reception(3, "2025-12-01", "probation", "2026-12-01"))
    s2 = s.open("2026-02-01", "320102001", reception(2, "2026-02-01", "parole", "2027-02-01"))
    s.step(s2, "2026-03-01", "Reoffended", offence="盜竊罪", on="2026-03-01")
    clock.set(at(NOW))
    engine_for(casetrail).catch_up()
    models = ReadModels(casetrail)
    year = models.indicators(kind="correction", unit="320100", from_="2026-01-01", to="2026-12-31")
    assert year["cumulative_received"] == 3
    assert year["under_correction_at_start"] == 1  # S3
    assert year["reoffending_per_mille"] == {"value": 500.0, "numerator": 1, "denominator": 2}
    # Since the beginning: the seed's re-offended ÷ cumulative received.
    ever = models.indicators(kind="correction", unit="320100")
    assert ever["reoffending_per_mille"] == {"value": 333.3333, "numerator": 1, "denominator": 3}


def test_the_on_time_report_in_rate_waits_for_the_window_to_close(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    term_end = "2027-06-01"
    on_time = s.open("2026-06-01", "320102001", reception(1, "2026-06-01", "probation", term_end))
    s.step(on_time, "2026-06-05", "SubjectReportedIn", reported_on="2026-06-05")
    s.open("2026-06-05", "320102001", reception(2, "2026-06-05", "probation", term_end))  # missed
    late = s.open("2026-06-10", "320102001", reception(3, "2026-06-10", "probation", term_end))
    s.step(late, "2026-06-25", "SubjectReportedIn", reported_on="2026-06-25")
    died = s.open("2026-06-20", "320102001", reception(4, "2026-06-20", "probation", term_end))
    s.step(died, "2026-06-22", "SubjectDied", on="2026-06-22")  # within the window: moot
    s.open("2026-06-25", "320102001", reception(5, "2026-06-25", "probation", term_end))  # open
    clock.set(at(NOW))
    engine_for(casetrail).catch_up()
    models = ReadModels(casetrail)
    june = models.indicators(kind="correction", unit="320102", from_="2026-06-01", to="2026-06-30")
    assert june["received"] == 5
    assert june["on_time_report_in_rate"] == rate(1, 3)  # of on time, late and missed
    clock.set(at("2026-07-06"))  # the last window closed unreported
    june = models.indicators(kind="correction", unit="320102", from_="2026-06-01", to="2026-06-30")
    assert june["on_time_report_in_rate"] == rate(1, 4)


def test_a_mediation_that_never_met_does_not_fail(casetrail: Casetrail, clock: FixedClock) -> None:
    from domain.errors import RuleViolation
    from tests.dispute_builders import event_data, registration

    s = Script(casetrail, clock, "dispute", "DisputeRegistered")
    d = s.open("2026-06-01", "320102", registration())
    for event_type in ("DisputeTriaged", "DisputeAssigned"):
        s.step(d, "2026-06-01", event_type, **event_data(event_type, date(2026, 6, 1)))
    with pytest.raises(RuleViolation) as refused:
        s.step(
            d, "2026-06-02", "MediationFailed", **event_data("MediationFailed", date(2026, 6, 2))
        )
    assert refused.value.code == "failure_before_mediation"
    s.step(
        d,
        "2026-06-02",
        "MediationSessionHeld",
        **event_data("MediationSessionHeld", date(2026, 6, 2)),
    )
    s.step(d, "2026-06-03", "MediationFailed", **event_data("MediationFailed", date(2026, 6, 3)))
    s.step(d, "2026-06-03", "DisputeClosed", **event_data("DisputeClosed", date(2026, 6, 3)))
    engine_for(casetrail).catch_up()
    figures = ReadModels(casetrail).indicators(kind="dispute", unit="320102")
    assert figures["success_rate"] == rate(0, 1)


def test_a_subject_counts_as_reoffended_on_the_earliest_offence(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    c = s.open("2026-02-01", "320102001", reception(1, "2026-02-01", "parole", "2027-02-01"))
    s.step(c, "2026-05-02", "Reoffended", offence="盜竊罪", on="2026-05-01")
    s.step(c, "2026-05-03", "Reoffended", offence="詐騙罪", on="2026-03-01")  # found later
    clock.set(at(NOW))
    engine_for(casetrail).catch_up()
    models = ReadModels(casetrail)

    def reoffended(month: str) -> int:
        figures = models.indicators(
            kind="correction", unit="320102", from_=f"{month}-01", to=f"{month}-28"
        )
        return int(figures["reoffended"])

    assert (reoffended("2026-03"), reoffended("2026-05")) == (1, 0)
    assert casetrail.reads.case_state(CITY_WORKER, c)["reoffended_on"] == "2026-03-01"
