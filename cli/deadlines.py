"""`casetrail deadlines sweep|list|upcoming`: a sweep by hand (beside the cron's), the
recorded warnings, breaches and resolutions, and the deadlines coming up."""

from __future__ import annotations

import json
from datetime import date

import click

from cli.store import build
from domain.deadlines import DEADLINE_TYPES
from domain.kinds import KINDS
from projections.inbox_query import upcoming_deadlines
from projections.queries import ReadModels
from workers.deadlines import FULL_SWEEP_PROCESSES
from workers.incremental import PARALLEL_FROM, IncrementalSweeps
from workers.sweeps import sweeper_of


@click.group("deadlines")
def deadlines() -> None:
    """Deadlines: sweep for warnings and breaches, list what was recorded."""


@deadlines.command("sweep")
@click.option("--full", is_flag=True, help="Every case, not only what changed since the last.")
@click.option(
    "--processes",
    type=click.IntRange(1, 16),
    default=FULL_SWEEP_PROCESSES,
    show_default=True,
    help=f"Processes for a sweep of {PARALLEL_FROM:,} cases or more.",
)
def deadlines_sweep(full: bool, processes: int) -> None:
    """Sweeps what changed since the last sweep (every case with --full, or the first
    time) now, no worker needed; safe beside running sweeps."""
    report = IncrementalSweeps(build()).sweep(full=full, processes=processes)
    click.echo(json.dumps(report))


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
    for item in sweeper_of(ct).records(
        within=within,
        kind=kind,
        case_kind=case_kind,
        state=state,
        from_=_day(from_),
        to=_day(to),
    ):
        click.echo(json.dumps(item, ensure_ascii=False))


@deadlines.command("upcoming")
@click.option("--unit", default=None, help="Only this unit's subtree (default: every unit).")
@click.option("--days", type=click.IntRange(0, 366), default=30, show_default=True)
@click.option("--kind", type=click.Choice(sorted(DEADLINE_TYPES)), default=None)
@click.option("--case-kind", type=click.Choice(sorted(KINDS)), default=None)
def deadlines_upcoming(
    unit: str | None, days: int, kind: str | None, case_kind: str | None
) -> None:
    """The running deadlines due from today to today + DAYS (CST), soonest first, one JSON
    line each: case terms ending, report-in and handover windows closing, dispute time
    limits, follow-ups and the rest of the domain's deadlines (as GET /inbox, for any unit)."""
    models = ReadModels(build())
    for item in upcoming_deadlines(models, unit, days, kind=kind, case_kind=case_kind):
        click.echo(json.dumps(item, ensure_ascii=False))


def _day(value: object) -> date | None:
    return value.date() if hasattr(value, "date") else None
