"""Audit verification throughput and peak memory, next to the raw read rate of the same
events, and the time of one case's verification.

    .venv/bin/python -m bench.verify [--backend sqlite|postgres] [--cases 20000] [--cipher]
        [--processes 1 2] [--before /work/main] [--case-samples 50]
        [--keep DIR | --store DIR]

Loads `--cases` disputes (4–6 events each, with their hash-chain links) through the domain
and the event store, signs a checkpoint (which keeps the log's Merkle tree), then prints
the raw read of the notification log (rows only, and decoded), and a full `casetrail
audit verify` (every chain recomputed, every event decoded and compared with its link,
the Merkle tree against the signed checkpoint) run as its own process, once per
`--processes` value: events/s and the peak resident memory of the verifying processes
(the largest one). `--before DIR` runs the same verify with the code of another checkout
(e.g. the one before the streaming verifier) on the same store. Then `--case-samples`
random cases are each verified alone (`AuditTrail.verify(case)`: the case's rows and an
inclusion proof of each event in the latest checkpoint), p50/p95, in this process after
one warm-up, and once through the CLI in a fresh process (start-up included).

`--keep DIR` loads into DIR (SQLite, a new or empty directory) and leaves it there;
`--store DIR` measures an existing one without loading. A 10,000,000-event store (9,990,000
events; about 11.5 GiB; the load took 171 s a million events on a busy two-core machine):

    .venv/bin/python -m bench.verify --cases 2220000 --keep /var/tmp/verify-10m --no-raw \\
        --processes 1 2 --case-samples 50
    .venv/bin/python -m bench.verify --store /var/tmp/verify-10m --processes 1 2
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.projections import line, load, units
from bench.readmodels import raw_log_read
from bench.stats import Rate, percentile
from bench.stores import fresh_settings, settings_env
from casetrail.audit import stream
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock

# The verifying process: the CLI of this checkout or of `--before`, its peak RSS after.
VERIFY = """
import resource, sys, time
from click.testing import CliRunner
from cli.main import main
started = time.perf_counter()
result = CliRunner().invoke(main, ["audit", "verify", *sys.argv[1:]])
took = time.perf_counter() - started
# The verifying process's own peak (VmHWM: ru_maxrss would count the bench's memory
# before exec), and the largest of its range processes (with --processes).
own = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(result.exit_code, took, max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
"""


CLI = "from cli.main import main; main()"


def verify_in_process(env: dict[str, str], code: Path, processes: int) -> tuple[int, float, int]:
    """(exit status, seconds, peak KiB) of `casetrail audit verify` in a fresh process."""
    args = ["--processes", str(processes)]
    done = subprocess.run(
        [sys.executable, "-c", VERIFY, *args],  # the CLI, as an operator runs it
        env={**os.environ, **env, "PYTHONPATH": str(code)},
        cwd=code,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    status, took, kib = done.stdout.split()[-3:]
    return int(status), float(took), int(kib)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--cipher", action="store_true", help="encrypt event data at rest")
    parser.add_argument(
        "--without-person-keys",
        action="store_true",
        help="load events unsealed, as a store from before per-person keys (issue 20: verify's "
        "throughput with and without them)",
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--before", type=Path, help="a checkout whose verify to compare")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw log reads")
    parser.add_argument("--store", type=Path, help="verify this data directory (SQLite), no load")
    parser.add_argument("--keep", type=Path, help="load into this new data directory (SQLite)")
    parser.add_argument("--case-samples", type=int, default=50, help="cases verified alone")
    args = parser.parse_args(argv)
    if args.store is not None:
        env = {"CASETRAIL_DATA_DIR": str(args.store.resolve())}
        ct = bootstrap(Settings(data_dir=args.store.resolve()))
        try:
            total = stream.count_events(ct.db, ct.audit.events_table)
        finally:
            ct.close()
        run_verifies(args, env, total)
        one_case(args, env, Settings(data_dir=args.store.resolve()))
        return
    with _settings(args) as settings:
        if args.cipher:
            from eventsourcing.cryptography import AESCipher

            settings = settings.with_(cipher_key=AESCipher.create_key(num_bytes=32))
        clock = FixedClock(datetime(2025, 1, 2, 1, 0, tzinfo=UTC))
        ct = bootstrap(settings, clock=clock)
        if args.without_person_keys:
            ct.app.mapper.keys = None  # type: ignore[attr-defined]
        try:
            ct.directory.load_units(units())
            started = time.perf_counter()
            events = load(ct, clock, args.cases)
            loaded = time.perf_counter()
            ct.audit.write_checkpoint()
            cipher = ", encrypted" if args.cipher else ""
            cipher += ", without per-person keys" if args.without_person_keys else ""
            print(
                f"{args.backend}{cipher}: {args.cases} cases, {events} events loaded in "
                f"{loaded - started:.1f} s, checkpointed (the Merkle tree kept) in "
                f"{time.perf_counter() - loaded:.1f} s; {_disk(settings)}"
            )
            if not args.no_raw:
                print("reading the same events:")
                print(line("raw notification log, batches of 500", raw_log_read(ct)))
                print(line("raw notification log + decode", raw_log_read(ct, decode=True)))
            count = ct.db.query_one(f"SELECT COUNT(*) AS n FROM {ct.audit.events_table}")
        finally:
            ct.close()
        total = int(count["n"]) if count else events
        env = settings_env(settings)
        if args.cipher:
            env["CASETRAIL_CIPHER_KEY"] = str(settings.cipher_key)
        run_verifies(args, env, total)
        one_case(args, env, settings)


@contextmanager
def _settings(args: argparse.Namespace) -> Iterator[Settings]:
    """A fresh store removed afterwards, or with `--keep` one left in that directory."""
    if args.keep is None:
        with fresh_settings(args.backend, "verify") as settings:
            yield settings
        return
    if args.backend != "sqlite" or (args.keep.exists() and any(args.keep.iterdir())):
        raise SystemExit("--keep takes a new or empty directory, and SQLite only")
    yield Settings(data_dir=args.keep.resolve())


def _disk(settings: Settings) -> str:
    if settings.database_url:
        return "on PostgreSQL"
    size = sum(path.stat().st_size for path in settings.data_dir.glob("casetrail.sqlite*"))
    return f"{size / 2**30:.2f} GiB on disk"


def one_case(args: argparse.Namespace, env: dict[str, str], settings: Settings) -> None:
    """`--case-samples` random cases each verified alone: p50/p95 in this process, and
    one through the CLI in its own process."""
    if args.case_samples <= 0:
        return
    ct = bootstrap(settings)
    try:
        cases = _random_cases(ct, args.case_samples)
        ct.audit.verify(cases[0])  # the connection and the statements, once
        took, failed = [], 0
        for case in cases:
            started = time.perf_counter()
            report = ct.audit.verify(case)
            took.append(time.perf_counter() - started)
            failed += not report.ok
    finally:
        ct.close()
    p50, p95 = percentile(took, 50) * 1000, percentile(took, 95) * 1000
    print(
        f"one case verified alone ({len(cases)} random cases, in process): p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(took) * 1000:.1f} ms; "
        + ("all verified" if not failed else f"{failed} NOT verified")
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, "audit", "verify", "--case", cases[-1]],
        env={**os.environ, **env, "PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        check=False,
    )
    print(
        f"  the CLI, `casetrail audit verify --case ID`, a fresh process: "
        f"{time.perf_counter() - started:.2f} s (exit {done.returncode})"
    )


def _random_cases(ct: Casetrail, count: int) -> list[str]:
    """Case ids of events at random positions of the log (cases of every age)."""
    top = ct.db.query_one("SELECT MAX(position) AS p FROM case_event_chain")
    high = int(top["p"]) if top and top["p"] is not None else 0
    rng, cases = random.Random(19), set[str]()
    while len(cases) < count and high:
        row = ct.db.query_one(
            "SELECT case_id FROM case_event_chain WHERE position >= ? ORDER BY position LIMIT 1",
            (rng.randint(1, high),),
        )
        if row is not None:
            cases.add(str(row["case_id"]))
    return sorted(cases)


def run_verifies(args: argparse.Namespace, env: dict[str, str], total: int) -> None:
    print(f"verifying them ({total} events in the log), each run its own process:")
    runs = [(f"audit verify, {n} process(es)", Path.cwd(), n) for n in args.processes]
    if args.before is not None:
        runs.append((f"audit verify, {args.before}", args.before, 1))
    for label, code, processes in runs:
        status, took, kib = verify_in_process(env, code.resolve(), processes)
        verdict = "verified" if status == 0 else f"exit {status}"
        print(line(label, Rate(total, took)) + f"; peak {kib / 1024:.0f} MiB ({verdict})")


if __name__ == "__main__":
    main()
