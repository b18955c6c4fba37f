"""Workers and cron that ride out a Redis outage, and catch-up work that outlives its worker.

`ride_out` runs a session (an RQ worker's or the cron scheduler's loop) again, with a
growing pause, whenever it ends on a lost Redis connection, instead of letting the process
quit; `Watch` is the thread in every worker that notices, within seconds, a catch-up that
nobody will run any more (its worker died, or Redis came back without it) and queues one.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import redis
from rq import Queue, SimpleWorker

from casetrail.config import Settings
from workers.redis_conn import connect
from workers.signals import enqueue_catch_up, take_over_lost_catch_ups

log = logging.getLogger("casetrail.workers")

FIRST_PAUSE = 0.25
MAX_PAUSE = 5.0
# A session that ran this long was healthy: the next failure starts the pauses again.
HEALTHY_SECONDS = 30.0
WATCH_SECONDS = 1.0


def ride_out(session: Callable[[], bool], *, what: str) -> None:
    """Runs `session` until it returns True (done: a stop was asked for, a burst is over).

    A session that returns False or raises a Redis (or socket) error lost its Redis: after
    a pause (0.25 s, doubling up to 5 s) it runs again. SIGTERM or SIGINT during a pause
    ends the process at once.
    """
    pause = FIRST_PAUSE
    while True:
        started = time.monotonic()
        try:
            if session():
                return
            reason = "the connection was lost"
        except (redis.RedisError, OSError) as error:
            reason = f"{type(error).__name__}: {error}"
        if time.monotonic() - started > HEALTHY_SECONDS:
            pause = FIRST_PAUSE
        log.warning("%s: Redis is unavailable (%s); trying again in %.2f s", what, reason, pause)
        _stop_on_signals()
        time.sleep(pause)
        pause = min(MAX_PAUSE, pause * 2)


def _stop_on_signals() -> None:
    """Between sessions the session's own signal handlers (RQ's) must not run."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


class Watch:
    """Every second: take over lost catch-ups; after Redis comes back (an error seen, or a
    new server behind the address), queue one: whatever was appended while it was away
    announced itself to nobody."""

    def __init__(self, connect: Callable[[], redis.Redis], queue_name: str) -> None:
        self.connect = connect
        self.queue_name = queue_name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="catch-up-watch", daemon=True)
        self.suspects: set[str] = set()

    def start(self) -> Watch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        conn: redis.Redis | None = None
        reachable = True
        server: str | None = None  # Redis's run id: a new one is a restarted server
        while not self._stop.wait(WATCH_SECONDS):
            try:
                if conn is None:
                    conn = self.connect()
                run_id = str(conn.info("server").get("run_id"))
                if not reachable or (server is not None and run_id != server):
                    enqueue_catch_up(conn, self.queue_name, force=True)
                    log.info("Redis is back: queued a catch-up")
                reachable, server = True, run_id
                self.suspects = take_over_lost_catch_ups(conn, self.queue_name, self.suspects)
            except (redis.RedisError, OSError):
                reachable = False
                if conn is not None:
                    conn.close()
                conn = None


class Worker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in this process, with its casetrail and connection pool;
    a forked work horse would share the parent's database connections), retrying a lost
    Redis at most every 5 s rather than RQ's 60."""

    max_connection_wait_time = MAX_PAUSE


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """`casetrail worker`: RQ's work loop, run again whenever it ends on a lost Redis."""

    def session() -> bool:
        conn = connect(settings)
        conn.ping()
        if not burst:
            # Whatever was appended while no worker listened announced itself to nobody.
            enqueue_catch_up(conn, settings.queue_name, force=True)
        worker = Worker([Queue(settings.queue_name, connection=conn)], connection=conn)
        watch = Watch(lambda: connect(settings, socket_timeout=2.0), settings.queue_name)
        if not burst:
            watch.start()
        try:
            # RQ says "job OK" for every job at INFO; at WARNING an idle worker is quiet
            # and a failing job still says so (workers.logs).
            worker.work(burst=burst, logging_level="WARNING")
        finally:
            if not burst:
                watch.stop()
        # RQ's loop ends quietly on an error it did not expect: only a stop asked for
        # (a signal) or the end of a burst means done.
        return burst or worker._shutdown_requested_date is not None

    ride_out(session, what="worker")
