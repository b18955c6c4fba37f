"""The old store of a migration (`casetrail store migrate`, docs/privacy.md), opened to be
read only, through `store.readonly`: never through `bootstrap` or `open_store`, which write
(the data directory, `master.key`, tables, the province's units). Its settings come from
the command's `--from…` options and the `CASETRAIL_FROM_…` variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casetrail.application import CaseApplication
from casetrail.audit.keys import KEY_FILE, Signer
from casetrail.audit.records import CHECKPOINT_TABLE
from casetrail.audit.trail import AuditTrail
from casetrail.config import Settings
from casetrail.personal import KEYS_TABLE
from casetrail.presence import NoStore, check_reachable
from domain.clock import SystemClock
from domain.errors import CasetrailError, ConfigError
from evidence.note import NoteError
from store.chain_links import CHAIN_TABLE
from store.db import Database
from store.postgres import DatabaseUnavailable
from store.readonly import sqlite_uri

FROM_CIPHER_KEY = "CASETRAIL_FROM_CIPHER_KEY"
FROM_SIGNING_KEY = "CASETRAIL_FROM_SIGNING_KEY"
# The old store's settings as the command spells them (for messages about them).
SPELLED = {
    "CASETRAIL_DATA_DIR": "--from",
    "CASETRAIL_DATABASE_URL": "--from-database-url",
    "CASETRAIL_DATABASE_SCHEMA": "--from-schema",
    "CASETRAIL_CIPHER_KEY": FROM_CIPHER_KEY,
    "CASETRAIL_SIGNING_KEY": FROM_SIGNING_KEY,
}


class SourceError(CasetrailError):
    """The old store cannot be migrated as it is (exit 2, nothing written)."""

    code = "bad_source"


def spelled(message: str) -> str:
    for variable, option in SPELLED.items():
        message = message.replace(variable, option)
    return message


def source_settings(
    data_dir: Path, database_url: str | None, schema: str | None, env: Mapping[str, str]
) -> Settings:
    """The old store's settings, checked as the environment's are (`bad_config`)."""
    given = {
        "CASETRAIL_DATA_DIR": str(data_dir),
        "CASETRAIL_DATABASE_URL": database_url,
        "CASETRAIL_DATABASE_SCHEMA": schema,
        "CASETRAIL_CIPHER_KEY": env.get(FROM_CIPHER_KEY),
        "CASETRAIL_SIGNING_KEY": env.get(FROM_SIGNING_KEY),
    }
    problems = []
    if schema and not database_url:
        problems.append(
            "--from-schema: names a PostgreSQL schema; expected --from-database-url too"
        )
    try:
        settings = Settings.from_env({name: value for name, value in given.items() if value})
    except ConfigError as error:
        problems += [spelled(problem) for problem in error.problems]
    if problems:
        raise ConfigError(problems)
    return settings


@dataclass(eq=False)
class OldStore:
    """The old store, read only: its application (mapper and recorders, decoding with its
    cipher key), its database and its audit trail (verification only: it signs nothing)."""

    settings: Settings
    app: CaseApplication
    db: Database
    audit: AuditTrail
    tables: frozenset[str]

    def fingerprint(self) -> tuple[Any, ...]:
        """What changes if anything writes to the old store: the SQLite files' sizes and
        times (the `-shm` index aside), or PostgreSQL's log head and checkpoints."""
        if self.settings.backend == "sqlite":
            path = self.settings.sqlite_path
            files = (path, path.with_name(path.name + "-wal"))
            return tuple(
                (f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else None for f in files
            )
        row = self.db.query_one(
            f"SELECT (SELECT MAX(position) FROM {CHAIN_TABLE}) AS head, "
            f"(SELECT MAX(number) FROM {CHECKPOINT_TABLE}) AS checkpoint"
        )
        return (row or {}).get("head"), (row or {}).get("checkpoint")

    def close(self) -> None:
        self.app.close()


def open_old(settings: Settings) -> OldStore:
    """The old store at `settings`, opened read only; `NoStore` or `SourceError` (nothing
    written either way) unless it is a store without per-person keys this code can read."""
    where = describe_source(settings)
    env = settings.eventsourcing_env() | {"CREATE_TABLE": "no"}
    if settings.backend == "sqlite":
        path = settings.sqlite_path
        if not path.is_file():
            raise NoStore(
                f"there is no casetrail store in {settings.data_dir} (--from); expected the "
                "data directory of the old store (the one holding casetrail.sqlite)"
            )
        env |= {
            "PERSISTENCE_MODULE": "store.readonly:SQLiteReader",
            "SQLITE_DBNAME": sqlite_uri(path),
        }
    else:
        try:
            check_reachable(settings)
        except (ConfigError, DatabaseUnavailable) as error:
            raise SourceError(spelled(error.message), code=error.code) from None
        env |= {"PERSISTENCE_MODULE": "store.readonly:PostgresReader"}
    app = CaseApplication(env=env)
    try:
        db: Database = app.factory.database()  # type: ignore[attr-defined]
        tables = table_names(db, where)
        events_table = app.recorder.events_table_name  # type: ignore[attr-defined]
        if events_table not in tables or CHAIN_TABLE not in tables:
            raise NoStore(f"there is no casetrail store in {where}; expected the old store there")
        if KEYS_TABLE in tables:
            raise SourceError(
                f"the store in {where} has per-person keys already; nothing to migrate",
                code="has_person_keys",
            )
        check_decodes(app, settings)
        signer = old_signer(settings)
    except BaseException:
        app.close()
        raise
    return OldStore(settings, app, db, AuditTrail(app, db, SystemClock(), signer), tables)


def describe_source(settings: Settings) -> str:
    if settings.backend == "sqlite":
        return str(settings.sqlite_path)
    return f"schema {settings.database_schema or 'public'} of {settings.database_url}"


def table_names(db: Database, where: str) -> frozenset[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = (
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
        )
    try:
        return frozenset(str(row["name"]) for row in db.query(sql))
    except Exception as error:  # not a database, or not one we can read
        raise SourceError(
            f"{where} cannot be read as a casetrail store ({first_line(error)}); expected "
            "the old store's database"
        ) from None


def old_signer(settings: Settings) -> Signer:
    """The key that signed the old log's checkpoints (its verifier checks them): set in
    `CASETRAIL_FROM_SIGNING_KEY`, else the old data directory's key file, read only."""
    if settings.signing_key:
        return Signer.parse(settings.signing_key)
    path = settings.data_dir / KEY_FILE
    try:
        return Signer.parse(path.read_text())
    except (OSError, NoteError) as error:
        raise SourceError(
            f"the old store's signing key cannot be read from {path} ({first_line(error)}); "
            f"expected that file, or {FROM_SIGNING_KEY} set to the key the old store signed "
            "its checkpoints with",
            code="no_signing_key",
        ) from None


def check_decodes(app: CaseApplication, settings: Settings) -> None:
    """The old store's first events decode with the cipher key given (or none)."""
    try:
        for notification in app.recorder.select_notifications(None, 20):
            app.mapper.to_domain_event(notification)
    except Exception as error:
        given = f"the key in {FROM_CIPHER_KEY}" if settings.cipher_key else "no cipher key"
        raise SourceError(
            f"the old store's events cannot be read with {given} ({first_line(error)}); "
            f"expected {FROM_CIPHER_KEY} set to the CASETRAIL_CIPHER_KEY the old store was "
            "written with (unset if it had none)",
            code="cannot_decode",
        ) from None


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
