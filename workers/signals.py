"""After each accepted append: wake the projection workers, at most one job at a time.

A burst of appends queues one catch-up job: the first append sets a `pending` flag (SET NX)
and enqueues; the others find the flag set. The job clears the flag before it reads the
log, so an append that comes in meanwhile queues the next job. If Redis is down the append
has already succeeded: the failure is logged (without personal data) and the cron safety
net catches up.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq import Queue

from casetrail.config import Settings
from workers.redis_conn import SOCKET_TIMEOUT, connect

log = logging.getLogger("casetrail.workers")

# A job whose worker died leaves the flag set at most this long.
PENDING_TTL_SECONDS = 60
# After a failure, appends do not try Redis again for this long (they stay fast).
RETRY_AFTER_SECONDS = 5.0
CATCH_UP_JOB = "workers.jobs.catch_up"
JOB_TIMEOUT_SECONDS = 600


def pending_key(queue_name: str) -> str:
    return f"{queue_name}:projections:pending"


def enqueue_catch_up(conn: redis.Redis, queue_name: str, *, force: bool = False) -> bool:
    """Queues a catch-up job unless one is already pending; True if one was queued."""
    flagged = conn.set(pending_key(queue_name), "1", nx=True, ex=PENDING_TTL_SECONDS)
    if not flagged and not force:
        return False
    Queue(queue_name, connection=conn).enqueue(
        CATCH_UP_JOB, job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=60, failure_ttl=3600
    )
    return True


class ProjectionSignal:
    """The `on_append` listener `bootstrap(signal_workers=True)` installs."""

    def __init__(self, settings: Settings, *, socket_timeout: float = SOCKET_TIMEOUT) -> None:
        self.settings = settings
        self.socket_timeout = socket_timeout
        self._conn: redis.Redis | None = None
        self._quiet_until = 0.0
        self._lock = threading.Lock()

    def connection(self) -> redis.Redis:
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.settings, socket_timeout=self.socket_timeout)
            return self._conn

    def __call__(self, position: int) -> None:
        if time.monotonic() < self._quiet_until:
            return
        try:
            enqueue_catch_up(self.connection(), self.settings.queue_name)
        except (redis.RedisError, OSError) as error:
            self._quiet_until = time.monotonic() + RETRY_AFTER_SECONDS
            log.warning(
                "could not signal the projection workers after position %s (%s); "
                "the cron safety net will catch up",
                position,
                type(error).__name__,
            )
