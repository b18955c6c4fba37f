"""The RQ worker process (`casetrail worker`): runs the projection jobs in this process."""

from __future__ import annotations

from rq import Queue, SimpleWorker

from casetrail.bootstrap import Casetrail
from projections import engine_for
from workers import jobs
from workers.redis_conn import connect


def work(ct: Casetrail, *, burst: bool = False) -> None:
    """Works the queue until stopped (or, with `burst`, until it is empty)."""
    jobs.use(ct)
    engine_for(ct).setup()
    conn = connect(ct.settings)
    queue = Queue(ct.settings.queue_name, connection=conn)
    # SimpleWorker runs jobs in this process, with its casetrail and connection pool
    # (a forked work horse would share the parent's database connections).
    SimpleWorker([queue], connection=conn).work(burst=burst, logging_level="INFO")
