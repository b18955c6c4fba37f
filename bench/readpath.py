"""The read path of a kept bulk-loaded store, measured again and again without reloading it
(a 220,000-case store takes 12-14 minutes to load and 6 more for its first catch-up on a
loaded 2-core machine):

    .venv/bin/python -m bench.readpath build sqlite --dir /var/tmp/readpath-sqlite
    .venv/bin/python -m bench.readpath queries sqlite --dir /var/tmp/readpath-sqlite
    .venv/bin/python -m bench.readpath rebuild sqlite --dir /var/tmp/readpath-sqlite --processes 2

`postgres` keeps the store in `--schema` of BENCH_DATABASE_URL. `queries` times
bench.readmodels.query_calls (the in-process rows of bench.run); `rebuild` times
`rebuild_many` with the CPU seconds of this process and its children. For an A/B, run the
same command with another checkout first on PYTHONPATH (spawned children inherit it).
Remove the store yourself (the directory; `DROP SCHEMA ... CASCADE`).
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from bench import readmodels
from bench.projections import load, units
from bench.stores import POSTGRES_URL, REDIS_URL
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock
from projections import engine_for


def kept_settings(backend: str, directory: Path, schema: str) -> Settings:
    common = {"redis_url": REDIS_URL, "queue_name": f"bench-readpath-{schema}"}
    if backend == "sqlite":
        return Settings(data_dir=directory / "var", **common)  # type: ignore[arg-type]
    return Settings(
        data_dir=directory / "var",
        database_url=POSTGRES_URL,
        database_schema=schema,
        **common,  # type: ignore[arg-type]
    )


def build(backend: str, settings: Settings, cases: int) -> None:
    if backend == "postgres":
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {settings.database_schema}")
    clock = FixedClock(datetime(2018, 1, 2, 1, 0, tzinfo=UTC))
    ct = bootstrap(settings, clock=clock)
    try:
        ct.directory.load_units(units())
        started = time.perf_counter()
        events = load(ct, clock, cases)  # type: ignore[arg-type]
        print(
            f"{backend}: {cases:,} cases, {events:,} events in {time.perf_counter() - started:.0f} s"
        )
        first = readmodels.catch_up(ct)
        print(f"{backend}: first catch-up of {first.count:,} events in {first.seconds:.1f} s")
    finally:
        ct.close()


def queries(backend: str, settings: Settings, repeat: int) -> None:
    with closing(bootstrap(settings)) as ct:
        county = readmodels.busiest_county(ct)
        for name, call in readmodels.query_calls(ct, county).items():
            rate = readmodels.time_calls(call, repeat)
            print(f"{backend}: {name}: p50 {rate.p50_ms:.2f} ms, p99 {rate.p99_ms:.2f} ms")


def rebuild(backend: str, settings: Settings, processes: int) -> None:
    with closing(bootstrap(settings)) as ct:
        engine = engine_for(ct)
        head = engine.head()
        before = os.times()
        started = time.perf_counter()
        engine.rebuild_many(processes=processes)
        seconds = time.perf_counter() - started
        after = os.times()
        cpu = sum(after[i] - before[i] for i in range(4))  # user, system, children's
        print(
            f"{backend}: rebuild_many(processes={processes}): {head:,} events in "
            f"{seconds:.1f} s = {head / seconds:,.0f} events/s; CPU {cpu:.1f} s "
            f"(this process and its children); load average {os.getloadavg()[0]:.1f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.readpath", description=__doc__)
    parser.add_argument("what", choices=("build", "queries", "rebuild"))
    parser.add_argument("backend", choices=("sqlite", "postgres"))
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/bench-readpath"))
    parser.add_argument("--schema", default="bench_readpath")
    parser.add_argument("--cases", type=int, default=220_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    settings = kept_settings(args.backend, args.dir, args.schema)
    if args.what == "build":
        build(args.backend, settings, args.cases)
    elif args.what == "queries":
        queries(args.backend, settings, args.repeat)
    else:
        rebuild(args.backend, settings, args.processes)


if __name__ == "__main__":
    main()
