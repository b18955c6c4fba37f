"""`casetrail users …`: the user lifecycle from the server's command line.

Whoever runs these commands on the server already holds the store, so they act as an admin
of the province (`ROOT_UNIT`), named after their login (`cli:<login>`); every act is an
event of the administration log like an admin's over HTTP. This is also the way back from
a lost admin token: `casetrail users list --role admin`, then `casetrail users rotate-token
ID` prints a new one (the old one is dead at once).
"""

from __future__ import annotations

import getpass
import json

import click

from casetrail.directory import User
from cli.store import build
from cli.up import ROOT_UNIT
from domain.case import Actor
from domain.roles import ADMIN, ROLES


def operator() -> Actor:
    try:
        login = getpass.getuser()
    except Exception:  # no login name in this environment (e.g. a container)
        login = "unknown"
    return Actor(user_id="cli:" + login, role=ADMIN, unit=ROOT_UNIT)


def shown(user: User) -> str:
    return json.dumps(
        {
            "id": user.id,
            "name": user.name,
            "role": user.role,
            "unit": user.unit,
            "active": getattr(user, "active", True),
        },
        ensure_ascii=False,
    )


@click.group()
def users() -> None:
    """Users and their bearer tokens: create, list, disable, enable, rotate, change."""


@users.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--unit", required=True, help="The user's unit code.")
def users_create(name: str, role: str, unit: str) -> None:
    """Creates a user and prints their bearer token once (only its hash is kept)."""
    user, token = build().directory.create_user(name, role, unit, by=operator())
    click.echo(f"user {user.id} ({user.role} at {user.unit})")
    click.echo(f"token: {token}")


@users.command("list")
@click.option("--unit", default=None, help="Only this unit's subtree.")
@click.option("--role", default=None, type=click.Choice(ROLES))
def users_list(unit: str | None, role: str | None) -> None:
    """Every user (never a token), one JSON line each, oldest first."""
    directory = build().directory
    page = 1
    while True:
        found, total = directory.users_page(operator(), page, 500, unit=unit, role=role)
        for user in found:
            click.echo(shown(user))
        if page * 500 >= total:
            return
        page += 1


@users.command("disable")
@click.argument("user_id")
def users_disable(user_id: str) -> None:
    """Disables a user: their token is refused at once, in every process."""
    click.echo(shown(build().directory.set_active(user_id, False, by=operator())))


@users.command("enable")
@click.argument("user_id")
def users_enable(user_id: str) -> None:
    """Enables a disabled user again (with the token they had)."""
    click.echo(shown(build().directory.set_active(user_id, True, by=operator())))


@users.command("rotate-token")
@click.argument("user_id")
def users_rotate(user_id: str) -> None:
    """A new token for the user, printed once; the old one is dead at once."""
    user, token = build().directory.rotate_token(user_id, by=operator())
    click.echo(f"user {user.id} ({user.role} at {user.unit})")
    click.echo(f"token: {token}")


@users.command("change")
@click.argument("user_id")
@click.option("--unit", default=None, help="Move the user to this unit.")
@click.option("--role", default=None, type=click.Choice(ROLES))
def users_change(user_id: str, unit: str | None, role: str | None) -> None:
    """Moves a user to another unit or gives them another role."""
    user = build().directory.change_user(user_id, by=operator(), unit=unit, role=role)
    click.echo(shown(user))
