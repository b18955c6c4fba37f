"""The RQ worker process (`casetrail worker`): runs the projection jobs in this process,
riding out Redis outages (workers.resilience)."""

from __future__ import annotations

from casetrail.bootstrap import Casetrail
from projections import engine_for
from workers import jobs
from workers.resilience import run_worker


def work(ct: Casetrail, *, burst: bool = False) -> None:
    """Works the queue until stopped (or, with `burst`, until it is empty)."""
    jobs.use(ct)
    engine_for(ct).setup()
    run_worker(ct.settings, burst=burst)
