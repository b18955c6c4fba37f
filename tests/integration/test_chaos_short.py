"""`python -m bench.chaos --short` against a real `casetrail up` (issue 21): no acknowledged
command lost, none applied twice, no 5xx but the 503 storage_unavailable of a full disk, and
every fault recovered from by itself within the issue's times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The times: a dead worker's work is taken over within 5 s; the projection backlog
# is applied within 60 s of Redis coming back. Appends succeed again within 60 s of any fault.
# The worker's figure counts from the kill, and the load goes on for about 1.5 s after it
# (a quiet second of appends, then --short's settle of 0.5 s): 5 s + 2 s.
LAG_AFTER_FAULT = {"worker": 7.0, "redis": 60.0, "redis-stop": 60.0}
APPENDS_BACK = 60.0


@pytest.fixture(scope="module")
def outcomes() -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--short", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(done.stdout, done.stderr[-3000:])
    assert done.returncode == 0, done.stderr[-3000:]
    rows: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def test_every_campaign_ran_with_appends(outcomes: list[dict[str, Any]]) -> None:
    names = {row["campaign"] for row in outcomes}
    assert {"web", "worker", "cron", "redis", "redis-stop", "slow", "disk-full"} <= names
    for row in outcomes:
        if not row["note"].startswith("skipped"):
            assert row["acknowledged"] > 0, row


def test_nothing_lost_nothing_duplicated_no_unexpected_5xx(
    outcomes: list[dict[str, Any]],
) -> None:
    for row in outcomes:
        assert (row["lost"], row["duplicated"], row["unexpected_5xx"]) == (0, 0, 0), row


def test_every_fault_recovers_by_itself_in_time(outcomes: list[dict[str, Any]]) -> None:
    for row in outcomes:
        if row["note"].startswith("skipped"):
            continue
        assert "exited" not in row["note"], row  # `up` kept going: nobody restarted it
        assert row["appends_recovered_s"] is not None, row
        assert row["appends_recovered_s"] <= APPENDS_BACK, row
        assert row["lag_zero_after_fault_s"] is not None, row
        limit = LAG_AFTER_FAULT.get(row["campaign"], 60.0)
        assert row["lag_zero_after_fault_s"] <= limit, row


def test_up_outlives_a_killed_web_process(outcomes: list[dict[str, Any]]) -> None:
    """`up` restarts its gunicorn master after a kill -9: appends succeed again, without
    `up` itself exiting and being restarted by the chaos command."""
    (row,) = [row for row in outcomes if row["campaign"] == "web"]
    assert row["note"].startswith("killed -9"), row
    assert "exited" not in row["note"], row
    assert row["appends_recovered_s"] is not None, row
    assert row["appends_recovered_s"] <= APPENDS_BACK, row
