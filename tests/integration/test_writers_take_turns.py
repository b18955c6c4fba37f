"""Every SQLite writer waits its turn at the writer lock, under append load: the audit
trail's checkpoints, the directory's users and units. Before they did, a checkpoint
failed with "database is locked" when an append committed between its read of the last
checkpoint and its insert (its read snapshot could no longer become a write; SQLite
refuses that at once, its busy handler does not wait for it)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

from bench import workload
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.case import Actor
from tests.units import TEST_UNITS

UNIT = workload.UNIT
APPENDERS = 2
LOAD_SECONDS = 4.0


def _append_until(data_dir: str, case_id: str, stop: Any, results: Any) -> None:
    """Appends to one case until `stop` is set; puts the number appended (or the error)."""
    ct = bootstrap(Settings(data_dir=Path(data_dir)))
    actor = Actor(user_id="u_w", role="caseworker", unit=UNIT)
    appended = 0
    try:
        day = workload.cst_date(workload.SystemClock().now()).isoformat()
        while not stop.is_set():
            ct.service.append(actor, case_id, "MediationSessionHeld", workload.session(day))
            appended += 1
        results.put(appended)
    except Exception as error:  # reported to the test, which fails
        results.put(repr(error))
    finally:
        ct.close()


def _open_cases(ct: Casetrail, count: int) -> list[str]:
    ct.directory.load_units(TEST_UNITS)
    actor = Actor(user_id="u_w", role="caseworker", unit=UNIT)
    cases = []
    for _ in range(count):
        case_id = ct.service.open_case(actor, "dispute", UNIT, *workload.opening()).id
        for type_, data in list(workload.appends())[:2]:  # triaged, assigned
            ct.service.append(actor, case_id, type_, data)
        cases.append(case_id)
    return cases


def test_checkpoints_and_users_are_written_while_other_processes_append(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    ct = bootstrap(settings)
    cases = _open_cases(ct, APPENDERS)
    context = multiprocessing.get_context("fork")
    stop, results = context.Event(), context.Queue()
    appenders = [
        context.Process(target=_append_until, args=(str(settings.data_dir), case_id, stop, results))
        for case_id in cases
    ]
    for appender in appenders:
        appender.start()
    checkpoints, users, failures = 0, 0, []
    try:
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            try:
                if ct.audit.write_checkpoint(force=True) is not None:
                    checkpoints += 1
                ct.directory.create_user(f"clerk {users}", "caseworker", UNIT)
                users += 1
            except Exception as error:  # every failure is the test's, not only the first
                failures.append(repr(error))
    finally:
        stop.set()
        outcomes = [results.get(timeout=120) for _ in appenders]
        for appender in appenders:
            appender.join(30)
    try:
        assert failures == [], failures[:3]
        assert all(isinstance(n, int) and n > 0 for n in outcomes), outcomes
        assert checkpoints > 1 and users > 1
        # The last checkpoint signs a log that every append extends (none was lost).
        report = ct.audit.verify(None)
        assert report.ok, report.as_dict()["problems"][:3]
    finally:
        ct.close()
