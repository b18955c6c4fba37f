"""The embedded store: SQLite in WAL mode with synchronous=FULL, so that an accepted
command is on disk before its response is sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
    SQLiteTrackingRecorder,
)
from eventsourcing.utils import Environment

from casetrail.store.extras import create_statements, write_extras

SYNCHRONOUS_FULL = 2


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    """Every connection runs with synchronous=FULL and foreign keys on."""

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        raw: sqlite3.Connection = connection._sqlite_conn
        raw.execute("PRAGMA synchronous=FULL")
        return connection


class CaseEventRecorder(SQLiteApplicationRecorder):
    """Stored events plus their chain links and idempotency keys, in one transaction."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *create_statements(blob="BLOB")]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = list(super()._insert_events(c, stored_events, **kwargs) or [])

        def execute(sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
            c.execute(sql, params)
            return [dict(row) for row in c.fetchall()]

        write_extras(execute, stored_events, positions, **kwargs)
        return positions


class Factory(SQLiteFactory):
    application_recorder_class = CaseEventRecorder
    tracking_recorder_class = SQLiteTrackingRecorder

    def __init__(self, env: Environment | dict[str, str] | None):
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = DurableSQLiteConnectionPool(
            db_name=old.db_name, lock_timeout=old.lock_timeout, pool_size=5, max_overflow=20
        )
        old.close()

    def check_durability(self) -> None:
        """Refuses to run unless the database is in WAL mode with synchronous=FULL."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA journal_mode")
            mode = c.fetchone()[0]
            c.execute("PRAGMA synchronous")
            synchronous = c.fetchone()[0]
        if str(mode).lower() != "wal" or synchronous != SYNCHRONOUS_FULL:
            raise PersistenceError(
                f"SQLite must run in WAL mode with synchronous=FULL (got {mode}, {synchronous})"
            )
