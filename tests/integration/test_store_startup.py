"""Processes that start at once on the same store (gunicorn's workers, a parallel
rebuild's children) each construct the application and create what is missing."""

from __future__ import annotations

import threading

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings

STARTS = 4
ROUNDS = 5


def start_at_once(settings: Settings, starts: int) -> tuple[list[Casetrail], list[str]]:
    """`starts` threads construct the application at the same moment."""
    barrier = threading.Barrier(starts)
    started: list[Casetrail] = []
    failures: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            started.append(bootstrap(settings))
        except Exception as error:
            failures.append(repr(error))

    threads = [threading.Thread(target=start) for _ in range(starts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return started, failures


def test_applications_constructed_at_the_same_moment_all_start(settings: Settings) -> None:
    # On PostgreSQL each construction runs the library's CREATE OR REPLACE FUNCTION, which
    # two sessions at once made fail ("tuple concurrently updated"): a gunicorn worker
    # that failed so stopped the whole server.
    bootstrap(settings).close()
    for _ in range(ROUNDS):
        started, failures = start_at_once(settings, STARTS)
        for ct in started:
            ct.close()
        assert failures == []
        assert len(started) == STARTS
