"""The `casetrail` command line: a thin adapter over the composition root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from casetrail.config import Settings
from cli.audit import audit
from cli.backup import backup, restore
from cli.deadlines import deadlines
from cli.demo import demo
from cli.init import init
from cli.migrate import store
from cli.people import people
from cli.registers import bases, registers
from cli.store import build, refuse
from cli.up import up
from cli.users import users
from cli.witness import witness
from cli.workers import cron, projections, worker
from domain.errors import CasetrailError


class Errors(click.Group):
    """Turns refusals and bad settings into one readable line each and exit status 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CasetrailError as error:
            refuse(error)


@click.group(cls=Errors)
def main() -> None:
    """casetrail: event-sourced case tracking with an audit trail."""
    # Every setting is checked before any command runs (`error (bad_config): ...`).
    Settings.from_env()


@main.group()
def units() -> None:
    """Units (the administrative division tree)."""


@units.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--parent", default=None, help="Parent unit code (default: implied by the code).")
def units_add(code: str, name: str, parent: str | None) -> None:
    ct = build()
    unit = ct.directory.add_unit(code, name, parent)
    click.echo(f"added {unit.code} {unit.name} ({unit.level}) under {unit.parent}")


@units.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def units_load(file: Path) -> None:
    """Loads units from a JSON file: a list (or {"units": [...]}) of {code, name, parent}."""
    units = read_units(file)
    ct = build()
    added = ct.directory.load_units(units)
    click.echo(f"loaded {added} new units")


@units.command("list")
def units_list() -> None:
    ct = build()
    for unit in ct.directory.units():
        click.echo(json.dumps(unit.__dict__, ensure_ascii=False))


def read_units(file: Path) -> list[dict[str, Any]]:
    """The units of a JSON file, checked before the store is touched."""
    expected = 'expected a JSON list (or {"units": [...]}) of {"code", "name", "parent"}'
    try:
        data = json.loads(file.read_text("utf-8"))
    except UnicodeDecodeError:
        raise CasetrailError(f"{file} is not UTF-8 text; {expected}", code="bad_input") from None
    except json.JSONDecodeError as error:
        raise CasetrailError(
            f"{file} is not valid JSON ({error.msg} at line {error.lineno}, column "
            f"{error.colno}); {expected}",
            code="bad_input",
        ) from None
    units = data.get("units") if isinstance(data, dict) else data
    if not isinstance(units, list) or not all(
        isinstance(unit, dict) and "code" in unit and "name" in unit for unit in units
    ):
        raise CasetrailError(f"{file} does not hold units; {expected}", code="bad_input")
    return units


main.add_command(init)
main.add_command(users)
main.add_command(up)
main.add_command(demo)
main.add_command(worker)
main.add_command(cron)
main.add_command(projections)
main.add_command(audit)
main.add_command(backup)
main.add_command(restore)
main.add_command(deadlines)
main.add_command(witness)
main.add_command(people)
main.add_command(registers)
main.add_command(bases)
main.add_command(store)
