"""`casetrail store migrate --from OLD_DIR [--from-database-url URL --from-schema S]`: a
store written without per-person keys (no cipher, or the old global `CASETRAIL_CIPHER_KEY`)
rewritten into a new store with them, verified against the old one (cli.migration).

The old store is opened read only (cli.old_store) and never edited. The new store is the
one the environment (and `--data-dir`) names, as for any command; it must be new or empty.

All or nothing: the new store is built aside (a directory beside the target, and on
PostgreSQL a schema of its own), and moved into place (a rename of the directory, of the
schema) only once every check passed. A failed or interrupted run removes what it built;
a run killed outright (power cut, SIGKILL) leaves its `.<name>.migrating-…` directory and
`migrating_…` schema behind, never a half-built store where the target is. Run it again
from the start: nothing is resumed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import psycopg
from eventsourcing.persistence import PersistenceError

from casetrail.audit.keys import Signer
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from casetrail.files import private_dir
from casetrail.presence import check_reachable, describe
from cli.backup import TargetNotEmpty
from cli.migration import MigrationFailed, MigrationRefused, migrate, verified_old_log
from cli.old_store import OldStore, first_line, open_old, source_settings
from cli.store import settings_for
from domain.errors import ConfigError


@click.group("store")
def store() -> None:
    """The store itself."""


@store.command("migrate")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The old store's data directory (its casetrail.sqlite, its audit-signing.key).",
)
@click.option(
    "--from-database-url", default=None, help="The old store's PostgreSQL URL (default: SQLite)."
)
@click.option("--from-schema", default=None, help="The old store's PostgreSQL schema.")
@click.option(
    "--data-dir", default=None, help="The new store's data directory (default: CASETRAIL_DATA_DIR)."
)
def migrate_command(
    source: Path, from_database_url: str | None, from_schema: str | None, data_dir: str | None
) -> None:
    """Rewrites the old store into a new one with per-person keys and verifies it.

    The old store's cipher and signing keys, if not in its data directory: in
    CASETRAIL_FROM_CIPHER_KEY and CASETRAIL_FROM_SIGNING_KEY. The new store: the usual
    settings (CASETRAIL_DATA_DIR or --data-dir; CASETRAIL_DATABASE_URL with a new
    CASETRAIL_DATABASE_SCHEMA for PostgreSQL; CASETRAIL_MASTER_KEY, CASETRAIL_SIGNING_KEY)."""
    old_settings = source_settings(source, from_database_url, from_schema, os.environ)
    target = Target.of(settings_for(data_dir))
    old = open_old(old_settings)
    try:
        target.check_signing_key(old)
        click.echo(f"verifying the old store in {describe(old_settings)}")
        started = time.perf_counter()
        log = verified_old_log(old)
        click.echo(
            f"old log: {log.size} events, checkpoint #{log.checkpoint_number} "
            f"({log.checkpoint.size} events, root {log.checkpoint.root.hex()}) verified "
            f"in {time.perf_counter() - started:.1f} s"
        )
        started = time.perf_counter()
        before = old.fingerprint()
        with target.built_aside() as aside:
            ct = bootstrap(aside, seed_units=False)
            try:
                with click.progressbar(length=log.size, label="rewriting") as bar:
                    done = migrate(old, ct, log, bar.update)
            except (PersistenceError, psycopg.Error) as error:
                raise MigrationFailed(f"the rewrite failed: {first_line(error)}") from None
            finally:
                ct.close()
            if old.fingerprint() != before:
                raise MigrationFailed(
                    "the old store changed while it was migrated; stop its services and run "
                    "the migration again"
                )
    finally:
        old.close()
    click.echo(
        f"migrated {done.events} events and {done.snapshots} snapshots into "
        f"{describe(target.settings)}; every event decodes as in the old store; "
        f"the new log ({done.checkpoint_size} events, its migration act last) is signed "
        f"and verified ({time.perf_counter() - started:.1f} s)"
    )
    click.echo(
        "keep the old store, read only, with its checkpoints: it is the evidence of the "
        "history before the migration, and it holds every person's data in the clear until "
        "it is destroyed (docs/privacy.md)"
    )


@dataclass(frozen=True)
class Target:
    """Where the new store goes: a new or empty data directory and, on PostgreSQL, a new
    or empty schema named by CASETRAIL_DATABASE_SCHEMA."""

    settings: Settings

    @classmethod
    def of(cls, settings: Settings) -> Target:
        target = settings.data_dir
        if target.exists() and any(target.iterdir()):
            raise TargetNotEmpty(
                f"{target} is not empty; expected a new or empty data directory for the "
                "migrated store (--data-dir or CASETRAIL_DATA_DIR)"
            )
        if settings.backend == "postgres":
            if not settings.database_schema:
                raise ConfigError(
                    "CASETRAIL_DATABASE_SCHEMA: not set; expected a new schema for the "
                    "migrated store"
                )
            check_reachable(settings.with_(database_schema=None))
            if schema_tables(settings, settings.database_schema):
                raise TargetNotEmpty(
                    f"schema {settings.database_schema} already holds tables; expected a "
                    "new or empty CASETRAIL_DATABASE_SCHEMA for the migrated store"
                )
        return cls(settings)

    def check_signing_key(self, old: OldStore) -> None:
        """The new log is not an extension of the old one: signed under the old key and
        origin, its checkpoints would contradict the old log's (a witness sees a fork)."""
        key = self.settings.signing_key
        if key and Signer.parse(key).verifier == old.audit.signer.verifier:
            raise MigrationRefused(
                "CASETRAIL_SIGNING_KEY is the old store's signing key; expected another key "
                "(or none: the new store makes its own) for the new log",
                code="same_signing_key",
            )

    @contextmanager
    def built_aside(self) -> Iterator[Settings]:
        """Settings for a store built aside; moved into place when the block ends
        normally, removed when it raises."""
        target = self.settings.data_dir
        suffix = secrets.token_hex(4)
        directory = target.with_name(f".{target.name}.migrating-{suffix}")
        schema = None if self.settings.backend == "sqlite" else f"migrating_{suffix}"
        private_dir(directory)
        try:
            if schema is not None:
                postgres_execute(self.settings, f"CREATE SCHEMA {schema}")
            yield self.settings.with_(data_dir=directory, database_schema=schema)
            if schema is not None:
                postgres_execute(
                    self.settings,
                    f"DROP SCHEMA IF EXISTS {self.settings.database_schema}",
                    f"ALTER SCHEMA {schema} RENAME TO {self.settings.database_schema}",
                )
                schema = None
            directory.rename(target)  # replaces an empty directory
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            if schema is not None:
                postgres_execute(self.settings, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            raise


def schema_tables(settings: Settings, schema: str) -> int:
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    return int(row[0]) if row else 0


def postgres_execute(settings: Settings, *statements: str) -> None:
    """Statements on the new store's server, in one transaction."""
    with psycopg.connect(settings.database_url or "") as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]
