"""The re-offending denominators count people, not cases (gap 18): a person received twice
in a period counts once in `received` and in the rate's denominator; two people count twice;
a person with two open cases counts once at the period's start, once moved in, once in the
cumulative receptions, and once in the denominator however many of its terms hold them.
"Now" is 2026-07-01 (CST)."""

from __future__ import annotations

import pytest

from casetrail.bootstrap import Casetrail
from domain.clock import FixedClock
from domain.errors import CasetrailError
from projections.queries import ReadModels
from tests.integration.test_kind_indicators import (
    CITY_SUPERVISOR,
    OTHER_CITY_SUPERVISOR,
    Script,
    rate,
    reception,
)
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


# --- a person with two open cases (gap 18): at the start, moved in, cumulative --------------


def two_open_cases(s: Script, kind: str) -> dict[str, str]:
    """Person 7 under assistance (correction) in two cases before March (A at 320102001, B
    at 320104002), received again in March (D at 320102001), then A and D moved to
    320104002 on 03-20; person 7 re-offends (in B) on 03-25. Person 8 received on 03-10."""

    def opened(day: str, unit: str, n: int) -> str:
        if kind == "resettlement":
            return received(s, day, unit, n)
        return s.open(day, unit, reception(n, day, "probation", "2027-06-30"))

    cases = {
        "A": opened("2026-01-05", "320102001", 7),
        "B": opened("2026-02-01", "320104002", 7),
        "C": opened("2026-03-10", "320102", 8),
        "D": opened("2026-03-15", "320102001", 7),
    }
    for name in ("A", "D"):
        s.step(
            cases[name], "2026-03-20", "TransferProposed", CITY_SUPERVISOR,
            to_unit="320104002", reason="遷居",
        )  # fmt: skip
        s.step(
            cases[name], "2026-03-20", "TransferAccepted", OTHER_CITY_SUPERVISOR,
            to_unit="320104002",
        )  # fmt: skip
    s.step(cases["B"], "2026-03-26", "Reoffended", offence="盜竊罪", on="2026-03-25")
    return cases


def test_a_person_with_two_open_cases_is_one_person_under_assistance(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    two_open_cases(Script(casetrail, clock, "resettlement", "ReleaseNotified"), "resettlement")
    city = figures(casetrail, clock, "resettlement", **MARCH)
    # At the start: person 7 (A and B), once; received: 7 (D) and 8; the rate's population:
    # the two people, not 2 + 2.
    assert (city["under_assistance_at_start"], city["received"], city["receptions"]) == (1, 2, 2)
    assert city["reoffending_rate"] == rate(1, 2)
    qinhuai = ReadModels(casetrail).indicators(kind="resettlement", unit="320104", **MARCH)
    # Person 7 was there at the start (B) and two of their cases moved in (A, D): one person.
    assert (qinhuai["under_assistance_at_start"], qinhuai["moved_in"]) == (1, 1)
    assert qinhuai["reoffending_rate"] == rate(1, 1)
    assert ReadModels(casetrail).indicators(kind="resettlement", unit="320100")["received"] == 2


def test_a_person_with_two_open_cases_is_one_person_under_correction(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    two_open_cases(Script(casetrail, clock, "correction", "CorrectionSubjectReceived"), "x")
    city = figures(casetrail, clock, "correction", **MARCH)
    assert (city["under_correction_at_start"], city["received"], city["receptions"]) == (1, 2, 2)
    assert city["cumulative_received"] == 2  # persons 7 and 8, not four cases
    assert city["reoffending_per_mille"]["denominator"] == 2
    february = figures(casetrail, clock, "correction", to="2026-02-28")
    assert february["cumulative_received"] == 1  # person 7's A and B
    qinhuai = ReadModels(casetrail).indicators(kind="correction", unit="320104", **MARCH)
    assert (qinhuai["under_correction_at_start"], qinhuai["moved_in"]) == (1, 1)
    assert qinhuai["reoffending_per_mille"] == {
        "value": 1000.0,
        "numerator": 1,
        "denominator": 1,
    }


def test_a_subject_is_in_the_population_from_the_decision_taking_effect(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    """Gap 14: the decision took effect on 03-01, the reception was recorded on 03-08, the
    subject re-offended on 03-05 (a re-offence is one during correction: from the decision).
    The period of that day holds the offence and the person both."""
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    case = s.open("2026-03-08", "320102001", reception(9, "2026-03-01", "probation", "2027-03-01"))
    s.step(case, "2026-03-10", "Reoffended", offence="盜竊罪", on="2026-03-05")
    week = figures(casetrail, clock, "correction", from_="2026-03-02", to="2026-03-07")
    assert week["reoffended"] == 1
    assert week["under_correction_at_start"] == 1 and week["received"] == 0
    assert week["reoffending_per_mille"]["denominator"] == 1
    march = figures(casetrail, clock, "correction", **MARCH)
    assert (march["under_correction_at_start"], march["received"]) == (0, 1)
    assert march["reoffending_per_mille"]["denominator"] == 1
    # Before the decision took effect it was no re-offence during correction.
    with pytest.raises(CasetrailError) as refusal:
        s.step(case, "2026-03-10", "Reoffended", offence="盜竊罪", on="2026-02-28")
    assert refusal.value.code == "date_out_of_order"
