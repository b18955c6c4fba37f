"""A store opened to be read only (the migration reads an old store: docs/privacy.md): the
database itself refuses every write, and opening it creates and changes nothing.

SQLite: a `file:…?mode=ro` URI and `PRAGMA query_only`. A database without a WAL beside it
(closed cleanly: every commit is in the main file, and no process has it open) is opened
`immutable=1`, so SQLite makes no `-wal` or `-shm` beside it and takes no lock; a plain
`mode=ro` would leave both files behind. With a WAL there (a process has the store open, or
one died), the WAL holds commits that must be read: SQLite reads it without writing it or
the database, through its shared-memory index (`-shm`), which it may create or update
(that file is SQLite's lock and index, not data).

PostgreSQL: every transaction of the pool's connections is read-only
(`default_transaction_read_only`), as `SET TRANSACTION READ ONLY` makes one.

Either factory is named by `PERSISTENCE_MODULE` with `CREATE_TABLE=no`: the library then
creates no table either.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from eventsourcing.persistence import InterfaceError, PersistenceError
from eventsourcing.sqlite import (
    SQLiteConnection,
    SQLiteConnectionPool,
)
from eventsourcing.utils import Environment

from store import postgres, sqlite


def sqlite_uri(path: Path) -> str:
    """The URI that opens the SQLite database at `path` for reading only (see above)."""
    wal = path.with_name(path.name + "-wal")
    immutable = not wal.exists() or wal.stat().st_size == 0
    return f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")


class ReadOnlySQLitePool(SQLiteConnectionPool):
    """Connections that cannot write: no journal mode is set, `query_only` is on."""

    def _create_connection(self) -> SQLiteConnection:
        raw = sqlite.connect(self)
        try:
            raw.execute("PRAGMA query_only = ON")
        except sqlite3.Error as e:
            raise InterfaceError(e) from e
        raw.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=raw, max_age=self.max_age)


class ReadOnlySQLiteDatabase(sqlite.SQLiteDatabase):
    """Refuses a write before taking the writer lock (whose file it would make)."""

    @contextmanager
    def writer(self) -> Iterator[None]:
        raise PersistenceError("this store is open to be read only")
        yield  # a generator, for contextmanager


class SQLiteReader(sqlite.Factory):
    """`store.sqlite.Factory` on read-only connections (`SQLITE_DBNAME`: a `sqlite_uri`)."""

    def database(self) -> ReadOnlySQLiteDatabase:
        return ReadOnlySQLiteDatabase(self.datastore)

    def __init__(self, env: Environment | dict[str, str] | None):
        super().__init__(env)
        made = self.datastore.pool
        self.datastore.pool = ReadOnlySQLitePool(
            db_name=made.db_name, lock_timeout=made.lock_timeout, pool_size=5, max_overflow=20
        )
        made.close()  # never connected


class PostgresReader(postgres.Factory):
    """`store.postgres.Factory` whose sessions run every transaction read-only."""

    def __init__(self, env: Environment | dict[str, str] | None):
        super().__init__(env)
        connect_kwargs: Any = self.datastore.pool.kwargs  # the pool has not connected yet
        connect_kwargs["options"] += " -c default_transaction_read_only=on"
