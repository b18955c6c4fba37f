"""民轉刑 counted: `criminal_turned` counts the disputes recorded as turned criminal
(DisputeTurnedCriminal), by the day of the referral, at the dispute's unit and above, beside
`criminal_risk_disputes` (the risk flagged by a warning), from the read models;
`criminal_turned_major` the major ones (重大刑事案件, the seed's count)."""

from __future__ import annotations

from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Context
from domain.clock import FixedClock, cst_date
from domain.dispute import Dispute, DisputeTurnedCriminal
from domain.errors import CasetrailError
from projections import engine_for
from projections.queries import ReadModels
from tests.dispute_builders import event_data, registration
from tests.integration.projection_support import save_with_chain
from tests.integration.test_dispute_indicators import CITY_SUPERVISOR, Script, at


def figures(s: Script, unit: str, **period: Any) -> tuple[int, int]:
    engine_for(s.ct).catch_up()
    result = ReadModels(s.ct).indicators(kind="dispute", unit=unit, **period)
    return result["criminal_turned"], result["criminal_risk_disputes"]


@pytest.fixture
def script(casetrail: Casetrail, clock: FixedClock) -> Script:
    s = Script(casetrail, clock)
    # Warned, then turned criminal (referred 03-05, recorded 03-06).
    warned = s.open("03-02", "320102001")
    s.step(warned, "03-03", "EarlyWarningRaised", risk="criminal_risk")
    s.step(
        warned,
        "03-06",
        "DisputeTurnedCriminal",
        CITY_SUPERVISOR,
        referred_on="2026-03-05",
        grade="major",
    )
    # Closed by agreement, then turned criminal in April, never warned.
    closed = s.open("03-02", "320104")
    s.mediate(closed, "03-03")
    s.step(closed, "03-04", "AgreementReached")
    s.step(closed, "03-05", "DisputeClosed")
    s.step(closed, "04-02", "DisputeTurnedCriminal", CITY_SUPERVISOR, receiving_body="court")
    # Warned only: a risk, not a turn.
    only_warned = s.open("03-02", "320102")
    s.step(only_warned, "03-03", "EarlyWarningRaised", risk="criminal_risk")
    clock.set(at("04-20"))
    s.units["warned"] = warned
    return s


def test_turned_disputes_count_beside_the_warned_ones(script: Script) -> None:
    assert figures(script, "320100") == (2, 2)
    assert figures(script, "320102") == (1, 2)  # the warned-only dispute is a risk, not a turn
    assert figures(script, "320104") == (1, 0)
    assert figures(script, "320102001") == (1, 1)


def test_a_period_counts_the_turn_by_the_day_of_the_referral(script: Script) -> None:
    assert figures(script, "320100", from_="2026-03-05", to="2026-03-05")[0] == 1
    assert figures(script, "320100", from_="2026-03-06", to="2026-03-31")[0] == 0
    assert figures(script, "320100", from_="2026-04-01", to="2026-04-30") == (1, 0)


def test_a_refused_second_turn_changes_no_figure(script: Script) -> None:
    with pytest.raises(CasetrailError) as refusal:
        script.step(script.units["warned"], "04-20", "DisputeTurnedCriminal", CITY_SUPERVISOR)
    assert refusal.value.code == "already_turned_criminal"
    assert figures(script, "320100") == (2, 2)


def test_a_caseworker_cannot_record_a_turn(script: Script) -> None:
    with pytest.raises(CasetrailError) as refusal:
        script.step(script.units["warned"], "04-20", "DisputeTurnedCriminal")
    assert refusal.value.code == "supervisor_only"
    assert figures(script, "320100") == (2, 2)


def majors(s: Script, unit: str, **period: Any) -> int:
    engine_for(s.ct).catch_up()
    result = ReadModels(s.ct).indicators(kind="dispute", unit=unit, **period)
    return int(result["criminal_turned_major"])


def test_the_major_turns_count_apart(script: Script) -> None:
    # The warned dispute's turn is major (referred 03-05), the closed one's ordinary.
    assert (majors(script, "320100"), majors(script, "320102001"), majors(script, "320104")) == (
        1,
        1,
        0,
    )
    assert majors(script, "320100", from_="2026-03-05", to="2026-03-05") == 1
    assert majors(script, "320100", from_="2026-04-01", to="2026-04-30") == 0


def test_a_turn_recorded_before_grading_counts_as_a_turn_not_a_major_one(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    """An old store's ungraded turn (written as it was then, without `grade`)."""
    clock.set(at("03-02"))
    ctx = Context(actor=CITY_SUPERVISOR, now=clock.now())
    case = Dispute.open("320102", registration(), ctx)
    data = event_data("DisputeTurnedCriminal", cst_date(clock.now()))
    del data["grade"]
    case.trigger_event(DisputeTurnedCriminal, data=data, timestamp=clock.now(), **ctx.metadata())
    save_with_chain(casetrail, [case])
    engine_for(casetrail).catch_up()
    result = ReadModels(casetrail).indicators(kind="dispute", unit="320102")
    assert (result["criminal_turned"], result["criminal_turned_major"]) == (1, 0)
