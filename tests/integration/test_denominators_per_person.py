"""The re-offending denominators count people, not cases (gap 18): a person received twice
in a period counts once in `received` and in the rate's denominator; two people count twice.
"Now" is 2026-07-01 (CST)."""

from __future__ import annotations

from casetrail.bootstrap import Casetrail
from domain.clock import FixedClock
from tests.integration.test_kind_indicators import Script, reception
from tests.integration.test_reoffending_per_person import figures, received

MARCH = {"from_": "2026-03-01", "to": "2026-03-31"}


def test_one_person_received_twice_in_a_period_counts_once(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    first = received(s, "2026-03-02", "320102001", 7)
    received(s, "2026-03-20", "320104002", 7)
    s.step(first, "2026-03-25", "Reoffended", offence="盜竊罪", on="2026-03-24")
    march = figures(casetrail, clock, "resettlement", **MARCH)
    assert (march["received"], march["receptions"]) == (1, 2)
    assert march["reoffending_rate"]["denominator"] == 1
    assert march["reoffending_rate"]["numerator"] == 1
    assert march["placement_rate"]["denominator"] == 2  # over receptions (cases)


def test_two_people_received_in_a_period_count_twice(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    received(s, "2026-03-02", "320102001", 7)
    received(s, "2026-03-20", "320104002", 8)
    march = figures(casetrail, clock, "resettlement", **MARCH)
    assert (march["received"], march["receptions"]) == (2, 2)
    assert march["reoffending_rate"]["denominator"] == 2


def test_a_person_received_in_two_periods_counts_in_each(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    received(s, "2026-03-02", "320102001", 7)
    received(s, "2026-04-02", "320104002", 7)
    assert figures(casetrail, clock, "resettlement", **MARCH)["received"] == 1
    april = figures(casetrail, clock, "resettlement", from_="2026-04-01", to="2026-04-30")
    assert april["received"] == 1
    assert figures(casetrail, clock, "resettlement")["received"] == 1


def test_one_person_received_twice_under_correction_counts_once(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    first = s.open("2026-03-02", "320102001", reception(7, "2026-03-02", "probation", "2027-03-02"))
    s.open("2026-03-20", "320104002", reception(7, "2026-03-20", "parole", "2027-03-20"))
    s.step(first, "2026-03-25", "Reoffended", offence="盜竊罪", on="2026-03-24")
    march = figures(casetrail, clock, "correction", **MARCH)
    assert (march["received"], march["receptions"]) == (1, 2)
    assert march["reoffending_per_mille"]["denominator"] == 1
    assert march["reoffending_per_mille"]["numerator"] == 1


def test_two_people_received_under_correction_count_twice(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    s.open("2026-03-02", "320102001", reception(7, "2026-03-02", "probation", "2027-03-02"))
    s.open("2026-03-20", "320104002", reception(8, "2026-03-20", "parole", "2027-03-20"))
    march = figures(casetrail, clock, "correction", **MARCH)
    assert (march["received"], march["receptions"]) == (2, 2)
    assert march["reoffending_per_mille"]["denominator"] == 2
