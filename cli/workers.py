"""`casetrail worker`, `casetrail cron` and `casetrail projections status|rebuild|catch-up`
and `casetrail projections parked list|retry|skip`."""

from __future__ import annotations

import getpass
import json

import click

from casetrail.bootstrap import Casetrail
from casetrail.presence import require_store
from cli.store import open_store, refuse, settings_for
from domain.case import Actor
from domain.errors import CasetrailError
from projections import engine_for
from projections.parking import retry, skip
from projections.rebuild import default_rebuild_processes
from workers.cron import run
from workers.logs import configure
from workers.signals import ProjectionSignal
from workers.worker import work


def build() -> Casetrail:
    settings = settings_for()
    return open_store(settings, on_append=ProjectionSignal(settings))


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
def worker(burst: bool) -> None:
    """An RQ worker that builds the read models (and runs the cron's jobs); it rides out
    a Redis outage."""
    configure()
    work(build(), burst=burst)


@click.command("cron")
def cron() -> None:
    """The periodic jobs: the projection catch-up safety net; it rides out a Redis outage."""
    configure()
    settings = settings_for()
    require_store(settings)
    run(settings)


@click.group("projections")
def projections() -> None:
    """Read models: lag, catch-up and rebuild."""


@projections.command("status")
def projections_status() -> None:
    """Each projection's position, the head and the lag."""
    ct = build()
    for entry in engine_for(ct).status():
        click.echo(json.dumps(entry))


@projections.command("catch-up")
def projections_catch_up() -> None:
    """Projects everything up to the head, here and now (no worker needed)."""
    ct = build()
    applied = engine_for(ct).catch_up()
    click.echo(f"applied {applied} events")


@projections.command("rebuild")
@click.argument("name", required=False)
@click.option(
    "--processes",
    type=click.IntRange(1, 16),
    default=None,
    help="Fill the read models in this many processes (each reads the log itself); "
    "default: two on a machine with two cores or more, else one.",
)
def projections_rebuild(name: str | None, processes: int | None) -> None:
    """Rebuilds NAME (default: every projection) from event 1 into fresh tables, all in one
    pass over the log; queries keep reading the old ones until the switch."""
    ct = build()
    engine = engine_for(ct)
    names = [name] if name else list(engine.projections)
    for each in names:
        if each not in engine.projections:
            raise click.BadParameter(
                f"no projection {each!r}; one of {', '.join(engine.projections)}"
            )
    # All of them in one pass over the log.
    processes = processes or default_rebuild_processes()
    for each, generation in engine.rebuild_many(names, processes=processes).items():
        click.echo(f"{each}: generation {generation} active at {engine.position(each, generation)}")


@projections.group("parked")
def parked() -> None:
    """Events a read model could not decode or apply, kept with their error and position."""


@parked.command("list")
@click.argument("name", required=False)
def parked_list(name: str | None) -> None:
    """The parked events (of NAME, default every read model), one JSON line each."""
    engine = engine_for(build())
    engine.setup()
    for row in engine.parked.rows(name):
        click.echo(json.dumps(row))


@parked.command("retry")
@click.argument("name", required=False)
def parked_retry(name: str | None) -> None:
    """Applies the parked events again, in order (once the code is fixed); what still fails
    stays parked."""
    left = retry(engine_for(build()), name)
    click.echo(
        f"still parked: {sum(left.values())}" + "".join(f"; {n}: {c}" for n, c in left.items())
    )


@parked.command("skip")
@click.argument("name")
@click.argument("position", type=int)
@click.option("--reason", required=True, help="Why the event is given up (recorded).")
@click.option("--by", default=getpass.getuser, show_default="the login name", help="Who skips it.")
def parked_skip(name: str, position: int, reason: str, by: str) -> None:
    """Gives up on the event at POSITION for read model NAME; recorded in the audited
    administration log with who and why."""
    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    engine = engine_for(build())
    try:
        row = skip(engine, name, position, Actor(f"operator:{by}", "operator", ""), reason)
    except CasetrailError as error:
        refuse(error)
    click.echo(f"skipped {row['event_type']} at {position} for {name}")
