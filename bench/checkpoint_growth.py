"""What many checkpoints cost `audit verify`: a store whose events were checkpointed one
at a time against the same events under one checkpoint, verified in a fresh process
each (events/s, peak memory of the verifying processes).

    .venv/bin/python -m bench.checkpoint_growth [--checkpoints 5000] [--cases-between 1]

The cron signs a checkpoint every five minutes when the log has grown
(`workers/cron.py`): a store in use for ten years holds about 1,050,000 of them. The
per-checkpoint cost measured here, times that, is what a decade of checkpoints adds.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.projections import load, units
from bench.stores import fresh_settings, settings_env
from bench.verify import verify_in_process
from casetrail.audit import records
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock


def build(settings: Settings, checkpoints: int, between: int) -> tuple[int, int, float]:
    """(events, checkpoints, seconds): `checkpoints` × `between` disputes, a checkpoint
    after every `between` of them (`checkpoints` = 1: one at the end)."""
    clock = FixedClock(datetime(2025, 1, 2, 1, 0, tzinfo=UTC))
    ct = bootstrap(settings, clock=clock)
    try:
        ct.directory.load_units(units())
        started, events = time.perf_counter(), 0
        total = checkpoints * between
        step = between if checkpoints > 1 else total
        for first in range(0, total, step):
            events += load(ct, clock, step, first=first)
            ct.audit.write_checkpoint()
        last = records.latest_checkpoint(ct.db)
        return events, last.number if last else 0, time.perf_counter() - started
    finally:
        ct.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=5000)
    parser.add_argument("--cases-between", type=int, default=1, help="disputes a checkpoint")
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    rows = []
    for checkpoints, between in (
        (args.checkpoints, args.cases_between),
        (1, args.checkpoints * args.cases_between),
    ):
        with fresh_settings("sqlite", "checkpoints") as settings:
            events, count, took = build(settings, checkpoints, between)
            status, seconds, kib = verify_in_process(
                settings_env(settings), Path.cwd(), args.processes
            )
            rows.append((count, events, seconds, kib, status))
            print(
                f"{count:>8} checkpoints, {events} events (built in {took:.0f} s): verify "
                f"{seconds:.2f} s, {events / seconds:,.0f} events/s, peak {kib / 1024:.1f} MiB"
                + ("" if status == 0 else f", exit {status}")
            )
    (many, _, s_many, k_many, _), (_, _, s_one, k_one, _) = rows
    extra = many - 1
    print(
        f"each checkpoint beyond the first: {(k_many - k_one) * 1024 / extra:,.0f} bytes of peak "
        f"memory, {(s_many - s_one) * 1e6 / extra:,.0f} µs of verify; at 1,050,000 "
        f"checkpoints (ten years, one each 5 min): "
        f"{(k_many - k_one) / extra * 1_050_000 / 1024:,.0f} MiB, "
        f"{(s_many - s_one) / extra * 1_050_000:,.0f} s"
    )


if __name__ == "__main__":
    main()
