"""Deadline sweeps as the cron's RQ job and as `casetrail deadlines sweep|list`.

A sweep recomputes every case's deadlines from the event streams (casetrail.deadlines), so
a sweep that never ran (Redis down, every worker killed) is caught up by the next one.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date

import click

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from casetrail.deadlines import sweeper_for

log = logging.getLogger("casetrail.workers.deadlines")

# How often `casetrail cron` enqueues a sweep; deadlines fall due at CST midnight, a warning
# or a breach is recorded at most this long after it.
SWEEP_INTERVAL_ENV = "CASETRAIL_DEADLINE_SWEEP_SECONDS"
DEFAULT_SWEEP_INTERVAL_SECONDS = 60
SWEEP_TIMEOUT_SECONDS = 1800


def build() -> Casetrail:
    return bootstrap(Settings.from_env())


def sweep_interval() -> int:
    return max(int(os.environ.get(SWEEP_INTERVAL_ENV, DEFAULT_SWEEP_INTERVAL_SECONDS)), 1)


def sweep_job() -> dict[str, int]:
    """The cron job (run by an RQ worker): sweeps every case with the worker's casetrail."""
    from workers.jobs import current

    report = sweeper_for(current()).sweep().as_dict()
    log.info("deadline sweep: %s", json.dumps(report))
    return report


@click.group("deadlines")
def deadlines() -> None:
    """Deadlines: sweep for warnings and breaches, list what was recorded."""


@deadlines.command("sweep")
def deadlines_sweep() -> None:
    """Sweeps every case now (no worker needed); safe beside running sweeps."""
    report = sweeper_for(build()).sweep()
    click.echo(json.dumps(report.as_dict()))


@deadlines.command("list")
@click.option("--unit", default=None, help="Only this unit's subtree.")
@click.option("--kind", default=None, help="A kind of deadline (domain.deadlines).")
@click.option("--case-kind", default=None, help="dispute, resettlement or correction.")
@click.option("--state", type=click.Choice(["warning", "breached", "resolved"]), default=None)
@click.option("--from", "from_", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", type=click.DateTime(["%Y-%m-%d"]), default=None)
def deadlines_list(
    unit: str | None,
    kind: str | None,
    case_kind: str | None,
    state: str | None,
    from_: object,
    to: object,
) -> None:
    """The recorded warnings and breaches, newest first, one JSON line each."""
    ct = build()
    within = None
    if unit is not None:
        ct.directory.require_unit(unit)
        within = lambda code: ct.directory.may_act(unit, code)  # noqa: E731
    for item in sweeper_for(ct).records(
        within=within,
        kind=kind,
        case_kind=case_kind,
        state=state,
        from_=_day(from_),
        to=_day(to),
    ):
        click.echo(json.dumps(item, ensure_ascii=False))


def _day(value: object) -> date | None:
    return value.date() if hasattr(value, "date") else None
