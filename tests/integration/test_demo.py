"""`casetrail demo`: a small synthetic province, loaded through the application service,
reproduces the seed's province indicators in the read models.

The store lives on /dev/shm when there is one: the demo commits every event durably
(synchronous=FULL), and on tmpfs the fsyncs cost nothing, which keeps this test well under
40 s; the code path is the production one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from demo import compare, disputes, indicators
from demo.generator import DemoResult, DemoSize, demo_clock, load_demo, plan_province
from demo.people import id_number_is_valid
from demo.plan import SEED, history_end
from demo.province import Province
from demo.report import province_comparisons
from demo.spread import spread
from domain.clock import cst_date
from projections import engine_for
from projections.queries import ReadModels

# Outcomes are drawn case by case: the figures fall within the spread demo.spread states for
# their size (95% of seeds for each), not on planted counts.
SIZE = DemoSize(
    disputes=150,
    resettlement=250,
    correction=877,
    bases=DemoSize.bases_for(250),
    townships_per_county=2,
)
FULL_YEARS = compare.FULL_YEARS


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[Casetrail, DemoResult]]:
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="casetrail-demo-", dir=shm if shm.is_dir() else None))
    ct = bootstrap(Settings(data_dir=root / "var"), clock=demo_clock())
    try:
        result = load_demo(ct, SIZE, seed=7)
        engine_for(ct).catch_up()
        yield ct, result
    finally:
        ct.close()
        shutil.rmtree(root, ignore_errors=True)


def province(ct: Casetrail, kind: str, **period: str) -> dict:
    return ReadModels(ct).indicators(kind=kind, unit="320000", **period)


def test_the_same_seed_plans_the_same_province_and_another_seed_another() -> None:
    def fingerprint(seed: int) -> list[tuple]:
        plans, _ = plan_province(Province.build(2), DemoSize(40, 40, 40, 1, 2), seed)
        return [(p.kind, p.unit, [(s.at, s.type, s.data) for s in p.steps]) for p in plans]

    assert fingerprint(11) == fingerprint(11)
    assert fingerprint(11) != fingerprint(12)


def test_every_planned_event_was_accepted_by_the_service(loaded) -> None:
    ct, result = loaded
    assert result.kinds_skipped == []
    # Beside the cases' events: the bases registered first, in the administration log.
    assert result.administration_events == result.size.bases + 1
    assert ct.reads.head_position() == result.events + result.administration_events
    assert indicators.indicators(indicators.stored_events(ct)) == result.intended


def test_units_reach_down_to_townships_with_caseworkers(loaded) -> None:
    ct, result = loaded
    units = {unit.code: unit for unit in ct.directory.units()}
    assert units["320102"].name == "玄武区" and units["320102"].parent == "320100"
    townships = [code for code in units if len(code) == 9]
    assert len(townships) == 95 * SIZE.townships_per_county
    assert all(units[code[:6]].level == "county" for code in townships)
    assert result.users >= len(townships)


def test_people_have_valid_identity_numbers(loaded) -> None:
    ct, _ = loaded
    numbers = [
        data["person"]["id_number"]
        for _, _, type_, data in indicators.stored_events(ct)
        if type_ in ("ReleaseNotified", "CorrectionSubjectReceived")
    ]
    assert len(numbers) == SIZE.resettlement + SIZE.correction
    assert all(id_number_is_valid(number) for number in numbers)


def test_every_rate_recomputed_from_the_events_is_within_the_seeds_spread(loaded) -> None:
    ct, _ = loaded
    comparisons = compare.from_streams(indicators.indicators(indicators.stored_events(ct)))
    assert [c.name for c in comparisons] == [name for name, _, _ in compare.RATES]
    for c in comparisons:
        assert c.denominator > 0, c.name
        assert c.within, (c.name, c.value, c.spread)
    # The read models' table counts the same numerators and denominators.
    tabled, _ = province_comparisons(ct)
    assert [(c.numerator, c.denominator) for c in tabled] == [
        (c.numerator, c.denominator) for c in comparisons
    ]


def test_the_outcomes_are_drawn_not_planted() -> None:
    # Planted counts would give every seed the same numerators; drawn ones differ by seed.
    def numerators(seed: int) -> list[int]:
        plans, _ = plan_province(Province.build(2), SIZE, seed)
        figures = indicators.indicators(
            (str(i), p.kind, s.type, s.data) for i, p in enumerate(plans) for s in p.steps
        )
        return [c.numerator for c in compare.from_streams(figures)]

    assert len({tuple(numerators(seed)) for seed in (1, 2, 3)}) > 1


def test_the_spread_is_the_binomial_one() -> None:
    # 3,000 mediations at 96.5%: s.e. sqrt(.965 × .035 / 3000) = 0.335 points.
    wide = spread(0.965, 3000)
    assert round(wide.standard_error, 5) == 0.00336
    assert round(wide.low, 4) == 0.9584 and round(wide.high, 4) == 0.9716
    # 857 subjects at 1.14‰: about one re-offender expected; 0 to 3 in 95% of draws.
    rare = spread(98 / 85673, 857)
    assert (round(rare.low * 857), round(rare.high * 857)) == (0, 3)
    assert rare.holds(0.0) and not rare.holds(4 / 857)
    # The exact interval holds at least 95% of the binomial's mass.
    assert spread(0.5, 40).low < 0.5 < spread(0.5, 40).high


def test_the_bases_scale_with_the_seed() -> None:
    assert DemoSize.at_scale(0.01).bases == 7  # 695 for 161,757 people; 1,618 here
    assert DemoSize.at_scale(1.0).bases == SEED["transitional_bases"]
    assert DemoSize.bases_for(250) == 1 and DemoSize.bases_for(0) == 0


def test_the_api_serves_the_province_indicators(loaded) -> None:
    from web.app import create_app

    ct, _ = loaded
    _, token = ct.directory.create_user("省综治办", "supervisor", "320000")
    client = create_app(ct).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    answers = {
        kind: client.get(f"/api/v1/indicators?kind={kind}&unit=320000", headers=headers)
        for kind in ("dispute", "resettlement", "correction")
    }
    assert all(answer.status_code == 200 for answer in answers.values())
    dispute, resettlement, correction = (answers[k].get_json() for k in answers)
    tabled, _ = province_comparisons(ct)
    served = {
        "mediation success rate": dispute["success_rate"],
        "placement rate": resettlement["placement_rate"],
        "assistance rate": resettlement["assistance_rate"],
        "correction re-offending": correction["reoffending_per_mille"],
    }
    for c in tabled:
        if c.name in served:
            assert (served[c.name]["numerator"], served[c.name]["denominator"]) == (
                c.numerator,
                c.denominator,
            ), c.name


def test_read_models_agree_with_the_event_streams(loaded) -> None:
    ct, _ = loaded
    streams = indicators.indicators(indicators.stored_events(ct))
    dispute = province(ct, "dispute")["success_rate"]
    assert (dispute["numerator"], dispute["denominator"]) == (
        streams["dispute"]["success_rate"]["numerator"],
        streams["dispute"]["success_rate"]["denominator"],
    )
    resettlement = province(ct, "resettlement")
    for name in ("placement_rate", "assistance_rate"):
        assert resettlement[name]["numerator"] == streams["resettlement"][name]["numerator"]
        assert resettlement[name]["denominator"] == streams["resettlement"][name]["denominator"]
    assert resettlement["transitional_base_occupancy"] == streams["resettlement"]["at_base_now"]
    correction = province(ct, "correction")
    for name in ("received", "current", "completed_on_schedule"):
        assert correction[name] == streams["correction"][name], name
    by_year = streams["resettlement"]["reoffending_rate_by_year"]
    for year in FULL_YEARS:
        model = province(ct, "resettlement", from_=f"{year}-01-01", to=f"{year}-12-31")
        assert model["reoffending_rate"]["numerator"] == by_year[year]["numerator"]
        assert model["reoffending_rate"]["denominator"] == by_year[year]["denominator"]


def test_a_rebuild_in_two_processes_with_the_case_list_in_shares_builds_the_same(loaded) -> None:
    # All three kinds, with transfers between units: each share moves its own cases.
    ct, _ = loaded
    engine = engine_for(ct)
    before = {name: engine.digest(name) for name in engine.projections}
    generations = engine.rebuild_many(processes=2)
    assert engine.active_generations() == generations
    assert {name: engine.digest(name) for name in engine.projections} == before


def test_follow_ups_confirmations_and_warnings_agree_with_the_event_streams(loaded) -> None:
    ct, _ = loaded
    streams = indicators.indicators(indicators.stored_events(ct))["dispute"]
    model = province(ct, "dispute")
    assert streams["follow_up_visits"] > 0 and streams["judicial_confirmations"] > 0
    for name in (
        "collective",
        "follow_up_visits",
        "judicial_confirmations",
        "early_warnings",
        "disputes_warned",
        "criminal_turned",
        "criminal_turned_major",
    ):
        assert model[name] == streams[name], name
    for name in (
        "follow_up_rate",
        "satisfaction_rate",
        "performance_rate",
        "judicial_confirmation_rate",
    ):
        counted = (model[name]["numerator"], model[name]["denominator"])
        assert counted == (streams[name]["numerator"], streams[name]["denominator"]), name
    assert model["satisfaction_mean"]["numerator"] == streams["satisfaction_sum"]
    correction = province(ct, "correction")
    assert (
        correction["reoffended"]
        == indicators.indicators(indicators.stored_events(ct))["correction"]["reoffended"]
    )


def test_turns_into_criminal_cases_are_drawn_with_the_demos_probabilities() -> None:
    """民轉刑 (no seed value: demo.disputes' assumptions): among 10,000 planned disputes,
    recounted from their events, the turns within the month after each outcome fall inside
    the binomial spread of the probability for that outcome, and the major ones inside that
    of TURNED_MAJOR among the turns. Planned only (the events the demo would record)."""
    size = DemoSize(disputes=10_000, resettlement=0, correction=0, bases=0, townships_per_county=2)
    plans, _ = plan_province(Province.build(2), size, 7)
    # Only outcomes a whole month before the history's end: a later turn is not recorded yet.
    last_outcome = cst_date(history_end()) - timedelta(days=disputes.TURN_WITHIN_DAYS)
    by_outcome: dict[str, list[int]] = {}
    grades: list[str] = []
    for plan in plans:
        steps = {step.type: step for step in plan.steps}
        outcome = next((steps[t] for t in disputes.OUTCOME_EVENTS if t in steps), None)
        if outcome is None or cst_date(outcome.at) > last_outcome:
            continue
        turn = steps.get("DisputeTurnedCriminal")
        counted = by_outcome.setdefault(plan.facts["outcome"], [0, 0])
        counted[0] += turn is not None
        counted[1] += 1
        if turn is not None:
            grades.append(turn.data["grade"])
            referred = date.fromisoformat(turn.data["referred_on"])
            assert 1 <= (referred - cst_date(outcome.at)).days <= disputes.TURN_WITHIN_DAYS
    assert set(by_outcome) == set(disputes.TURNED_CRIMINAL)
    for kind, (turned, n) in by_outcome.items():
        assert spread(disputes.TURNED_CRIMINAL[kind], n).holds(turned / n), (kind, turned, n)
    assert len(grades) > 10
    majors = grades.count("major")
    assert spread(disputes.TURNED_MAJOR, len(grades)).holds(majors / len(grades)), grades


def test_the_demos_turns_into_criminal_cases_are_accepted_and_counted_as_the_events_say(
    tmp_path: Path,
) -> None:
    """A small disputes-only demo whose seed plans turns of both grades (checked, so that this
    test cannot pass empty): the service accepts each turn, and the read models count what
    the stored events say."""
    ct = bootstrap(Settings(data_dir=tmp_path / "var"), clock=demo_clock())
    try:
        size = DemoSize(disputes=60, resettlement=0, correction=0, bases=0, townships_per_county=2)
        result = load_demo(ct, size, seed=37)
        engine_for(ct).catch_up()
        streams = indicators.indicators(indicators.stored_events(ct))["dispute"]
        assert streams == result.intended["dispute"]
        assert streams["criminal_turned"] > streams["criminal_turned_major"] > 0
        model = province(ct, "dispute")
        for name in ("criminal_turned", "criminal_turned_major"):
            assert model[name] == streams[name], name
    finally:
        ct.close()
