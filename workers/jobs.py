"""The jobs RQ workers run: catch the read models up, in batches, from their tracked
positions; sign a checkpoint of the audit log when it has grown.

Safe with any number of workers on any number of machines: every batch is claimed by a
compare-and-set on its tracking record (see projections.engine), so two workers never
apply the same event; the loser of a race re-reads the position and carries on.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq import Queue, get_current_job

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from projections import engine_for
from projections.engine import Engine
from projections.retention import run_retention
from workers import witnessing
from workers.signals import (
    ProjectionSignal,
    catch_up_lease,
    enqueue_catch_up,
    hold_pending,
    release_pending,
)

log = logging.getLogger("casetrail.workers")

# A job hands over to a fresh one after this long, so that no job runs into its timeout.
JOB_SECONDS = 120.0
# A job follows the log until its head has not moved for this long, looking this often.
LINGER_SECONDS = 1.0
POLL_SECONDS = 0.02
# While it follows, it looks this often whether other jobs wait for the worker, and
# catches up at most this long at a time before it looks again (a large backlog).
QUEUE_LOOK_SECONDS = 0.25
SLICE_SECONDS = 5.0

_casetrail: Casetrail | None = None
_lock = threading.Lock()


def use(ct: Casetrail) -> None:
    """The casetrail this worker process's jobs run against (`casetrail worker` sets it)."""
    global _casetrail
    with _lock:
        _casetrail = ct


def build() -> Casetrail:
    """A casetrail whose appends wake the projection workers."""
    settings = Settings.from_env()
    return bootstrap(settings, on_append=ProjectionSignal(settings))


def current() -> Casetrail:
    global _casetrail
    with _lock:
        if _casetrail is None:
            _casetrail = build()
        return _casetrail


def catch_up() -> int:
    """The signalled job: under its lease, follows the log while appends keep coming, then
    hands the wake-up back (a worker that dies meanwhile leaves the lease to lapse: another
    takes over). See `follow`."""
    ct = current()
    engine = engine_for(ct)
    job = get_current_job()
    if job is None:
        return engine.catch_up(max_seconds=JOB_SECONDS)
    conn, queue_name = job.connection, ct.settings.queue_name
    with catch_up_lease(conn, queue_name, job.id):
        applied = follow(engine, conn, queue_name, job.id)
    if applied:  # an idle service stays quiet
        log.info("catch-up applied %s events", applied)
    return applied


def follow(engine: Engine, conn: redis.Redis, queue_name: str, job_id: str) -> int:
    """Catches up, and again whenever the log's head moves, until it has not moved for
    `LINGER_SECONDS`, the job has run `JOB_SECONDS`, or other jobs wait in the queue; the
    events applied.

    While it follows, the pending flag names this job, so the appends it will see queue no
    job of their own (under a steady load one job replaces one per few dozen events, and
    RQ's bookkeeping of each). It gives the flag back before its last look at the head: an
    append that finds the flag gone queues the next job, and one that found it set was
    committed before that look, which sees it and queues the next job itself."""
    queue = Queue(queue_name, connection=conn)
    started = time.monotonic()
    deadline = started + JOB_SECONDS
    hold_pending(conn, queue_name, job_id)
    applied, seen, moved, looked = 0, -1, started, started
    try:
        while (now := time.monotonic()) < deadline:
            if now - looked >= QUEUE_LOOK_SECONDS:
                looked = now
                if queue.count:  # a checkpoint, a sweep or a delivery waits: hand over
                    break
                hold_pending(conn, queue_name, job_id)  # still ours, still alive
            head = engine.head()
            if head != seen:
                seen, moved = head, now
                applied += engine.catch_up(max_seconds=min(deadline - now, SLICE_SECONDS))
                if time.monotonic() - now >= SLICE_SECONDS:  # cut short: more to do
                    seen = -1
            elif now - moved >= LINGER_SECONDS:
                break
            else:
                time.sleep(POLL_SECONDS)
    finally:
        release_pending(conn, queue_name, job_id)
    if engine.lagging():
        enqueue_catch_up(conn, queue_name)
    return applied


def safety_net() -> int:
    """The periodic job (`casetrail cron`): catches up whatever no signal announced, and drops
    read-model generations retired long enough ago."""
    ct = current()
    engine = engine_for(ct)
    applied = engine.catch_up(max_seconds=JOB_SECONDS)
    engine.drop_retired()
    if applied:  # events no signal announced; said only then, so that idle is quiet
        log.info("safety net applied %s events", applied)
    return applied


def checkpoint_job() -> int | None:
    """The cron job: a signed checkpoint of the audit log if it grew since the last one,
    then the latest checkpoint to every witness that has not cosigned it (one that was
    down is asked again here at the next run); the new checkpoint's number, or None."""
    ct = current()
    row = ct.audit.write_checkpoint()
    cosigned = witnessing.witness(ct)
    witnessing.stamp(ct)  # an RFC 3161 timestamp, where CASETRAIL_TSA_URL is set
    if cosigned:
        log.info("checkpoint cosigned by %s witness(es)", len(cosigned))
    return None if row is None else int(row.number)


def retention_job() -> dict[str, int]:
    """The daily cron job: erases what has passed its retention period
    (projections.retention); how many months of read-access records, monitoring records
    and whole records it erased (counts only: no ids in the job's result or log)."""
    done = run_retention(current())
    counts = {name: len(done[name]) for name in ("access_months", "monitoring", "cases")}
    if any(counts.values()):
        log.info("retention erased %s", counts)
    return counts
