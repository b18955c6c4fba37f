"""The scale-out store: PostgreSQL with synchronous_commit on."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import Environment, retry
from psycopg.sql import SQL

from casetrail.db import Cursor
from casetrail.store.extras import ChainLink, create_statements, write_extras
from casetrail.store.presence import check_postgres


def schema_lock_key(datastore: Any) -> int:
    """The advisory lock that serialises creating the tables of the datastore's schema
    (a signed BIGINT)."""
    schema = getattr(datastore, "schema", None) or "public"
    digest = hashlib.sha256(f"casetrail schema {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def schema_lock(datastore: Any) -> Iterator[None]:
    """Holds the schema's advisory lock (a session lock on a connection of its own).

    Processes that start together (gunicorn's workers, a parallel rebuild's children) each
    create the tables they use. The library's `create_table` ends with `CREATE OR REPLACE
    FUNCTION`, which fails with "tuple concurrently updated" when another session runs it
    at the same moment, and a gunicorn worker that fails to boot stops the whole server.
    """
    key = schema_lock_key(datastore)
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


class SerialCreate:
    """`create_table` under the schema's advisory lock."""

    datastore: Any

    def create_table(self) -> None:
        with schema_lock(self.datastore):
            super().create_table()  # type: ignore[misc]


class CaseEventRecorder(SerialCreate, PostgresApplicationRecorder):
    """Stored events plus their chain links and idempotency keys, in one transaction."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.extend(
            SQL(statement).format() for statement in create_statements(blob="BYTEA")
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return [link.position for link in self.insert_linked_events(stored_events, **kwargs)]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_linked_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[ChainLink]:
        """Writes the events and their chain links (and idempotency key); the links."""
        if not stored_events:
            return []
        with self.datastore.transaction(commit=True) as curs:
            # Locks the table (insert order = commit order), notifies, inserts.
            self._insert_stored_events(curs, stored_events)
            positions = [row["notification_id"] for row in curs.fetchall()]

            def execute(sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
                curs.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
                return list(curs.fetchall()) if curs.description else []

            links = write_extras(
                execute,
                stored_events,
                positions,
                dialect="postgres",
                insert_rows=Cursor(curs, "postgres").executemany,
                **kwargs,
            )
        return links


class TrackingRecorder(SerialCreate, PostgresTrackingRecorder):
    pass


class Factory(PostgresFactory):
    application_recorder_class = CaseEventRecorder
    tracking_recorder_class = TrackingRecorder

    def __init__(self, env: Environment | dict[str, str] | None):
        super().__init__(env)
        # One direct connection first: a missing database or schema, a refused user or a
        # silent server is named at once, not after the pool's 10 s wait.
        check_postgres(
            host=self.env.get(self.POSTGRES_HOST) or "localhost",
            port=int(self.env.get(self.POSTGRES_PORT) or 5432),
            dbname=self.env.get(self.POSTGRES_DBNAME) or "postgres",
            user=self.env.get(self.POSTGRES_USER) or "postgres",
            password=self.env.get(self.POSTGRES_PASSWORD) or "",
            schema=self.env.get(self.POSTGRES_SCHEMA) or None,
        )
        # Our own tables are unqualified: find them in the configured schema.
        # Every commit waits for the WAL flush.
        connect_kwargs: Any = self.datastore.pool.kwargs
        connect_kwargs["options"] = (
            f"-c search_path={self.datastore.schema} -c synchronous_commit=on"
        )

    def check_durability(self) -> None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SHOW synchronous_commit")
            row = curs.fetchone()
        value = row["synchronous_commit"] if row else None
        if value != "on":
            raise PersistenceError(f"PostgreSQL must run with synchronous_commit on (got {value})")
