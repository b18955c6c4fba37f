"""What follows a dispute's close (回訪, 履行, 司法確認) and its early warnings (預警, 民轉刑),
from the read models, against values computed by hand from a scripted set of five disputes.

The script (days in China Standard Time, 2026; the city is 320100):

| case | unit      | path                                              | after the close |
|------|-----------|---------------------------------------------------|-----------------|
| A1   | 320102001 | agreement 03-04, confirmation asked 03-06, closed 03-08 | visits 03-10 (5, not performed), 03-20 (4, performed) |
| A2   | 320102    | agreement 03-04, closed 03-05, confirmation asked 03-09 | visit 04-02 (2, not performed) |
| A3   | 320104    | warnings criminal_risk 03-03 and 03-04, escalation 03-04; agreement, closed 03-06 | none |
| F4   | 320102    | failed 03-04, closed 03-07                        | visit 03-09 (3) |
| W5   | 320102    | open; warning collective_incident 04-01           | — |
"""

from __future__ import annotations

from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.clock import FixedClock
from projections import engine_for
from projections.queries import ReadModels
from tests.integration.test_dispute_indicators import Script as Scripted
from tests.integration.test_dispute_indicators import at, rate


class Script(Scripted):
    ids: dict[str, str]


def visit(score: int, performed: bool) -> dict[str, Any]:
    return {"satisfaction": score, "agreement_performed": performed}


@pytest.fixture
def script(casetrail: Casetrail, clock: FixedClock) -> Script:
    s = Script(casetrail, clock)
    a1 = s.open("03-02", "320102001")
    s.mediate(a1, "03-03")
    s.step(a1, "03-04", "AgreementReached")
    s.step(a1, "03-06", "JudicialConfirmationRequested")
    s.step(a1, "03-08", "DisputeClosed")
    s.step(a1, "03-10", "FollowUpVisited", **visit(5, False))
    s.step(a1, "03-20", "FollowUpVisited", **visit(4, True))

    a2 = s.open("03-02", "320102")
    s.mediate(a2, "03-03")
    s.step(a2, "03-04", "AgreementReached")
    s.step(a2, "03-05", "DisputeClosed")
    s.step(a2, "03-09", "JudicialConfirmationRequested")
    s.step(a2, "04-02", "FollowUpVisited", **visit(2, False))

    a3 = s.open("03-02", "320104")
    s.step(a3, "03-03", "EarlyWarningRaised", risk="criminal_risk")
    s.step(a3, "03-04", "EarlyWarningRaised", risk="criminal_risk")
    s.step(a3, "03-04", "EarlyWarningRaised", risk="escalation")
    s.mediate(a3, "03-04")
    s.step(a3, "03-05", "AgreementReached")
    s.step(a3, "03-06", "DisputeClosed")

    f4 = s.open("03-02", "320102")
    s.mediate(f4, "03-03")
    s.step(f4, "03-04", "MediationFailed")
    s.step(f4, "03-07", "DisputeClosed")
    s.step(f4, "03-09", "FollowUpVisited", **visit(3, False))

    w5 = s.open("03-30", "320102")
    s.step(w5, "04-01", "EarlyWarningRaised", risk="collective_incident")
    clock.set(at("04-20"))
    s.ids = {"A1": a1, "A2": a2, "A3": a3, "F4": f4, "W5": w5}
    return s


def models(s: Script) -> ReadModels:
    engine_for(s.ct).catch_up()
    return ReadModels(s.ct)


KEYS = (
    "follow_up_rate",
    "follow_up_visits",
    "satisfaction_rate",
    "satisfaction_mean",
    "performance_rate",
    "judicial_confirmations",
    "judicial_confirmation_rate",
    "early_warnings",
    "disputes_warned",
    "criminal_risk_disputes",
)


def figures(m: ReadModels, unit: str, **period: Any) -> dict[str, Any]:
    result = m.indicators(kind="dispute", unit=unit, **period)
    return {key: result[key] for key in KEYS}


def test_the_city_counts_follow_ups_performance_confirmations_and_warnings(
    script: Script,
) -> None:
    assert figures(models(script), "320100") == {
        "follow_up_rate": rate(2, 3),  # A1, A2 visited; A3 not; F4 is no agreement
        "follow_up_visits": 4,  # F4's visit counts as a visit
        "satisfaction_rate": rate(2, 4),  # scores 5 and 4; not 2 nor 3
        "satisfaction_mean": rate(5 + 4 + 2 + 3, 4),
        "performance_rate": rate(1, 2),  # A1's latest visit says performed, A2's does not
        "judicial_confirmations": 2,
        "judicial_confirmation_rate": rate(2, 3),  # A1 (before the close), A2 (after); not A3
        "early_warnings": {"escalation": 1, "collective_incident": 1, "criminal_risk": 2},
        "disputes_warned": {"escalation": 1, "collective_incident": 1, "criminal_risk": 1},
        "criminal_risk_disputes": 1,  # A3, warned twice, is one dispute
    }


def test_a_subtree_counts_its_own_disputes_only(script: Script) -> None:
    m = models(script)
    qinhuai = figures(m, "320104")
    assert qinhuai["follow_up_rate"] == rate(0, 1)
    assert qinhuai["judicial_confirmation_rate"] == rate(0, 1)
    assert qinhuai["follow_up_visits"] == 0 and qinhuai["satisfaction_rate"] == rate(0, 0)
    assert qinhuai["criminal_risk_disputes"] == 1
    xuanwu = figures(m, "320102")
    assert xuanwu["follow_up_rate"] == rate(2, 2)
    assert xuanwu["performance_rate"] == rate(1, 2)
    assert xuanwu["judicial_confirmation_rate"] == rate(2, 2)
    assert xuanwu["criminal_risk_disputes"] == 0
    assert xuanwu["early_warnings"] == {
        "escalation": 0,
        "collective_incident": 1,
        "criminal_risk": 0,
    }


def test_a_period_counts_visits_by_their_day_and_agreements_by_their_close(
    script: Script,
) -> None:
    m = models(script)
    march = figures(m, "320100", from_="2026-03-01", to="2026-03-31")
    # A2's visit of 04-02 counts in the cohort of its March close, not as a March visit.
    assert march["follow_up_rate"] == rate(2, 3)
    assert march["performance_rate"] == rate(1, 2)
    assert march["follow_up_visits"] == 3
    assert march["satisfaction_mean"] == rate(5 + 4 + 3, 3)
    assert march["judicial_confirmations"] == 2
    assert march["early_warnings"]["collective_incident"] == 0
    april = figures(m, "320100", from_="2026-04-01", to="2026-04-30")
    assert april["follow_up_rate"] == rate(0, 0)
    assert april["follow_up_visits"] == 1 and april["satisfaction_rate"] == rate(0, 1)
    assert april["judicial_confirmations"] == 0
    assert april["early_warnings"]["collective_incident"] == 1
    assert april["criminal_risk_disputes"] == 0


def test_the_latest_visit_decides_whether_an_agreement_was_performed(
    script: Script, clock: FixedClock
) -> None:
    assert figures(models(script), "320100")["performance_rate"] == rate(1, 2)
    script.step(script.ids["A2"], "04-20", "FollowUpVisited", **visit(4, True))
    after = figures(models(script), "320100")
    assert after["performance_rate"] == rate(2, 2)
    assert after["follow_up_rate"] == rate(2, 3)  # A2 was already visited
    assert after["follow_up_visits"] == 5


def test_a_first_visit_brings_an_agreement_into_the_follow_up_rate(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock)
    case = s.open("03-02", "320102")
    s.mediate(case, "03-03")
    s.step(case, "03-04", "AgreementReached")
    s.step(case, "03-05", "DisputeClosed")
    before = figures(models(s), "320100")
    assert before["follow_up_rate"] == rate(0, 1)
    assert before["performance_rate"] == rate(0, 0)
    assert before["judicial_confirmation_rate"] == rate(0, 1)
    s.step(case, "03-06", "FollowUpVisited", **visit(1, True))
    s.step(case, "03-07", "JudicialConfirmationRequested")
    after = figures(models(s), "320100")
    assert after["follow_up_rate"] == rate(1, 1)
    assert after["performance_rate"] == rate(1, 1)
    assert after["satisfaction_rate"] == rate(0, 1)
    assert after["judicial_confirmation_rate"] == rate(1, 1)
