"""Audit verification throughput and peak memory, next to the raw read rate of the same
events.

    .venv/bin/python -m bench.verify [--backend sqlite|postgres] [--cases 20000] [--cipher]
        [--processes 1 2] [--before /work/main]

Loads `--cases` disputes (4–6 events each, with their hash-chain links) through the domain
and the event store, signs a checkpoint, then prints the raw read of the notification log
(rows only, and decoded), and a full `casetrail audit verify` (every chain recomputed,
every event decoded and compared with its link, the Merkle tree against the signed
checkpoint) run as its own process, once per `--processes` value: events/s and the peak
resident memory of the verifying processes (the largest one). `--before DIR` runs the
same verify with the code of another checkout (e.g. the one before the streaming
verifier) on the same store.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.projections import line, load, units
from bench.readmodels import raw_log_read
from bench.stats import Rate
from bench.stores import fresh_settings, settings_env
from casetrail.audit import stream
from casetrail.bootstrap import bootstrap
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


def verify_in_process(env: dict[str, str], code: Path, processes: int) -> tuple[int, float, int]:
    """(exit status, seconds, peak KiB) of `casetrail audit verify` in a fresh process."""
    args = ["--processes", str(processes)] if processes > 1 else []
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
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--before", type=Path, help="a checkout whose verify to compare")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw log reads")
    parser.add_argument("--store", type=Path, help="verify this data directory (SQLite), no load")
    args = parser.parse_args(argv)
    if args.store is not None:
        env = {"CASETRAIL_DATA_DIR": str(args.store.resolve())}
        ct = bootstrap(Settings(data_dir=args.store.resolve()))
        try:
            total = stream.count_events(ct.db, ct.audit.events_table)
        finally:
            ct.close()
        run_verifies(args, env, total)
        return
    with fresh_settings(args.backend, "verify") as settings:
        if args.cipher:
            from eventsourcing.cryptography import AESCipher

            settings = settings.with_(cipher_key=AESCipher.create_key(num_bytes=32))
        clock = FixedClock(datetime(2025, 1, 2, 1, 0, tzinfo=UTC))
        ct = bootstrap(settings, clock=clock)
        try:
            ct.directory.load_units(units())
            started = time.perf_counter()
            events = load(ct, clock, args.cases)
            ct.audit.write_checkpoint()
            cipher = ", encrypted" if args.cipher else ""
            print(
                f"{args.backend}{cipher}: {args.cases} cases, {events} events loaded and "
                f"checkpointed in {time.perf_counter() - started:.1f} s"
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
