"""The supervisors' read path: `GET /cases?per_page=20` at keep-alive clients, with the
read-access records as the service makes them and without them, side by side.

    .venv/bin/python -m bench.read_path [--backend postgres] [--cases 2000] [--clients 8]
        [--requests 200] [--rounds 3]

Three web processes (gunicorn, `web/gunicorn_conf.py`) over one fresh store, measured in
turn, round after round (the order reversed every other round, as bench/ab.py):

- `recorded`: the service as it runs (a record per request, repeated reads of a case by
  the same reader within `CASETRAIL_ACCESS_COALESCE_SECONDS`, 60 s, covered by the first);
- `every read`: the window 0, a record for every request;
- `unrecorded`: the same read with nothing recorded, served by `unrecorded_app()` below
  (this benchmark's own app factory; the service has no switch to turn recording off).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from flask import Flask

from bench import append, readmodels
from bench.projections import load, units
from bench.stats import Rate
from bench.stores import clear_queue, fresh_settings
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock
from web.app import create_app

PATH = "/api/v1/cases?per_page=20"


def unrecorded_app() -> Flask:
    """The web app with the read-access log's `record` a no-op: for this benchmark's
    comparison only, never to be served."""
    ct = bootstrap(Settings.from_env())
    ct.audit.access.record = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return create_app(ct)


def _reader(base: str, token: str, count: int, ready: Any, start: Any, results: Any) -> None:
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    conn.connect()
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors: list[str] = []
    ready.put(os.getpid())
    start.wait()
    for _ in range(count):
        t0 = time.perf_counter()
        conn.request("GET", PATH, headers=headers)
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - t0)
        if response.status != 200:
            errors.append(f"{response.status} {body[:200]!r}")
    results.put((latencies, errors))


def http_reads(server: append.Server, token: str, count: int, clients: int) -> tuple[Rate, int]:
    """`clients` keep-alive clients, `count` requests each; the rate and the errors."""
    context = multiprocessing.get_context("spawn")
    start, ready, results = context.Event(), context.Queue(), context.Queue()
    processes = [
        context.Process(target=_reader, args=(server.base, token, count, ready, start, results))
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    time.sleep(0.2)
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    start.set()
    latencies: list[float] = []
    errors = 0
    for _ in processes:
        got, failed = results.get()
        latencies.extend(got)
        errors += len(failed)
    seconds = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu
    for process in processes:
        process.join()
    return Rate(len(latencies), seconds, latencies, cpu), errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.read_path", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--cases", type=int, default=2000, help="bulk disputes in the store")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        settings = stack.enter_context(fresh_settings(args.backend, "readpath"))
        stack.callback(clear_queue, settings)
        ct = bootstrap(settings, clock=FixedClock(datetime(2018, 1, 2, 1, 0, tzinfo=UTC)))
        ct.directory.load_units(units())
        events = load(ct, ct.clock, args.cases)  # type: ignore[arg-type]
        ct.close()
        ct = bootstrap(settings)
        readmodels.catch_up(ct)
        _, token = ct.directory.create_user("bench supervisor", "supervisor", "320000")
        head = ct.reads.head_position()
        ct.close()
        targets = {
            "recorded": ("web.app:create_app()", {}),
            "every read": ("web.app:create_app()", {"CASETRAIL_ACCESS_COALESCE_SECONDS": "0"}),
            "unrecorded": ("bench.read_path:unrecorded_app()", {}),
        }
        servers = {}
        for name, (app, env) in targets.items():
            log = settings.data_dir / f"gunicorn-{name.replace(' ', '-')}.log"
            servers[name] = stack.enter_context(
                append.gunicorn(settings, append.free_port(), log, extra_env=env, app=app)
            )
            http_reads(servers[name], token, 10, args.clients)  # warm
        rates = {name: Rate(0, 0.0, [], 0.0) for name in targets}
        errors = dict.fromkeys(targets, 0)
        names = list(targets)
        for number in range(args.rounds):
            for name in names if number % 2 == 0 else names[::-1]:
                rate, failed = http_reads(servers[name], token, args.requests, args.clients)
                rates[name] += rate
                errors[name] += failed
        ct = bootstrap(settings)
        appended = ct.reads.head_position() - head
        ct.close()
    print(
        f"{args.backend}, {args.cases:,} cases ({events:,} events), {args.clients} keep-alive "
        f"clients, GET {PATH}, {args.rounds} rounds of {args.requests} requests a client"
    )
    for name in names:
        rate = rates[name]
        print(
            f"{name:>11}: {rate.per_second:,.0f} requests/s; p50 {rate.p50_ms:.1f} ms, "
            f"p99 {rate.p99_ms:.1f} ms; {errors[name]} errors; "
            f"{1000 * (rate.cpu_seconds or 0) / max(1, rate.count):.2f} server CPU ms/request"
        )
    print(f"access records appended by all the runs: {appended:,}")


if __name__ == "__main__":
    main()
