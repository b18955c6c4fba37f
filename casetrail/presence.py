"""Is there a store, and can we reach it? Answered without creating anything.

Only the commands meant to make a store (`casetrail init`, `up`, `demo`) create one; the
others ask `require_store` first, so that a wrong data directory or schema is an error
naming it, not a new empty store with a new signing key.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import unquote, urlparse

import psycopg

from casetrail.config import Settings
from domain.errors import CasetrailError
from store.postgres import check_postgres

# The events table each backend's recorder creates first (eventsourcing's names: SQLite's
# default, PostgreSQL's from the application's name, `casetrail`).
SQLITE_EVENTS_TABLE = "stored_events"
POSTGRES_EVENTS_TABLE = "casetrail_events"
CONNECT_TIMEOUT_SECONDS = 5


class NoStore(CasetrailError):
    code = "no_store"


def describe(settings: Settings) -> str:
    """Where the store is, for a person: the directory, or the database and schema."""
    if settings.backend == "sqlite":
        return str(settings.data_dir)
    url = urlparse(settings.database_url or "")
    database = unquote(url.path.lstrip("/")) or "postgres"
    schema = settings.database_schema or "public"
    return f"PostgreSQL database {database} on {url.hostname or 'localhost'}:{url.port or 5432}, schema {schema}"


def store_exists(settings: Settings) -> bool:
    """Whether the events table is there (on PostgreSQL, after `check_postgres`)."""
    if settings.backend == "sqlite":
        path = settings.sqlite_path
        if not path.is_file():
            return False
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                row = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (SQLITE_EVENTS_TABLE,),
                ).fetchone()
            return row is not None
        except sqlite3.Error:
            return True  # a file is there: opening the store will say what is wrong with it
    schema = settings.database_schema or "public"
    with psycopg.connect(
        settings.database_url or "", connect_timeout=CONNECT_TIMEOUT_SECONDS
    ) as conn:
        found = conn.execute(
            "SELECT to_regclass(%s)", (f"{schema}.{POSTGRES_EVENTS_TABLE}",)
        ).fetchone()
    return found is not None and found[0] is not None


def check_reachable(settings: Settings) -> None:
    """PostgreSQL: the server answers, the database and the schema exist."""
    if settings.backend != "postgres":
        return
    url = urlparse(settings.database_url or "")
    check_postgres(
        host=url.hostname or "localhost",
        port=url.port or 5432,
        dbname=unquote(url.path.lstrip("/")) or "postgres",
        user=unquote(url.username or "postgres"),
        password=unquote(url.password or ""),
        schema=settings.database_schema,
    )


def require_store(settings: Settings) -> None:
    """Raises `NoStore`, naming where, unless a store is there."""
    check_reachable(settings)
    if not store_exists(settings):
        where = (
            "the data directory of an existing store (--data-dir or CASETRAIL_DATA_DIR)"
            if settings.backend == "sqlite"
            else "the CASETRAIL_DATABASE_URL and CASETRAIL_DATABASE_SCHEMA of an existing store"
        )
        raise NoStore(
            f"there is no casetrail store in {describe(settings)}; expected {where}, or "
            "`casetrail init` to create one there"
        )
