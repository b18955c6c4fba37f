"""`casetrail people erase`: a person's data erased by the store's operator (projections.erasure)."""

from __future__ import annotations

import json

import click

from cli.store import build
from domain.case import Actor
from domain.roles import ADMIN
from projections.erasure import erase_person
from projections.retention import run_retention

CONSOLE = Actor("console", ADMIN, "")


@click.group("people")
def people() -> None:
    """The people whose personal data the store holds."""


@people.command("erase")
@click.option("--id-number", required=True, help="The person's 18-digit ID number.")
@click.option("--reason", required=True, help="Why (the legal ground); no personal data.")
def people_erase(id_number: str, reason: str) -> None:
    """Destroys the person's data keys; every record of theirs then reads as erased."""
    erased = erase_person(build(), CONSOLE, id_number, reason, console=True)
    click.echo(json.dumps(erased))


@people.command("retention")
@click.option("--dry-run", is_flag=True, help="Only show what has passed its period.")
def people_retention(dry_run: bool) -> None:
    """Erases what has passed its retention period (read-access records by month,
    electronic-monitoring data, closed records of the kinds configured), as the daily
    cron job does; with --dry-run, shows it and changes nothing."""
    click.echo(json.dumps(run_retention(build(), dry_run=dry_run), ensure_ascii=False))
