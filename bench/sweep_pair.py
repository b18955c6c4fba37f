"""Two full deadline sweeps of the same bulk-loaded store, nothing else running beside them
(issue 16): the first records every warning and breach the store has never had, the second
is the nightly safety net (every case read again, nothing new to record).

    .venv/bin/python -m bench.sweep_pair --cases 100000

`bench.run --only deadlines` measures the first beside the notify job and a webhook
receiver, as the cron runs them; this one measures the sweeps alone.
"""

from __future__ import annotations

import argparse
import time

from bench.deadlines import bulk_load
from bench.stores import fresh_settings
from casetrail.bootstrap import bootstrap
from workers.deadlines import FULL_SWEEP_PROCESSES
from workers.incremental import IncrementalSweeps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=FULL_SWEEP_PROCESSES)
    args = parser.parse_args(argv)
    with fresh_settings(args.backend, "sweep-pair") as settings:
        loader, _, _, events = bulk_load(settings, args.cases)
        loader.close()
        print(f"{args.backend}: {args.cases:,} disputes, {events:,} events", flush=True)
        ct = bootstrap(settings)
        try:
            for label in ("first full sweep", "full sweep again (nightly)"):
                started = time.perf_counter()
                report = IncrementalSweeps(ct).sweep(full=True, processes=args.processes)
                print(
                    f"{label}: {time.perf_counter() - started:.1f} s, {args.processes} "
                    f"processes; {report['warnings']:,} warnings, {report['breaches']:,} "
                    "breaches recorded",
                    flush=True,
                )
        finally:
            ct.close()


if __name__ == "__main__":
    main()
