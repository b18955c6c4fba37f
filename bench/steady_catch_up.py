"""The projection engine's steady catch-up in process: CPU an event when the read models
follow the log a few dozen events at a time, as the worker does behind live appends (a bulk
catch-up or rebuild is measured by bench.run).

    .venv/bin/python -m bench.steady_catch_up [--backend postgres] [--rounds 60] [--cases 10]

A fresh store with 200 bulk-loaded disputes, caught up; then `--rounds` times: `--cases` more
disputes (about 4.5 events each) and one `catch_up()`, whose CPU time alone is counted.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from bench.projections import load, units
from bench.stores import fresh_settings
from casetrail.bootstrap import bootstrap
from domain.clock import FixedClock
from projections import engine_for


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steady_catch_up", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--cases", type=int, default=10, help="disputes added before each catch-up")
    args = parser.parse_args(argv)
    with fresh_settings(args.backend, "steady") as settings:
        clock = FixedClock(datetime(2018, 1, 2, 1, 0, tzinfo=UTC))
        ct = bootstrap(settings, clock=clock)
        try:
            ct.directory.load_units(units())
            engine = engine_for(ct)
            engine.setup()
            first = 200
            load(ct, clock, first)
            engine.catch_up()
            cpu, events = 0.0, 0
            for _ in range(args.rounds):
                head = engine.head()
                load(ct, clock, args.cases, first=first)
                first += args.cases
                events += engine.head() - head
                started = time.process_time()
                engine.catch_up()
                cpu += time.process_time() - started
        finally:
            ct.close()
    print(
        f"{args.backend}: {events:,} events in {args.rounds} catch-ups: "
        f"{1000 * cpu / max(1, events):.3f} CPU ms an event"
    )


if __name__ == "__main__":
    main()
