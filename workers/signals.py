"""After each accepted append: wake the projection workers, at most one job at a time.

A burst of appends queues one catch-up job: the first append sets a `pending` flag (SET NX,
naming the job) and enqueues; the others find the flag set. The job clears the flag before
it reads the log, so an append that comes in meanwhile queues the next job. If Redis is
down the append has already succeeded: the failure is logged (without personal data), and
the workers queue a catch-up when Redis is back (and the cron safety net catches up).

No wake-up is lost to a worker that dies: a running catch-up holds a lease (refreshed every
second, gone 3 s after its worker), and a flag names a job that must still be in the queue;
every worker's watch (workers.resilience) takes over a job whose lease lapsed, or a flag
whose job left the queue without starting, by queuing a new one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import redis
from rq import Queue

from casetrail.config import Settings
from workers.redis_conn import SOCKET_TIMEOUT, connect

log = logging.getLogger("casetrail.workers")

# A flag outlives its job at most this long (the workers' watch takes over sooner).
PENDING_TTL_SECONDS = 60
# A running catch-up's lease: refreshed this often, lapses this long after its worker died.
LEASE_REFRESH_SECONDS = 1.0
LEASE_SECONDS = 3
# After a failure, appends do not try Redis again for this long (they stay fast).
RETRY_AFTER_SECONDS = 5.0
# After a signal, this process's appends wait for one trailing signal this long.
THROTTLE_SECONDS = 0.1
CATCH_UP_JOB = "workers.jobs.catch_up"
JOB_TIMEOUT_SECONDS = 600


def pending_key(queue_name: str) -> str:
    return f"{queue_name}:projections:pending"


def running_key(queue_name: str) -> str:
    """The set of catch-up jobs running (each with a lease while its worker lives)."""
    return f"{queue_name}:projections:running"


def lease_key(queue_name: str, job_id: str) -> str:
    return f"{queue_name}:projections:lease:{job_id}"


def enqueue_catch_up(conn: redis.Redis, queue_name: str, *, force: bool = False) -> bool:
    """Queues a catch-up job unless one is already pending; True if one was queued."""
    job_id = f"catch-up-{uuid.uuid4().hex}"
    flagged = conn.set(pending_key(queue_name), job_id, nx=True, ex=PENDING_TTL_SECONDS)
    if not flagged and not force:
        return False
    Queue(queue_name, connection=conn).enqueue(
        CATCH_UP_JOB,
        job_id=job_id,
        job_timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=60,
        failure_ttl=3600,
    )
    return True


@contextmanager
def catch_up_lease(conn: redis.Redis, queue_name: str, job_id: str) -> Iterator[None]:
    """Holds the lease of a running catch-up: while it lives, nobody takes over its work.

    The lease is set before the job joins the running set, so a member without a lease
    is a job whose worker stopped refreshing it. Redis errors do not fail the job.
    """
    key, running = lease_key(queue_name, job_id), running_key(queue_name)
    done = threading.Event()

    def refresh() -> None:
        while not done.wait(LEASE_REFRESH_SECONDS):
            with suppress(redis.RedisError, OSError):
                conn.set(key, os.getpid(), ex=LEASE_SECONDS)

    conn.set(key, os.getpid(), ex=LEASE_SECONDS)
    conn.sadd(running, job_id)
    refresher = threading.Thread(target=refresh, name="catch-up-lease", daemon=True)
    refresher.start()
    try:
        yield
    finally:
        done.set()
        refresher.join(5)
        try:
            conn.srem(running, job_id)
            conn.delete(key)
        except (redis.RedisError, OSError):
            pass  # the lease lapses; a watch queues a catch-up that finds nothing to do


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# Deletes the flag only if it still names the job the caller found lost.
_DELETE_IF = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


def hold_pending(conn: redis.Redis, queue_name: str, job_id: str) -> None:
    """The pending flag names this running job: appends meanwhile queue none (the job
    sees their events); refreshed while the job lives, gone a while after it died."""
    conn.set(pending_key(queue_name), job_id, ex=PENDING_TTL_SECONDS)


def release_pending(conn: redis.Redis, queue_name: str, job_id: str) -> bool:
    """Clears the pending flag if it still names this job (not one queued since)."""
    return bool(conn.eval(_DELETE_IF, 1, pending_key(queue_name), job_id))


def take_over_lost_catch_ups(conn: redis.Redis, queue_name: str, suspects: set[str]) -> set[str]:
    """Queues a catch-up for work nobody will do: a running job whose lease lapsed, or a
    flagged job neither queued nor running (lost between dequeue and start: seen so on
    two rounds in a row, since a job takes a moment to start). Returns this round's
    suspects, for the next round. A duplicate catch-up is harmless (it finds no work)."""
    owed = False
    running = running_key(queue_name)
    for member in conn.smembers(running):
        job_id = _text(member)
        if not conn.exists(lease_key(queue_name, job_id)) and conn.srem(running, job_id):
            log.warning("catch-up %s lost its worker; taking it over", job_id)
            owed = True
    now_suspected: set[str] = set()
    flag = conn.get(pending_key(queue_name))
    if flag is not None:
        job_id = _text(flag)
        queued = conn.lpos(Queue(queue_name, connection=conn).key, job_id) is not None
        if not queued and not conn.sismember(running, job_id):
            if job_id in suspects:
                if conn.eval(_DELETE_IF, 1, pending_key(queue_name), job_id):
                    log.warning("catch-up %s left the queue and never ran; queuing another", job_id)
                    owed = True
            else:
                now_suspected.add(job_id)
    if owed:
        enqueue_catch_up(conn, queue_name, force=True)
    return now_suspected


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
