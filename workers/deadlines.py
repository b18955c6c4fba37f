"""Deadline sweeps as the cron's RQ jobs (`casetrail deadlines sweep|list`: cli/deadlines.py).

The frequent sweep is incremental (workers.incremental): the cases with events since the last
sweep and those whose deadlines crossed a day boundary; its cursor moves only after it ends,
so a sweep that never ran (Redis down, every worker killed) is caught up by the next one. A
full sweep, recomputing every case from the event streams, runs once a day as the safety net.
"""

from __future__ import annotations

import json
import logging
import os

from workers.incremental import IncrementalSweeps
from workers.jobs import current

log = logging.getLogger("casetrail.workers.deadlines")

# How often `casetrail cron` enqueues a sweep; deadlines fall due at CST midnight, a warning
# or a breach is recorded at most this long after it.
SWEEP_INTERVAL_ENV = "CASETRAIL_DEADLINE_SWEEP_SECONDS"
DEFAULT_SWEEP_INTERVAL_SECONDS = 60
SWEEP_TIMEOUT_SECONDS = 1800
FULL_SWEEP_INTERVAL_SECONDS = 86400
# A full sweep's processes (workers.incremental.sweep_in_processes): one per core here.
FULL_SWEEP_PROCESSES = 2


def sweep_interval() -> int:
    return max(int(os.environ.get(SWEEP_INTERVAL_ENV, DEFAULT_SWEEP_INTERVAL_SECONDS)), 1)


def sweep_job() -> dict[str, object]:
    """The cron job (run by an RQ worker): sweeps what changed since the last sweep."""
    report = IncrementalSweeps(current()).sweep()
    if any(value for key, value in report.items() if key not in ("cases", "mode")):
        log.info("deadline sweep: %s", json.dumps(report))  # idle: quiet
    return report


def full_sweep_job() -> dict[str, object]:
    """The daily cron job: sweeps every case."""
    report = IncrementalSweeps(current()).sweep(full=True, processes=FULL_SWEEP_PROCESSES)
    log.info("full deadline sweep: %s", json.dumps(report))
    return report
