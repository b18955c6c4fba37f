"""One command for every benchmark, on SQLite and on PostgreSQL:

    .venv/bin/python -m bench.run [--backend sqlite|postgres|both] [--events N] ...

Prints a table and writes BENCHMARKS.md with the machine, the date and the command. Each
backend gets a fresh store: a SQLite file on the disk, or a new PostgreSQL schema.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import append, deadlines, machine, readmodels, replay, system
from bench.projections import load, units
from bench.stats import Rate
from bench.stores import POSTGRES_URL, clear_queue, fresh_settings
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from demo.generator import DemoSize, demo_clock, load_demo
from domain.clock import FixedClock

# Events the demo writes at scale 1.0 (measured: 46,621 events at scale 0.01).
EVENTS_PER_SCALE = 4_662_100

Row = tuple[str, str, str]  # section, measure, value


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rate_cells(rate: Rate, unit: str = "events/s", latency: bool = True) -> str:
    text = f"{rate.per_second:,.0f} {unit}"
    if latency and rate.latencies:
        text += f"; p50 {rate.p50_ms:.1f} ms, p99 {rate.p99_ms:.1f} ms"
    cpu = rate.cpu_ms_per_event
    if cpu is not None:
        text += f"; {cpu:.2f} CPU ms/event"
    return text


def latency_cells(rate: Rate) -> str:
    return f"p50 {rate.p50_ms:.1f} ms, p99 {rate.p99_ms:.1f} ms"


def run_backend(backend: str, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    label = append.new_label()
    with fresh_settings(backend, label) as settings:
        try:
            if args.only == "deadlines":
                return deadlines.measure(backend, settings, args)
            rows = measure(backend, settings, args)
        finally:
            clear_queue(settings)
    return rows


def measure(backend: str, settings: Settings, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    # `--only append`: the store and its first catch-up, then the append benchmarks alone.
    append_only = args.only == "append"
    scale = args.events / EVENTS_PER_SCALE
    size = DemoSize.at_scale(scale)
    # 1. The store: optional bulk disputes first (older history, written through the domain
    # and the event store in chunks by bench/projections.py's loader, for size), then the
    # demo province, written event by event through CaseService.
    if args.bulk_cases:
        ct = bootstrap(settings, clock=FixedClock(datetime(2018, 1, 2, 1, 0, tzinfo=UTC)))
        ct.directory.load_units(units())
        log(f"{backend}: bulk-loading {args.bulk_cases:,} disputes")
        started = time.perf_counter()
        bulk = load(ct, ct.clock, args.bulk_cases)  # type: ignore[arg-type]
        rows.append(
            (
                "store",
                "bulk disputes (domain + event store, 500 cases a transaction)",
                f"{args.bulk_cases:,} cases, {bulk:,} events in {time.perf_counter() - started:.0f} s",
            )
        )
        ct.close()
    ct = bootstrap(settings, clock=demo_clock())
    log(f"{backend}: loading the demo province at scale {scale:.5f}")
    demo = load_demo(ct, size, seed=args.seed)
    rows.append(
        (
            "store",
            "demo province loaded through CaseService",
            f"{demo.cases:,} cases, {demo.events:,} events in {demo.seconds:.0f} s "
            f"({demo.events_per_second:,.0f} events/s incl. {demo.users} users)",
        )
    )
    log(f"{backend}: first catch-up of the read models")
    first = readmodels.catch_up(ct)
    rows.append(
        ("projection", "first catch-up after the demo (all read models)", rate_cells(first))
    )
    ct.close()

    # From here on the clock is the system's, as in production.
    ct = bootstrap(settings)
    cases = args.append_cases
    _, worker_token = ct.directory.create_user("bench caseworker", "caseworker", "320102")
    _, super_token = ct.directory.create_user("bench supervisor", "supervisor", "320000")
    county = readmodels.busiest_county(ct)
    http_queries: dict[str, Rate] = {}
    http_failures: dict[str, str] = {}
    port = append.free_port()
    client_counts = sorted({1, args.clients})
    # The runs alternate, round after round, so that whatever else loads the machine
    # weighs on each of them alike.
    rounds = max(1, args.rounds)
    share = [cases // rounds + (1 if i < cases % rounds else 0) for i in range(rounds)]
    baseline = service = Rate(0, 0.0, [], 0.0)
    http = {clients: Rate(0, 0.0, [], 0.0) for clients in client_counts}
    with (
        append.gunicorn(settings, port, settings.data_dir / "gunicorn.log") as server,
        append.baseline_application(settings) as bare,
    ):
        for number, n in enumerate(share, 1):
            log(f"{backend}: append round {number}/{rounds}: {n * 10} events each")
            baseline += append.baseline_appends(bare, n)
            service += append.service_appends(ct, n)
            for clients in client_counts:
                http[clients] += append.http_appends(server, worker_token, n, clients)
        if not append_only:
            log(f"{backend}: HTTP queries")
            readmodels.catch_up(ct)
            for name, call in readmodels.http_query_calls(server.base, super_token, county).items():
                try:
                    http_queries[name] = readmodels.time_calls(call, args.query_repeat)
                except RuntimeError as error:  # a refused or failed query is a finding too
                    log(f"{backend}: {name}: {error}")
                    http_failures[name] = str(error)[:120]
    shutil.copy(settings.data_dir / "gunicorn.log", f"/tmp/bench-gunicorn-{backend}.log")
    rows.append(
        ("append", "bare eventsourcing.Application (baseline), 1 client", rate_cells(baseline))
    )
    rows.append(("append", "CaseService in-process, 1 client", rate_cells(service)))
    for clients, rate in http.items():
        rows.append(("append", f"HTTP API (gunicorn), {clients} client(s)", rate_cells(rate)))
    best = http[max(http)]
    rows.append(
        (
            "append",
            f"ratio HTTP ({max(http)} clients) ÷ baseline",
            f"{best.per_second / baseline.per_second:.2f} (target ≥ 0.50)",
        )
    )
    rows.append(
        (
            "append",
            "ratio CaseService ÷ baseline",
            f"{service.per_second / baseline.per_second:.2f}",
        )
    )

    if append_only:
        ct.close()
        return rows

    # 2. Read models.
    log(f"{backend}: steady catch-up")
    # The appends above (service + HTTP) are the backlog; the HTTP queries caught up part.
    append.service_appends(ct, cases)
    steady = readmodels.catch_up(ct)
    rows.append(
        (
            "projection",
            f"steady catch-up of {steady.count:,} new events (all read models)",
            rate_cells(steady),
        )
    )
    rows.append(
        ("projection", "raw notification-log read", rate_cells(readmodels.raw_log_read(ct)))
    )
    rows.append(
        (
            "projection",
            "notification-log read + decode to domain events",
            rate_cells(readmodels.raw_log_read(ct, decode=True)),
        )
    )
    log(f"{backend}: rebuilds")
    for name, rate in readmodels.rebuild_all(ct).items():
        rows.append(
            ("projection", f"full rebuild: {name}", f"{rate_cells(rate)} ({rate.seconds:.1f} s)")
        )
    head = ct.reads.head_position()
    log(f"{backend}: queries")
    for name, call in readmodels.query_calls(ct, county).items():
        rate = readmodels.time_calls(call, args.query_repeat)
        rows.append(("query", f"{name} (in-process)", latency_cells(rate)))
    for name, rate in http_queries.items():
        rows.append(("query", name, latency_cells(rate)))
    for name, failure in http_failures.items():
        rows.append(("query", name, f"failed: {failure}"))
    rows.append(("query", "store size for the queries", f"{head:,} events; county {county}"))

    # 3. Replay.
    sizes = [int(s) for s in args.replay_sizes.split(",")]
    loads: dict[int, Rate] = {}
    for events in sizes:
        log(f"{backend}: replay case with {events} events")
        case_id = replay.case_with(ct, events)
        loads[events] = replay.load_times(ct, case_id, args.replay_repeat)
        rows.append(
            (
                "replay",
                f"load a case with {events:,} events (repository; snapshot every 50)",
                latency_cells(loads[events]),
            )
        )
        state = replay.state_times(ct, case_id, args.replay_repeat)
        rows.append(
            (
                "replay",
                f"audit read of its state, {events:,} events (the read is recorded)",
                latency_cells(state),
            )
        )
    if len(sizes) > 1:
        ratio = loads[sizes[-1]].p50_ms / loads[sizes[0]].p50_ms
        rows.append(
            (
                "replay",
                f"p50 ratio {sizes[-1]:,} ÷ {sizes[0]:,} events",
                f"{ratio:.2f} (target ≤ 2)",
            )
        )

    # 4. Verification.
    log(f"{backend}: audit verify")
    rows.append(("verify", "audit verify, whole store", verify_rate(ct)))
    ct.close()
    return rows


def verify_rate(ct: Any) -> str:
    trail = ct.audit
    trail.write_checkpoint()  # so that verify also checks the Merkle tree against it
    started = time.perf_counter()
    report = trail.verify()
    seconds = time.perf_counter() - started
    verdict = "ok" if report.ok else f"{len(report.problems)} problems"
    return (
        f"{report.checked_events / seconds:,.0f} events/s "
        f"({report.checked_events:,} events in {seconds:.1f} s, {verdict})"
    )


def render(results: dict[str, list[Row]], info: dict[str, str], command: str, args: Any) -> str:
    backends = list(results)
    keys: list[tuple[str, str]] = []
    values: dict[tuple[str, str], dict[str, str]] = {}
    for backend, rows in results.items():
        for section, measure_, value in rows:
            key = (section, measure_)
            if key not in values:
                keys.append(key)
                values[key] = {}
            values[key][backend] = value
    lines = [
        "# Benchmarks",
        "",
        f"Measured {info['date']} on {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, "
        f"Linux {info['kernel']}, Python {info['python']}, SQLite {info['sqlite']}"
        + (f", PostgreSQL {info['postgres']}" if "postgres" in info else "")
        + f". Load average at the start: {info['load']} (other work shared the machine).",
        "",
        "Command:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Sizes: {args.bulk_cases:,} bulk-loaded disputes plus a demo province of about "
        f"{args.events:,} events (seed {args.seed}); "
        f"append benchmarks {args.append_cases} ten-event dispute cases each "
        f"({args.append_cases * 10:,} events) in {args.rounds} alternating rounds; HTTP with 1 "
        f"and {args.clients} concurrent "
        f"client processes on 127.0.0.1 against gunicorn (`web/gunicorn_conf.py` defaults); "
        f"queries {args.query_repeat} calls each; replay {args.replay_repeat} loads per size. "
        "SQLite runs in WAL mode with synchronous=FULL on the disk, PostgreSQL with "
        "synchronous_commit=on; every append commits on its own. CPU ms/event counts the "
        "Python processes that serve the appends (the bench process, or gunicorn's master and "
        "workers), not the clients nor the database server.",
        "",
        "| section | measure | " + " | ".join(backends) + " |",
        "| --- | --- | " + " | ".join("---" for _ in backends) + " |",
    ]
    for key in keys:
        cells = [values[key].get(b, "") for b in backends]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=20_000, help="demo province size, events")
    parser.add_argument(
        "--bulk-cases",
        type=int,
        default=0,
        help="extra disputes bulk-loaded for size (~5 events each)",
    )
    parser.add_argument(
        "--append-cases", type=int, default=200, help="ten-event cases per append run"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--rounds", type=int, default=3, help="alternating append rounds")
    parser.add_argument("--query-repeat", type=int, default=200)
    parser.add_argument(
        "--deadline-cases", type=int, default=20_000, help="open disputes for --only deadlines"
    )
    parser.add_argument("--replay-sizes", default="10,1000,10000")
    parser.add_argument("--replay-repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument(
        "--only",
        choices=("append", "system", "deadlines"),
        help="run only this section (`append`, `deadlines`: after loading the store; `system`: "
        "`casetrail up` on a fresh data directory, bench/system.py); nothing else is measured",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=300,
        help="with --only system: seconds of load for each measure",
    )
    args = parser.parse_args(argv)
    command = ".venv/bin/python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv)
    info = machine.describe()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in backends:
        info["postgres"] = machine.postgres_version(POSTGRES_URL)
    results: dict[str, list[Row]] = {}
    if args.only == "system":  # SQLite on the disk, as `casetrail up` runs by default
        backends = []
        with tempfile.TemporaryDirectory(prefix="casetrail-system-", dir="/var/tmp") as root:
            results["sqlite"] = system.measure(Path(root) / "var", args.clients, args.seconds)
    for backend in backends:
        started = time.perf_counter()
        results[backend] = run_backend(backend, args)
        log(f"{backend}: done in {time.perf_counter() - started:.0f} s")
    text = render(results, info, command.strip(), args)
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        log(f"wrote {args.out}")


Callback = Callable[[int], None]

if __name__ == "__main__":
    main()
