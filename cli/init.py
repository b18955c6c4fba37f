"""`casetrail init`: the explicit way to create a store (besides `up` and `demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from casetrail.presence import check_reachable, describe, store_exists
from cli.store import open_store, settings_for
from cli.up import first_admin


@click.command("init")
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded store goes (default: $CASETRAIL_DATA_DIR or ./var).",
)
def init(data_dir: Path | None) -> None:
    """Creates the store (tables, seed units, signing key) and the first admin, printing the
    admin's token once; on an existing store, changes nothing."""
    settings = settings_for(data_dir)
    check_reachable(settings)
    existed = store_exists(settings)
    ct = open_store(settings, create=True)
    try:
        token = first_admin(ct)
    finally:
        ct.close()
    click.echo(f"store: {describe(settings)}")
    if token:
        click.echo(f"admin token (shown once, keep it): {token}")
    elif existed:
        click.echo("the store was there already; nothing changed")
