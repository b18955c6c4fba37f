"""Audit verification throughput next to the raw read rate of the same events.

    .venv/bin/python -m bench.verify [--backend sqlite|postgres] [--cases 20000] [--cipher]

Loads `--cases` disputes (4–6 events each, with their hash-chain links) through the domain
and the event store, signs a checkpoint, then prints, in one run: the raw read of the
notification log (rows only, and decoded), the audit reader's read of the same event rows
and their chain rows, and a full `casetrail audit verify` (every chain recomputed, every
event decoded and compared with its link, the Merkle tree against the signed checkpoint).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from bench.projections import line, load, units
from bench.readmodels import raw_log_read
from bench.stats import Rate
from bench.stores import fresh_settings
from casetrail.audit import records
from casetrail.bootstrap import bootstrap
from domain.clock import FixedClock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--cipher", action="store_true", help="encrypt event data at rest")
    args = parser.parse_args(argv)
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
            trail = ct.audit
            trail.write_checkpoint()
            cipher = ", encrypted" if args.cipher else ""
            print(
                f"{args.backend}{cipher}: {args.cases} cases, {events} events loaded and "
                f"checkpointed in {time.perf_counter() - started:.1f} s"
            )
            print("reading the same events:")
            print(line("raw notification log, batches of 500", raw_log_read(ct)))
            print(line("raw notification log + decode every event", raw_log_read(ct, decode=True)))
            started = time.perf_counter()
            rows = records.read_events(ct.db, trail.events_table)
            records.read_links(ct.db)
            print(
                line(
                    "audit reader: event rows + chain rows",
                    Rate(len(rows), time.perf_counter() - started),
                )
            )
            print("verifying them:")
            started = time.perf_counter()
            report = trail.verify()
            rate = Rate(report.checked_events, time.perf_counter() - started)
            print(line("audit verify, whole store", rate))
            verdict = "verified" if report.ok else f"{len(report.problems)} problems"
            print(
                f"  ({verdict}; checkpoint of {report.checkpoint.size if report.checkpoint else 0} events)"
            )
        finally:
            ct.close()


if __name__ == "__main__":
    main()
