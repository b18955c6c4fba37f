"""Deadline benchmarks (issue 16): at N open cases, the full sweep, the incremental sweep
(what changed since the last), `GET /inbox` p95 over HTTP, and breach-to-webhook delivery
p99 with the default schedule (the notify job every 5 s, a receiver on 127.0.0.1 in a
process of its own).

    .venv/bin/python -m bench.run --only deadlines --backend sqlite --deadline-cases 20000

The cases are bulk-loaded disputes (bench/projections.py `load`) registered over the last
weeks, so that some are overdue, some due soon and some closed.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

import requests

from bench import append
from bench.projections import load, units
from bench.readmodels import time_calls
from bench.stats import Rate, percentile
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock
from projections import engine_for, outbox
from workers.deadlines import FULL_SWEEP_PROCESSES
from workers.incremental import IncrementalSweeps
from workers.notify import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookConfig,
    notify,
    notify_interval,
    signature,
)

Row = tuple[str, str, str]
SECRET = b"bench-webhook-secret"
# Cases registered a day, 3 minutes apart from 01:00 UTC (bench/projections.py `load`),
# so that a case's events stay on its day in China Standard Time.
PER_DAY = 250


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Receiver:
    """A webhook receiver on 127.0.0.1 that checks each signature (a bad one: 401),
    answers 503 to a share `refuse` of the other POSTs (drawn from `seed`) and keeps every
    body it accepted, by delivery id. It speaks HTTP/1.1 (keeps connections alive), as
    the servers receivers run behind do."""

    def __init__(self, secret: bytes, *, refuse: float = 0.0, seed: int = 0) -> None:
        self.bodies: dict[str, set[bytes]] = {}
        self.bad_signatures = 0
        self.refused = 0
        self.lock = threading.Lock()
        chance = random.Random(seed)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers.get(TIMESTAMP_HEADER, "")
                good = self.headers.get(SIGNATURE_HEADER) == signature(secret, stamp, raw)
                with receiver.lock:
                    if not good:
                        receiver.bad_signatures += 1
                        status = 401
                    elif chance.random() < refuse:
                        receiver.refused += 1
                        status = 503
                    else:
                        delivery = self.headers.get(DELIVERY_HEADER, "")
                        receiver.bodies.setdefault(delivery, set()).add(raw)
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_receiver(secret: bytes, conn: Connection) -> None:
    """A Receiver until the bench process says stop or goes away."""
    receiver = Receiver(secret)
    conn.send(receiver.url)
    with contextlib.suppress(EOFError):
        conn.recv()
    receiver.close()


@contextlib.contextmanager
def receiver_process(secret: bytes) -> Iterator[str]:
    """The URL of a Receiver in a process of its own: a receiver is never in the sender's
    process, and in this one it would share the GIL with the notify job's threads."""
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    process = spawn.Process(target=serve_receiver, args=(secret, theirs), daemon=True)
    process.start()
    try:
        yield str(ours.recv())
    finally:
        ours.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()


def bulk_load(settings: Settings, cases: int) -> tuple[Casetrail, FixedClock, datetime, int]:
    """`cases` disputes registered PER_DAY a day over the days up to 10 days ago (some due
    soon, some past due, some closed), through a store opened on a clock set back; the
    store, its clock, today (01:00 UTC) and how many events were stored."""
    days = -(-cases // PER_DAY)
    today = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    clock = FixedClock(today - timedelta(days=days + 10))
    loader = bootstrap(settings, clock=clock)
    loader.directory.load_units(units())
    events = 0
    for day, first in enumerate(range(0, cases, PER_DAY)):
        clock.set(today - timedelta(days=days + 10 - day))
        events += load(loader, clock, min(PER_DAY, cases - first), first=first)
    return loader, clock, today, events


def measure(backend: str, settings: Settings, args: argparse.Namespace) -> list[Row]:
    cases = int(args.deadline_cases)
    rows: list[Row] = []
    log(f"{backend}: bulk-loading {cases:,} disputes")
    started = time.perf_counter()
    loader, clock, today, events = bulk_load(settings, cases)
    rows.append(
        (
            "deadlines",
            "bulk load",
            f"{cases:,} disputes, {events:,} events in {time.perf_counter() - started:.0f} s",
        )
    )
    log(f"{backend}: catching the inbox read model up")
    engine_for(loader).catch_up(["inbox"])
    ct = bootstrap(settings)  # the real clock from here on
    sweeps = IncrementalSweeps(ct)
    receiving = contextlib.ExitStack()
    hook = WebhookConfig(url=receiving.enter_context(receiver_process(SECRET)), secret=SECRET)
    stop = threading.Event()

    def cron() -> None:  # the notify job at its default interval, beside the sweep
        while not stop.wait(notify_interval()):
            notify(ct, hook)

    notifier = threading.Thread(target=cron, daemon=True)
    notifier.start()
    log(f"{backend}: full sweep")
    started = time.perf_counter()
    full = sweeps.sweep(full=True, processes=FULL_SWEEP_PROCESSES)  # as the cron's job
    full_seconds = time.perf_counter() - started
    rows.append(
        (
            "deadlines",
            f"full sweep, {cases:,} cases",
            f"{full_seconds:.1f} s ({full['warnings']:,} warnings, {full['breaches']:,} "
            f"breaches recorded; target at 100,000 cases ≤ 30 s)",
        )
    )
    # The nightly full sweep of the same cases: every case read again, little to record.
    started = time.perf_counter()
    again = sweeps.sweep(full=True, processes=FULL_SWEEP_PROCESSES)
    rows.append(
        (
            "deadlines",
            f"full sweep again (the nightly safety net), {cases:,} cases",
            f"{time.perf_counter() - started:.1f} s ({again['warnings']:,} warnings, "
            f"{again['breaches']:,} breaches recorded)",
        )
    )
    # Let the notify job deliver what the sweep recorded, then measure its latency.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and outbox.counts(ct.db)["pending"] > 0:
        time.sleep(1)
    stop.set()
    notifier.join()
    notify(ct, hook)
    latencies = delivery_latencies(ct)
    rows.append(
        (
            "deadlines",
            "breach/warning → webhook delivered (notify every "
            f"{notify_interval()} s, beside the sweep)",
            f"{len(latencies):,} deliveries; p50 {percentile(latencies, 50):.1f} s, "
            f"p99 {percentile(latencies, 99):.1f} s (target p99 ≤ 60 s)",
        )
    )
    # Incremental: nothing changed; then 100 new cases (after a first incremental sweep,
    # which sets the read models' tables up once in a worker process).
    engine_for(ct).catch_up(["inbox"])
    sweeps.sweep()
    started = time.perf_counter()
    idle = sweeps.sweep()
    idle_seconds = time.perf_counter() - started
    rows.append(
        (
            "deadlines",
            "incremental sweep, nothing changed",
            f"{idle_seconds * 1000:.0f} ms ({idle['cases']} cases swept)",
        )
    )
    clock.set(today - timedelta(days=1))
    load(loader, clock, 100, first=cases)
    engine_for(ct).catch_up(["inbox"])
    started = time.perf_counter()
    changed = sweeps.sweep()
    changed_seconds = time.perf_counter() - started
    rows.append(
        (
            "deadlines",
            "incremental sweep, 100 cases changed",
            f"{changed_seconds * 1000:.0f} ms ({changed['cases']} cases swept; target ≤ 1 s)",
        )
    )
    _, super_token = ct.directory.create_user("bench supervisor", "supervisor", "320000")
    port = append.free_port()
    with append.gunicorn(settings, port, settings.data_dir / "gunicorn.log") as server:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {super_token}"}

        def call() -> None:
            response = session.get(f"{server.base}/api/v1/inbox", headers=headers, timeout=30)
            response.raise_for_status()

        rate: Rate = time_calls(call, int(args.query_repeat))
    p95 = percentile(rate.latencies, 95) * 1000
    rows.append(
        (
            "deadlines",
            "GET /inbox over HTTP (province supervisor, page 1)",
            f"p50 {rate.p50_ms:.1f} ms, p95 {p95:.1f} ms, p99 {rate.p99_ms:.1f} ms "
            "(target p95 ≤ 50 ms)",
        )
    )
    receiving.close()
    ct.close()
    loader.close()
    return rows


def delivery_latencies(ct: Any) -> list[float]:
    """Seconds from each record's detection to its delivery."""
    found = ct.db.query(
        f"SELECT detected_at, delivered_at FROM {outbox.OUTBOX_TABLE} WHERE status = ?",
        (outbox.DELIVERED,),
    )
    return sorted(
        float(row["delivered_at"]) - datetime.fromisoformat(str(row["detected_at"])).timestamp()
        for row in found
    )
