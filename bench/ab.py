"""A/B of the HTTP append path: two or more web processes side by side, measured in turn.

Each target is a checkout (and optionally extra environment) whose `web` process
(gunicorn, `web/gunicorn_conf.py`) is started on its own fresh store; all of them stay up,
idle but for the one being measured, and `bench/append.py`'s concurrent clients append to
each in turn, round after round, the order reversed every other round. On a machine whose
speed drifts by tens of percent within minutes (docs/append-path.md), comparing targets
round by round says what separate runs cannot.

    .venv/bin/python -m bench.ab --rounds 10 --cases 200 \\
        before=/tmp/checkout-of-main after=. [wide=.:WEB_CONCURRENCY=4]
    .venv/bin/python -m bench.ab plain=.:BENCH_WITHOUT_PERSON_KEYS=1 keys=.   # issue 20

A target is NAME=PATH[:VAR=VALUE,VAR=VALUE]; PATH is a checkout with its own `.venv` or
one that runs with this one's. Prints, per target, events/s (mean, median, each round)
and the gunicorn processes' CPU ms an event.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import append
from bench.stores import clear_queue, fresh_settings, settings_env
from casetrail.config import Settings

# Creates the tables, units and a caseworker in the target's own code; prints the token.
# With BENCH_WITHOUT_PERSON_KEYS=1 in a target's environment, its store is one from before
# per-person keys (issue 20): a first case written without them and no key table, which
# every process of the target then opens as such (casetrail.personal.PersonKeys.attach).
PREPARE = (
    "import os\n"
    "from casetrail.bootstrap import bootstrap\n"
    "from bench.projections import units\n"
    "ct = bootstrap()\n"
    "ct.directory.load_units(units())\n"
    "if os.environ.get('BENCH_WITHOUT_PERSON_KEYS') == '1':\n"
    "    from bench import workload\n"
    "    from bench.append import ACTOR\n"
    "    from casetrail.personal import KEYS_TABLE, SUBJECTS_TABLE\n"
    "    ct.app.mapper.keys = None\n"
    "    ct.service.open_case(ACTOR, 'dispute', workload.UNIT, *workload.opening())\n"
    "    ct.db.execute_script([f'DROP TABLE {KEYS_TABLE}', f'DROP TABLE {SUBJECTS_TABLE}'])\n"
    "print(ct.directory.create_user('bench caseworker', 'caseworker', '320102')[1])\n"
    "ct.close()\n"
)


@dataclass
class Target:
    name: str
    path: Path
    env: dict[str, str]
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str) -> Target:
        name, _, rest = spec.partition("=")
        path, _, assignments = rest.partition(":")
        if not name or not path:
            raise argparse.ArgumentTypeError(f"not NAME=PATH[:VAR=VALUE,...]: {spec!r}")
        env = dict(kv.split("=", 1) for kv in assignments.split(",") if kv)
        return cls(name, Path(path).resolve(), env)

    def python(self, program: str) -> str:
        own = self.path / ".venv" / "bin" / program
        return str(own if own.exists() else Path(sys.executable).with_name(program))


@contextmanager
def serving(target: Target, settings: Settings) -> Iterator[tuple[append.Server, str]]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = subprocess.run(
        [target.python("python"), "-c", PREPARE],
        cwd=target.path,
        env={**os.environ, **settings_env(settings), **target.env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    with append.gunicorn(
        settings,
        append.free_port(),
        settings.data_dir / "gunicorn.log",
        checkout=target.path,
        gunicorn_bin=target.python("gunicorn"),
        extra_env=target.env,
    ) as server:
        yield server, token


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", type=Target.parse, metavar="NAME=PATH[:VAR=V,...]")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--cases", type=int, default=200, help="ten-event cases per round")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        servers = []
        for target in args.targets:
            settings = stack.enter_context(fresh_settings(args.backend, f"ab-{target.name}"))
            stack.callback(clear_queue, settings)
            server, token = stack.enter_context(serving(target, settings))
            append.http_appends(server, token, 10, args.clients)  # warm: imports, connections
            servers.append((target, server, token))
        for number in range(args.rounds):
            for target, server, token in servers if number % 2 == 0 else servers[::-1]:
                rate = append.http_appends(server, token, args.cases, args.clients)
                target.rates.append(rate.per_second)
                target.cpu_ms.append(1000 * (rate.cpu_seconds or 0.0) / max(1, rate.count))
    print(
        f"{args.backend}, {args.clients} clients, {args.rounds} rounds of "
        f"{args.cases * 10:,} events each"
    )
    for target in args.targets:
        print(
            f"{target.name:>12}: mean {statistics.mean(target.rates):,.0f}, median "
            f"{statistics.median(target.rates):,.0f} events/s; "
            f"{statistics.mean(target.cpu_ms):.2f} server CPU ms/event; rounds "
            + " ".join(f"{rate:,.0f}" for rate in target.rates)
        )


if __name__ == "__main__":
    main()
