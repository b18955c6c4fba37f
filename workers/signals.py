"""After each accepted append: wake the projection workers, at most one job at a time.

A burst of appends queues one catch-up job: the first append sets a `pending` flag (SET NX)
and enqueues; the others find the flag set. The job clears the flag before it reads the
log, so an append that comes in meanwhile queues the next job. If Redis is down the append
has already succeeded: the failure is logged (without personal data) and the cron safety
net catches up.
"""

from __future__ import annotations

import logging
import os
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
# After a signal, this process's appends wait for one trailing signal this long.
THROTTLE_SECONDS = 0.1
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
    """The `on_append` listener web and worker processes hand to `bootstrap`."""

    def __init__(
        self,
        settings: Settings,
        *,
        socket_timeout: float = SOCKET_TIMEOUT,
        throttle_seconds: float = THROTTLE_SECONDS,
    ) -> None:
        self.settings = settings
        self.socket_timeout = socket_timeout
        self.throttle_seconds = throttle_seconds
        self._conn: redis.Redis | None = None
        self._quiet_until = 0.0
        self._lock = threading.Lock()
        # The throttle: no signal of our own before `_next_signal`; `_trailing` is the
        # scheduled trailing signal, if any; `_pid` notices a fork (timers do not survive).
        self._throttle_lock = threading.Lock()
        self._next_signal = 0.0
        self._trailing: threading.Timer | None = None
        self._pid = os.getpid()

    def connection(self) -> redis.Redis:
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.settings, socket_timeout=self.socket_timeout)
            return self._conn

    def __call__(self, position: int) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            return
        with self._throttle_lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._next_signal = 0.0
                self._trailing = None
            if now < self._next_signal:
                if self._trailing is None:
                    self._trailing = threading.Timer(self._next_signal - now, self._signal_trailing)
                    self._trailing.daemon = True
                    self._trailing.start()
                return
            self._next_signal = now + self.throttle_seconds
        self._signal(position)

    def _signal_trailing(self) -> None:
        with self._throttle_lock:
            self._trailing = None
            self._next_signal = time.monotonic() + self.throttle_seconds
        if time.monotonic() < self._quiet_until:
            return
        self._signal(None)

    def close(self) -> None:
        """Sends a scheduled trailing signal now (e.g. before the process exits)."""
        with self._throttle_lock:
            trailing, self._trailing = self._trailing, None
        if trailing is not None:
            trailing.cancel()
            if time.monotonic() >= self._quiet_until:
                self._signal(None)

    def _signal(self, position: int | None) -> None:
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
