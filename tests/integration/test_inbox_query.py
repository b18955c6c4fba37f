"""The inbox query's two shortcuts change nothing that it answers: a wide scope's page read
in `due` order from an index, and the counts kept by the read model's tracking position
(a new deadline in scope shows at once)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import FixedClock
from projections import engine_for, inbox_query
from projections.queries import ReadModels
from tests.integration.projection_support import bulk_disputes

SUPERVISORS = [
    Actor(user_id="u_sup", role="supervisor", unit=unit) for unit in ("320000", "320102")
]


def every_page(models: ReadModels, actor: Actor, state: str | None) -> list[tuple[Any, ...]]:
    pages = []
    for page in (1, 2, 3):
        found = inbox_query.inbox_for(models, actor, state=state, page=page, per_page=7)
        pages.append((found["items"], found["counts"], found["total"]))
    return pages


def test_a_wide_scope_gets_the_same_pages_from_the_due_index(
    casetrail: Casetrail, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk_disputes(casetrail, clock, 40)
    clock.advance(timedelta(days=4))
    bulk_disputes(casetrail, clock, 30)
    clock.advance(timedelta(days=28))  # the first 32 days old: overdue; then 28: due soon
    engine_for(casetrail).catch_up(["inbox"])
    models = ReadModels(casetrail)
    shown = {}
    for actor in SUPERVISORS:
        for state in (None, "overdue", "due_soon"):
            monkeypatch.setattr(inbox_query, "WIDE_SCOPE", 10**9)
            sorted_pages = every_page(models, actor, state)
            monkeypatch.setattr(inbox_query, "WIDE_SCOPE", 0)
            assert every_page(models, actor, state) == sorted_pages
            shown[(actor.unit, state)] = sum(len(page[0]) for page in sorted_pages)
    assert shown[("320000", "overdue")] > 0 and shown[("320000", "due_soon")] > 0


def test_kept_counts_move_with_the_read_model(casetrail: Casetrail, clock: FixedClock) -> None:
    bulk_disputes(casetrail, clock, 20)
    clock.advance(timedelta(days=32))
    engine = engine_for(casetrail)
    engine.catch_up(["inbox"])
    models = ReadModels(casetrail)
    before = inbox_query.inbox_for(models, SUPERVISORS[0])
    assert inbox_query.inbox_for(models, SUPERVISORS[0])["counts"] == before["counts"]
    clock.advance(timedelta(days=-32))
    bulk_disputes(casetrail, clock, 20)
    clock.advance(timedelta(days=32))
    engine.catch_up(["inbox"])
    after = inbox_query.inbox_for(models, SUPERVISORS[0])
    assert sum(after["counts"].values()) > sum(before["counts"].values())
    assert after["total"] == sum(after["counts"].values())


def test_kept_indicators_move_with_the_read_model_and_the_day(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 20)
    engine = engine_for(casetrail)
    engine.catch_up()
    models = ReadModels(casetrail)
    before = models.indicators(kind="dispute", unit="320000")
    assert models.indicators(kind="dispute", unit="320000") == before  # kept
    bulk_disputes(casetrail, clock, 20)
    engine.catch_up()
    after = models.indicators(kind="dispute", unit="320000")
    assert after["registered"] == before["registered"] + 20
    clock.advance(timedelta(days=45))  # the open disputes' deadlines pass: a new day
    later = models.indicators(kind="dispute", unit="320000")
    assert later["overdue_open"] > after["overdue_open"]
