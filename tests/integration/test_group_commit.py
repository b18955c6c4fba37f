"""SQLite's group commit (store/sqlite.py `CaseEventRecorder`): appends of one
process that wait for the writer lock are written together, each in its own savepoint,
with one COMMIT. Each is answered only after that COMMIT; a refused one rolls back alone."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from bench import workload
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.case import Actor
from domain.errors import CasetrailError, VersionConflict
from store import sqlite as store
from tests.units import TEST_UNITS

UNIT = workload.UNIT
ACTOR = Actor(user_id="u_w", role="caseworker", unit=UNIT)


def _hold_writer_lock(data_dir: str, held: Any, release: Any) -> None:
    ct = bootstrap(Settings(data_dir=Path(data_dir)))
    try:
        with ct.db.writer():
            held.set()
            release.wait(30)
    finally:
        ct.close()


@pytest.fixture
def ct(tmp_path: Path) -> Iterator[Casetrail]:
    casetrail = bootstrap(Settings(data_dir=tmp_path / "var"))
    casetrail.directory.load_units(TEST_UNITS)
    try:
        yield casetrail
    finally:
        casetrail.close()


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every group the recorder writes (the real method, observed)."""
    sizes: list[int] = []
    write_group = store.CaseEventRecorder._write_group

    def observed(self: store.CaseEventRecorder, group: list[Any]) -> None:
        sizes.append(len(group))
        write_group(self, group)

    monkeypatch.setattr(store.CaseEventRecorder, "_write_group", observed)
    return sizes


def open_cases(ct: Casetrail, n: int) -> list[str]:
    return [ct.service.open_case(ACTOR, "dispute", UNIT, *workload.opening()).id for _ in range(n)]


def queued(ct: Casetrail) -> int:
    writer = store._writers.get((os.getpid(), ct.db.datastore.pool.db_name))
    return len(writer.pending) if writer is not None else 0


def while_another_process_writes(ct: Casetrail, calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs the calls in threads while another process holds the writer lock, releases it
    once all of them wait for it, and returns what each returned or raised."""
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    holder = context.Process(
        target=_hold_writer_lock, args=(str(ct.settings.data_dir), held, release)
    )
    holder.start()
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except Exception as error:
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    try:
        assert held.wait(60), "the other process never took the lock"
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while queued(ct) < len(calls) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queued(ct) == len(calls)
        assert all(outcome is None for outcome in outcomes)  # nothing answered yet
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
        holder.join(30)
    assert holder.exitcode == 0
    return outcomes


def in_one_group_with_key(
    ct: Casetrail, groups: list[int], cases: list[str], key: str
) -> list[Any]:
    """Appends to these cases, all with one idempotency key, written as one group."""
    triaged = next(iter(workload.appends()))
    before = len(groups)
    outcomes = while_another_process_writes(
        ct, [lambda c=c: ct.service.append(ACTOR, c, *triaged, idempotency_key=key) for c in cases]
    )
    assert groups[before] == len(cases)
    return outcomes


def test_appends_waiting_together_are_written_in_one_commit(
    ct: Casetrail, groups: list[int]
) -> None:
    cases = open_cases(ct, 6)
    triaged = next(iter(workload.appends()))
    before = len(groups)
    outcomes = while_another_process_writes(
        ct, [lambda c=c: ct.service.append(ACTOR, c, *triaged) for c in cases]
    )
    assert groups[before:] == [6]
    assert sorted(o.position for o in outcomes) == list(
        range(min(o.position for o in outcomes), min(o.position for o in outcomes) + 6)
    )
    for case_id, outcome in zip(cases, outcomes, strict=True):
        assert outcome.id == case_id and outcome.version == 2
        assert ct.app.repository.get(UUID(case_id)).version == 2
        # Answered from the chain link its own savepoint wrote.
        assert outcome.event["position"] == outcome.position and outcome.event["hash"]
    assert ct.audit.verify().ok


def test_a_refused_append_in_a_group_rolls_back_alone(ct: Casetrail, groups: list[int]) -> None:
    cases = open_cases(ct, 4)
    triaged = next(iter(workload.appends()))
    same = cases[0]
    before = len(groups)
    outcomes = while_another_process_writes(
        ct,
        [
            # Two appends to one case, both at version 1: the second of the group fails on
            # the (case, version) key, rolls back to its savepoint and is refused.
            lambda: ct.service.append(ACTOR, same, *triaged, expected_version=1),
            lambda: ct.service.append(ACTOR, same, *triaged, expected_version=1),
            *[lambda c=c: ct.service.append(ACTOR, c, *triaged) for c in cases[1:]],
        ],
    )
    assert groups[before] == 5
    refused = [o for o in outcomes[:2] if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], VersionConflict), outcomes
    assert all(not isinstance(o, Exception) for o in outcomes[2:]), outcomes
    for case_id in cases:
        assert ct.app.repository.get(UUID(case_id)).version == 2
    assert ct.audit.verify().ok


def test_a_retried_command_in_the_same_group_is_answered_as_the_first(
    ct: Casetrail, groups: list[int]
) -> None:
    [case_id] = open_cases(ct, 1)
    first, second = in_one_group_with_key(ct, groups, [case_id, case_id], "k1")
    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    assert first.position == second.position and {first.replayed, second.replayed} == {
        False,
        True,
    }
    assert ct.app.repository.get(UUID(case_id)).version == 2


def test_an_append_refused_after_writing_its_event_leaves_nothing_of_it(
    ct: Casetrail, groups: list[int]
) -> None:
    # One key for two different commands: the second writes its event, then fails on the
    # key; its savepoint takes the event back while the first's stays.
    first_case, second_case = open_cases(ct, 2)
    outcomes = in_one_group_with_key(ct, groups, [first_case, second_case], "k2")
    accepted = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(accepted) == 1 and len(refused) == 1, outcomes
    assert isinstance(refused[0], CasetrailError)
    versions = {c: ct.app.repository.get(UUID(c)).version for c in (first_case, second_case)}
    assert versions[accepted[0].id] == 2
    assert sorted(versions.values()) == [1, 2]
    assert ct.audit.verify().ok
