"""The embedded store: SQLite in WAL mode with synchronous=FULL, so that an accepted
command is on disk before its response is sent.

SQLite has one writer at a time. casetrail's writers (appends with their snapshots, the
read-access log, read-model batches) take `writer_lock` first.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import InterfaceError, PersistenceError, StoredEvent
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteTrackingRecorder,
)
from eventsourcing.utils import Environment

from casetrail.store.extras import create_statements, write_extras

SYNCHRONOUS_FULL = 2
# Beside the database file: its writers take turns on it (`writer_lock`).
WRITER_LOCK_SUFFIX = ".writer-lock"

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def writer_lock(datastore: SQLiteDatastore) -> Iterator[None]:
    """Waits for the database's single write lock, across threads and processes: a thread
    lock per database file, then a file lock beside it.

    Without it writers meet at SQLite's own lock, whose busy handler sleeps 1 to 100 ms
    between tries, and a thread waiting for the pool's writer connection holds the pool's
    fairness semaphore, so every read of its process queues behind the commit in progress
    (docs/append-path.md). A writer that does not take it (a user created from the CLI)
    is still correct: it meets the others at SQLite's lock."""
    pool = datastore.pool
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(pool.db_name, threading.Lock())
    with thread_lock:
        if pool.is_sqlite_memory_mode:
            yield
            return
        with open(f"{pool.db_name}{WRITER_LOCK_SUFFIX}", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


# Prepared statements kept per connection. The library passes `cached_statements=True`,
# which Python reads as a cache of one: every statement was compiled again on each use
# (65-80 us for a one-row SELECT, against 7 us from the cache).
STATEMENT_CACHE = 256


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    """Every connection runs in WAL mode with synchronous=FULL and a real statement cache
    (the library's `_create_connection`, but for those two)."""

    def _create_connection(self) -> SQLiteConnection:
        try:
            raw = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,  # autocommit: the library issues BEGIN itself
                cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                raw.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        raw.row_factory = sqlite3.Row
        raw.execute("PRAGMA synchronous=FULL")
        return SQLiteConnection(sqlite_conn=raw, max_age=self.max_age)


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
