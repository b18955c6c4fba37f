"""`casetrail registers …` and `casetrail bases occupancy`: the registers that events
name (committees, mediators, transitional bases, correction staff) from the server's
command line. The operator acts as an admin of the province (cli.users.operator); every
act is an event of the administration log like an admin's over HTTP."""

from __future__ import annotations

import json

import click

from casetrail.registers import RegisterEntry
from cli.store import build
from cli.users import operator
from domain.registers import REGISTER_KINDS, STAFF_POSTS
from projections import engine_for
from projections.bases_query import base_occupancy
from projections.queries import ReadModels


def shown(entry: RegisterEntry) -> str:
    return json.dumps(entry.as_json(), ensure_ascii=False)


@click.group("registers")
def registers() -> None:
    """Registers: mediation committees, mediators, transitional bases, correction staff."""


@registers.command("add")
@click.argument("kind", type=click.Choice(list(REGISTER_KINDS)))
@click.argument("unit")
@click.argument("name")
@click.option("--id", "entry_id", default=None, help="An id of your choosing (e.g. a base's code).")
@click.option("--capacity", type=int, default=None, help="A base: the people it holds.")
@click.option("--post", type=click.Choice(STAFF_POSTS), default=None, help="Correction staff.")
@click.option("--committee", default=None, help="A mediator: their registered committee.")
def registers_add(
    kind: str,
    unit: str,
    name: str,
    entry_id: str | None,
    capacity: int | None,
    post: str | None,
    committee: str | None,
) -> None:
    """Enters a committee, mediator, base or staff member in a unit's register."""
    entry = build().registers.add(
        kind,
        unit,
        name,
        by=operator(),
        entry_id=entry_id,
        capacity=capacity,
        post=post,
        committee=committee,
    )
    click.echo(shown(entry))


@registers.command("list")
@click.option("--kind", type=click.Choice(list(REGISTER_KINDS)), default=None)
@click.option("--unit", default=None, help="Only this unit's subtree.")
@click.option("--retired/--active", "retired", default=None, help="Only retired / active ones.")
def registers_list(kind: str | None, unit: str | None, retired: bool | None) -> None:
    """The entries, one JSON line each, by unit and id."""
    active = None if retired is None else not retired
    for entry in build().registers.visible(operator(), kind=kind, unit=unit, active=active):
        click.echo(shown(entry))


@registers.command("change")
@click.argument("entry_id")
@click.option("--name", default=None)
@click.option("--capacity", type=int, default=None)
@click.option("--post", type=click.Choice(STAFF_POSTS), default=None)
@click.option("--committee", default=None)
def registers_change(
    entry_id: str,
    name: str | None,
    capacity: int | None,
    post: str | None,
    committee: str | None,
) -> None:
    """Changes an active entry's name, capacity, post or committee."""
    entry = build().registers.change(
        entry_id, by=operator(), name=name, capacity=capacity, post=post, committee=committee
    )
    click.echo(shown(entry))


@registers.command("retire")
@click.argument("entry_id")
@click.option("--reason", required=True, help="Why (no personal data).")
def registers_retire(entry_id: str, reason: str) -> None:
    """Retires an entry: no new event may name it; events that did stay valid."""
    click.echo(shown(build().registers.retire(entry_id, by=operator(), reason=reason)))


@click.group("bases")
def bases() -> None:
    """Transitional placement bases (過渡性安置基地)."""


@bases.command("occupancy")
@click.option("--unit", default=None, help="Only this unit's subtree.")
@click.option("--include-retired", is_flag=True, help="Retired bases too.")
def bases_occupancy(unit: str | None, include_retired: bool) -> None:
    """Each base with its capacity and the people there now, one JSON line each, then the
    totals (the read models are brought up to date first)."""
    ct = build()
    engine_for(ct).catch_up()
    result = base_occupancy(ReadModels(ct), operator(), unit=unit, include_retired=include_retired)
    for item in result["bases"]:
        click.echo(json.dumps(item, ensure_ascii=False))
    click.echo(json.dumps({"unit": result["unit"], "totals": result["totals"]}))
