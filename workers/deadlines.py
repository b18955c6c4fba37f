"""Deadline sweeps as the cron's RQ job (`casetrail deadlines sweep|list`: cli/deadlines.py).

A sweep recomputes every case's deadlines from the event streams (workers.sweeps), so
a sweep that never ran (Redis down, every worker killed) is caught up by the next one.
"""

from __future__ import annotations

import json
import logging
import os

from workers.jobs import current
from workers.sweeps import sweeper_of

log = logging.getLogger("casetrail.workers.deadlines")

# How often `casetrail cron` enqueues a sweep; deadlines fall due at CST midnight, a warning
# or a breach is recorded at most this long after it.
SWEEP_INTERVAL_ENV = "CASETRAIL_DEADLINE_SWEEP_SECONDS"
DEFAULT_SWEEP_INTERVAL_SECONDS = 60
SWEEP_TIMEOUT_SECONDS = 1800


def sweep_interval() -> int:
    return max(int(os.environ.get(SWEEP_INTERVAL_ENV, DEFAULT_SWEEP_INTERVAL_SECONDS)), 1)


def sweep_job() -> dict[str, int]:
    """The cron job (run by an RQ worker): sweeps every case with the worker's casetrail."""
    report = sweeper_of(current()).sweep().as_dict()
    if any(value for key, value in report.items() if key != "cases"):  # idle: quiet
        log.info("deadline sweep: %s", json.dumps(report))
    return report
