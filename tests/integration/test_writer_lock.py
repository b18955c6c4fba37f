"""SQLite's writers take turns at one lock, across threads and processes (`writer_lock`):
a writer of another process waits for the holder instead of meeting it at SQLite's busy
handler, and appends from several processes at once all land."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from uuid import UUID

import pytest

from bench import workload
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.case import Actor
from store.sqlite import _writers
from tests.units import TEST_UNITS

UNIT = workload.UNIT
HOLD_SECONDS = 0.6


def _hold_writer_lock(data_dir: str, held: object, release: object) -> None:
    ct = bootstrap(Settings(data_dir=Path(data_dir)))
    try:
        with ct.db.writer():
            held.set()  # type: ignore[attr-defined]
            release.wait(10)  # type: ignore[attr-defined]
    finally:
        ct.close()


def _append(data_dir: str, case_ids: list[str], events: int, results: object) -> None:
    ct = bootstrap(Settings(data_dir=Path(data_dir)))
    actor = Actor(user_id="u_w", role="caseworker", unit=UNIT)
    try:
        day = workload.cst_date(workload.SystemClock().now()).isoformat()
        for case_id in case_ids:
            for _ in range(events):
                ct.service.append(actor, case_id, "MediationSessionHeld", workload.session(day))
        results.put(len(case_ids) * events)  # type: ignore[attr-defined]
    except Exception as error:  # reported to the test, which fails
        results.put(repr(error))  # type: ignore[attr-defined]
    finally:
        ct.close()


def test_a_writer_waits_for_another_process_holding_the_lock(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    ct = bootstrap(settings)
    with ct.db.writer():  # this process's lock file is open before the fork: the child
        pass  # must open its own (a shared descriptor would share the lock)
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_writer_lock, args=(str(settings.data_dir), held, release))
    holder.start()
    try:
        assert held.wait(60), "the other process never took the lock"
        releaser = context.Process(target=_release_after, args=(release, HOLD_SECONDS))
        releaser.start()
        started = time.monotonic()
        with ct.db.writer():
            waited = time.monotonic() - started
        releaser.join(10)
        assert waited >= HOLD_SECONDS * 0.8, f"took the lock after {waited:.3f} s"
    finally:
        release.set()
        holder.join(30)
        ct.close()
    assert holder.exitcode == 0


def _release_after(release: object, seconds: float) -> None:
    time.sleep(seconds)
    release.set()  # type: ignore[attr-defined]


def test_appends_from_three_processes_at_once_all_land(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    ct = bootstrap(settings)
    ct.directory.load_units(TEST_UNITS)
    actor = Actor(user_id="u_w", role="caseworker", unit=UNIT)
    cases = []
    for _ in range(6):
        case_id = ct.service.open_case(actor, "dispute", UNIT, *workload.opening()).id
        for type_, data in list(workload.appends())[:2]:  # triaged, assigned
            ct.service.append(actor, case_id, type_, data)
        cases.append(case_id)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    events = 15
    workers = [
        context.Process(target=_append, args=(str(settings.data_dir), cases[i::3], events, results))
        for i in range(3)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    try:
        assert outcomes == [2 * events] * 3, outcomes
        for case_id in cases:
            assert ct.app.repository.get(UUID(case_id)).version == 3 + events
    finally:
        ct.close()


def test_an_append_waits_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    # The event recorder takes the lock for its transaction (store/sqlite.py).
    settings = Settings(data_dir=tmp_path / "var")
    ct = bootstrap(settings)
    ct.directory.load_units(TEST_UNITS)
    actor = Actor(user_id="u_w", role="caseworker", unit=UNIT)
    case_id = ct.service.open_case(actor, "dispute", UNIT, *workload.opening()).id
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_writer_lock, args=(str(settings.data_dir), held, release))
    holder.start()
    appended = threading.Event()

    def append() -> None:
        type_, data = next(iter(workload.appends()))
        ct.service.append(actor, case_id, type_, data)
        appended.set()

    thread = threading.Thread(target=append)
    try:
        assert held.wait(60), "the other process never took the lock"
        thread.start()
        assert not appended.wait(HOLD_SECONDS), "appended while another process held the lock"
        release.set()
        assert appended.wait(30)
        assert ct.app.repository.get(UUID(case_id)).version == 2
    finally:
        release.set()
        thread.join(30)
        holder.join(30)
        ct.close()
    assert holder.exitcode == 0


def test_a_process_keeps_its_lock_file_open_until_the_store_closes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    ct = bootstrap(settings)
    writer = (os.getpid(), ct.db.datastore.pool.db_name)
    with ct.db.writer():
        pass
    fd = _writers[writer].fd
    assert fd is not None
    with ct.db.writer():
        pass
    assert _writers[writer].fd == fd  # opened once
    ct.close()
    assert _writers[writer].fd is None
    with pytest.raises(OSError):
        os.fstat(fd)  # closed


def _write_once(data_dir: str, done: object) -> None:
    ct = bootstrap(Settings(data_dir=Path(data_dir)))
    try:
        with ct.db.writer():
            done.set()  # type: ignore[attr-defined]
    finally:
        ct.close()


def test_a_process_forked_while_a_thread_holds_the_lock_can_write_once_it_is_released(
    tmp_path: Path,
) -> None:
    # The child inherits the parent's lock objects as they were: one held by a thread the
    # child does not have would never be released there. Locks are per process.
    settings = Settings(data_dir=tmp_path / "var")
    ct = bootstrap(settings)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ct.db.writer():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    context = multiprocessing.get_context("fork")
    done = context.Event()
    try:
        assert holding.wait(30)
        child = context.Process(target=_write_once, args=(str(settings.data_dir), done))
        child.start()
        assert not done.wait(HOLD_SECONDS), "the child wrote while the parent held the lock"
        release.set()
        assert done.wait(30), "the child never got the lock"
        child.join(30)
        assert child.exitcode == 0
    finally:
        release.set()
        holder.join(30)
        ct.close()
