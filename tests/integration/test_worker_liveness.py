"""Read models that recover on their own (issue 21): a Redis outage, a worker killed while
it projects, a flag left by a job that never ran. Real worker and cron processes, a real
Redis (the embedded one, so that the tests can kill it), SQLite and PostgreSQL stores."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue, Worker

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock
from projections import engine_for
from projections.queries import ReadModels
from tests.dispute_builders import registration
from tests.integration.projection_support import (
    CITY,
    bulk_disputes,
    load_units,
    process_env,
    start,
    stop,
    wait_until,
)
from workers.redis_conn import answers as pings
from workers.redis_conn import (
    connect,
    embedded_server,
    listening,
    socket_path,
    start_server,
    stop_embedded,
)
from workers.signals import (
    ProjectionSignal,
    enqueue_catch_up,
    lease_key,
    pending_key,
    running_key,
)


@pytest.fixture
def embedded(settings: Settings) -> Iterator[Settings]:
    """The store's settings with the embedded Redis (started by this test process, which
    can then kill it) and a queue of their own."""
    ours = settings.with_(redis_url=None, queue_name="ct_live_" + uuid.uuid4().hex[:10])
    embedded_server(ours.data_dir)
    yield ours
    stop_embedded(ours.data_dir)


def open_case(ct: Casetrail) -> int:
    opened = ct.service.open_case(
        CITY, "dispute", "320100", "DisputeRegistered", registration(center_unit="320100")
    )
    return opened.position


def kill_redis(settings: Settings) -> None:
    conn = connect(settings)
    pid = int(conn.info("server")["process_id"])
    conn.close()
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not answers(settings), 5)


def answers(settings: Settings) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path(settings.data_dir))).ping())
    except (redis.RedisError, OSError):
        return False


def caught_up(ct: Casetrail) -> bool:
    return all(entry["lag"] == 0 for entry in engine_for(ct).status())


def test_worker_and_cron_ride_out_a_redis_outage_and_project_the_backlog_once_it_is_back(
    embedded: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    ct = bootstrap(embedded, clock=clock, on_append=ProjectionSignal(embedded))
    # A safety net far away: what projects the backlog is the workers' own recovery.
    env = process_env(embedded, CASETRAIL_CATCHUP_INTERVAL="3600")
    worker = start(["worker"], env, tmp_path / "worker.log")
    cron = start(["cron"], env, tmp_path / "cron.log")
    try:
        models = ReadModels(ct)
        assert models.wait_for(open_case(ct), timeout=30), (tmp_path / "worker.log").read_text()

        kill_redis(embedded)
        down = time.monotonic()
        positions = [open_case(ct) for _ in range(15)]  # accepted while Redis is down
        while time.monotonic() - down < 6:  # long enough for every backoff to grow
            time.sleep(0.5)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        assert cron.poll() is None, (tmp_path / "cron.log").read_text()[-3000:]

        embedded_server(embedded.data_dir)  # Redis is back, empty; nobody does anything else
        back = time.monotonic()
        assert models.wait_for(positions[-1], timeout=60), (tmp_path / "worker.log").read_text()
        recovered = time.monotonic() - back
        print(f"backlog of {len(positions)} projected {recovered:.1f} s after Redis came back")
        assert recovered < 60
        assert models.list_cases()["total"] == 16
        assert worker.poll() is None and cron.poll() is None
    finally:
        stop(cron)
        stop(worker)
        ct.close()


def test_a_redis_too_busy_to_answer_in_time_is_not_replaced_by_a_second_one(
    embedded: Settings,
) -> None:
    """On a loaded machine the embedded Redis may not answer a PING within the short
    timeout: a process that then took it for dead and started another on the same socket
    and dump would lose what the first held (queued jobs, flags) since its last save."""
    conn = connect(embedded)
    conn.set("queued-before", "kept")
    pid = int(conn.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)  # there, but answering nothing
    try:
        assert not pings(socket_path(embedded.data_dir))  # within its 0.5 s
        assert start_server(embedded.data_dir) is None
        assert embedded_server(embedded.data_dir).socket_file == str(socket_path(embedded.data_dir))
        assert listening(socket_path(embedded.data_dir))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert conn.get("queued-before") == b"kept"
    assert int(conn.info("server")["process_id"]) == pid
    conn.close()


def test_a_catch_up_whose_worker_is_killed_mid_batch_is_taken_over_within_5_s(
    embedded: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    ct = bootstrap(embedded, clock=clock)
    conn = connect(embedded)
    queue = embedded.queue_name
    env = process_env(embedded, CASETRAIL_PROJECTION_BATCH="5")
    engine = engine_for(ct)
    engine.setup()
    workers = [start(["worker"], env, tmp_path / f"worker{n}.log") for n in range(2)]

    def leases() -> dict[str, int]:
        held = {}
        for member in conn.smembers(running_key(queue)):
            pid = conn.get(lease_key(queue, member.decode()))
            if pid is not None:
                held[member.decode()] = int(pid)
        return held

    def processed() -> int:
        return sum(entry["position"] for entry in engine.status())

    try:
        # Both workers idle (their start-up catch-ups done), then a backlog and one job.
        def idle() -> bool:
            registered = Worker.count(queue=Queue(queue, connection=conn)) == 2
            return registered and conn.llen(f"rq:queue:{queue}") == 0 and not leases()

        assert wait_until(idle, 30)
        time.sleep(0.5)
        assert idle()
        bulk_disputes(ct, clock, 200)
        enqueue_catch_up(conn, queue)
        assert wait_until(lambda: bool(leases()) and processed() > 0, 30)
        (holder,) = leases().values()
        assert holder in [w.pid for w in workers]
        os.kill(holder, signal.SIGKILL)  # no append follows: nothing else wakes anyone
        killed = time.monotonic()
        at_kill = processed()
        assert not caught_up(ct), "the work ran out before the kill"
        assert wait_until(lambda: processed() > at_kill, 10, pause=0.05)
        taken_over = time.monotonic() - killed
        print(f"the killed worker's catch-up was taken over after {taken_over:.1f} s")
        assert 1 < taken_over < 5  # by the lease's lapse, not by a job already running
        assert wait_until(lambda: caught_up(ct), 60)
    finally:
        for process in workers:
            stop(process)
        ct.close()


def test_a_flag_whose_job_never_ran_does_not_hold_back_the_next_appends(
    embedded: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    ct = bootstrap(embedded, clock=clock, on_append=ProjectionSignal(embedded))
    worker = start(["worker"], process_env(embedded), tmp_path / "worker.log")
    try:
        load_units(ct)
        models = ReadModels(ct)
        assert models.wait_for(open_case(ct), timeout=30)
        conn = connect(embedded)
        # What a worker killed between taking the job off the queue and starting it leaves:
        # the flag says a catch-up is coming, and none is.
        conn.set(pending_key(embedded.queue_name), "catch-up-lost", ex=60)
        position = open_case(ct)
        flagged = time.monotonic()
        assert models.wait_for(position, timeout=20), (tmp_path / "worker.log").read_text()
        print(f"projected {time.monotonic() - flagged:.1f} s after the flag was orphaned")
        assert time.monotonic() - flagged < 5
    finally:
        stop(worker)
        ct.close()


def test_a_worker_started_after_appends_nobody_announced_projects_them(
    embedded: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    ct = bootstrap(embedded, clock=clock)  # no signals: as if Redis had been down
    try:
        load_units(ct)
        positions = [open_case(ct) for _ in range(3)]
        conn = connect(embedded)
        enqueue_catch_up(conn, embedded.queue_name)  # a flag and job of a past life...
        conn.delete(f"rq:queue:{embedded.queue_name}")  # ...whose queue was lost
        worker = start(["worker"], process_env(embedded), tmp_path / "worker.log")
        try:
            assert ReadModels(ct).wait_for(positions[-1], timeout=10)
        finally:
            stop(worker)
    finally:
        ct.close()
