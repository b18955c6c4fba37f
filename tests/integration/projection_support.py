"""Helpers for the projection and worker tests: bulk case loads, worker processes, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.projections import COURSES, save_with_chain
from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from domain.case import Actor, Context
from domain.clock import FixedClock, cst_date
from domain.dispute import Dispute
from tests.dispute_builders import event_data, registration
from tests.units import TEST_UNITS

CITY = Actor(user_id="u_city", role="caseworker", unit="320100")
UNITS = ("320102", "320102001", "320102001001", "320104", "320104002")
CASETRAIL = str(Path(sys.executable).parent / "casetrail")


def bulk_disputes(ct: Casetrail, clock: FixedClock, cases: int, chunk: int = 100) -> int:
    """Opens `cases` disputes through the domain and saves them in chunks (one transaction
    each, with their chain links); returns the number of events stored."""
    load_units(ct)
    stored = 0
    for first in range(0, cases, chunk):
        batch = []
        for number in range(first, min(first + chunk, cases)):
            clock.advance(timedelta(minutes=7))
            unit = UNITS[number % len(UNITS)]
            ctx = Context(actor=CITY, now=clock.now())
            case = Dispute.open(unit, registration(center_unit=unit), ctx)
            for event_type in COURSES[number % len(COURSES)]:
                changes: dict[str, Any] = {}
                if event_type == "DisputeTriaged":
                    changes["responsible_unit"] = unit
                if event_type == "DisputeAssigned":
                    changes["assigned_unit"] = unit
                case.record(
                    event_type, event_data(event_type, cst_date(clock.now()), **changes), ctx
                )
            batch.append(case)
        stored += save_with_chain(ct, batch)
    return stored


def load_units(ct: Casetrail) -> None:
    ct.directory.load_units(TEST_UNITS)


def process_env(settings: Settings, *, redis: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a casetrail process (web, worker, cron) on these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
    env.update(
        CASETRAIL_DATA_DIR=str(settings.data_dir),
        CASETRAIL_QUEUE=settings.queue_name,
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    if settings.database_url:
        env["CASETRAIL_DATABASE_URL"] = settings.database_url
    if settings.database_schema:
        env["CASETRAIL_DATABASE_SCHEMA"] = settings.database_schema
    if redis:
        from workers.redis_conn import redis_url

        env["CASETRAIL_REDIS_URL"] = redis_url(settings)
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([CASETRAIL, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until(condition: Callable[[], bool], timeout: float, pause: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(pause)
    return condition()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
