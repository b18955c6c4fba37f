"""The `casetrail` command line: a thin adapter over the composition root."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.errors import CasetrailError


def build(data_dir: str | None = None) -> Casetrail:
    settings = Settings.from_env()
    if data_dir:
        settings = settings.with_(data_dir=Path(data_dir).resolve())
    return bootstrap(settings)


class Errors(click.Group):
    """Turns refusals into one readable line and exit status 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CasetrailError as error:
            click.echo(f"error ({error.code}): {error.message}", err=True)
            sys.exit(2)


@click.group(cls=Errors)
def main() -> None:
    """casetrail: event-sourced case tracking with an audit trail."""


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
    ct = build()
    added = ct.directory.load_units_file(file)
    click.echo(f"loaded {added} new units")


@units.command("list")
def units_list() -> None:
    ct = build()
    for unit in ct.directory.units():
        click.echo(json.dumps(unit.__dict__, ensure_ascii=False))


@main.group()
def users() -> None:
    """Users and their bearer tokens."""


@users.command("create")
@click.argument("name")
@click.option(
    "--role", required=True, type=click.Choice(["caseworker", "supervisor", "auditor", "admin"])
)
@click.option("--unit", required=True, help="The user's unit code.")
def users_create(name: str, role: str, unit: str) -> None:
    """Creates a user and prints their bearer token once (only its hash is kept)."""
    ct = build()
    user, token = ct.directory.create_user(name, role, unit)
    click.echo(f"user {user.id} ({user.role} at {user.unit})")
    click.echo(f"token: {token}")


# Other adapters register their commands here, e.g. `main.add_command(projections)`.

from casetrail.up import up  # noqa: E402

main.add_command(up)

from casetrail.demo.cli import demo  # noqa: E402

main.add_command(demo)

from workers.cli import cron, projections, worker  # noqa: E402

main.add_command(worker)
main.add_command(cron)
main.add_command(projections)

from casetrail.audit.cli import audit  # noqa: E402

main.add_command(audit)

from workers.deadlines import deadlines  # noqa: E402

main.add_command(deadlines)
