"""In-process A/B of the append path with per-person keys on and off (issue 20), on SQLite.

Each round makes two fresh stores, one with per-person keys (the default for a new store)
and one with its mapper's keys removed (as a store from before them), and runs the same
commands on each (`bench.append.service_appends`: per case, one opening and nine appends),
off then on, alternating, so that the machine's drift hits both alike. Prints ms per command
each round and the medians; `--profile N` instead profiles N cases with keys on.

    PYTHONPATH=. .venv/bin/python -m bench.person_keys --rounds 4 --cases 50
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
from pathlib import Path

from bench import workload
from bench.append import service_appends
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings


def ms_per_command(keys_on: bool, cases: int, *, profile: bool = False) -> float:
    data_dir = Path(tempfile.mkdtemp(prefix="casetrail-person-keys-"))
    ct = bootstrap(Settings.from_env().with_(data_dir=data_dir))
    try:
        ct.directory.add_unit(workload.UNIT, "玄武区")
        if not keys_on:
            ct.app.mapper.keys = None
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        rate = service_appends(ct, cases)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        return rate.seconds / rate.count * 1000
    finally:
        ct.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--profile", type=int, default=0, help="profile N cases, keys on")
    args = parser.parse_args()
    os.environ["CASETRAIL_RATE_LIMIT"] = ""
    if args.profile:
        ms_per_command(True, args.profile, profile=True)
        return
    off: list[float] = []
    on: list[float] = []
    for number in range(args.rounds):
        off.append(ms_per_command(False, args.cases))
        on.append(ms_per_command(True, args.cases))
        print(f"round {number}: off {off[-1]:.2f} ms, on {on[-1]:.2f} ms", flush=True)
    ratio = statistics.median(on) / statistics.median(off)
    print(
        f"median ms/command: off {statistics.median(off):.2f}, "
        f"on {statistics.median(on):.2f} ({ratio - 1:+.0%})"
    )


if __name__ == "__main__":
    main()
