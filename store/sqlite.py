"""The embedded store: SQLite in WAL mode with synchronous=FULL, so that an accepted
command is on disk before its response is sent.

SQLite has one writer at a time. Every writer of casetrail takes `writer_lock` first: the
event and snapshot recorders' write transactions, and through `SQLiteDatabase` every
transaction that commits (read-model batches and their tracking records, checkpoints,
units and users, DDL). Here: the recorders, their factory, and `SQLiteDatabase` with its
cursor (what SQLite does its own way: `?` as it is, bulk writes by executemany, the
writer's turn, a derived transaction without its own fsync).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteTrackingRecorder,
)
from eventsourcing.utils import Environment

from store import beside_events
from store.chain_links import ChainLink
from store.db import Cursor, Database

SYNCHRONOUS_FULL = 2
# Beside the database file: its writers take turns on it (`writer_lock`).
WRITER_LOCK_SUFFIX = ".writer-lock"


@dataclass(eq=False)
class _Writer:
    """The writers of one database in this process: the thread lock they take first, this
    process's descriptor of the lock file beside the database (opened on first use: a
    file lock taken through it is this process's), and the appends waiting to be written
    together (`CaseEventRecorder`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    fd: int | None = None
    mutex: threading.Lock = field(default_factory=threading.Lock)  # guards `pending`
    pending: list[_Pending] = field(default_factory=list)


# (pid, database path) -> its writers. Per process: a forked child starts with its own (a
# lock inherited from a thread of the parent may be held, by a thread the child has not;
# appends its parent had queued are not the child's to write).
_writers: dict[tuple[int, str], _Writer] = {}
_writers_guard = threading.Lock()


def _writer(db_name: str) -> _Writer:
    with _writers_guard:
        return _writers.setdefault((os.getpid(), db_name), _Writer())


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
    writer = _writer(pool.db_name)
    with writer.lock, _file_lock(pool, writer):
        yield


@contextmanager
def _file_lock(pool: SQLiteConnectionPool, writer: _Writer) -> Iterator[None]:
    """The lock file beside the database, for this process (under `writer.lock`)."""
    if pool.is_sqlite_memory_mode:
        yield
        return
    if writer.fd is None:
        writer.fd = os.open(
            f"{pool.db_name}{WRITER_LOCK_SUFFIX}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
    fcntl.flock(writer.fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(writer.fd, fcntl.LOCK_UN)


def release_lock_file(db_name: str) -> None:
    """Closes this process's descriptor of the database's lock file (a pool closed).

    Not while a thread of ours may hold the file lock through it: when the thread lock is
    taken (or this runs from a garbage collection inside a writer), the descriptor stays
    open for the next writer."""
    writer = _writers.get((os.getpid(), db_name))
    if writer is None or not writer.lock.acquire(blocking=False):
        return
    try:
        if writer.fd is not None:
            os.close(writer.fd)
            writer.fd = None
    finally:
        writer.lock.release()


# Prepared statements kept per connection. The library passes `cached_statements=True`,
# which Python reads as a cache of one: every statement was compiled again on each use
# (65-80 us for a one-row SELECT, against 7 us from the cache).
STATEMENT_CACHE = 256


def connect(pool: SQLiteConnectionPool) -> sqlite3.Connection:
    """A connection to `pool`'s database as the library makes one (URI, any thread, its
    lock timeout), with a real statement cache; the library's InterfaceError if it fails."""
    try:
        return sqlite3.connect(
            database=pool.db_name,
            uri=True,
            check_same_thread=False,
            isolation_level=None,  # autocommit: the library issues BEGIN itself
            cached_statements=STATEMENT_CACHE,
            timeout=pool.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
        )
    except (sqlite3.Error, TypeError) as e:
        raise InterfaceError(e) from e


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    """Every connection runs in WAL mode with synchronous=FULL and a real statement cache
    (the library's `_create_connection`, but for those two)."""

    def _create_connection(self) -> SQLiteConnection:
        raw = connect(self)
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                raw.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        raw.row_factory = sqlite3.Row
        raw.execute("PRAGMA synchronous=FULL")
        return SQLiteConnection(sqlite_conn=raw, max_age=self.max_age)

    def close(self) -> None:
        super().close()
        release_lock_file(self.db_name)


class LockedCreate:
    """The library's `create_table` (a write transaction of its own) under `writer_lock`:
    a process that starts while others append creates what is missing in turn."""

    datastore: SQLiteDatastore

    def create_table(self) -> None:
        with writer_lock(self.datastore):
            super().create_table()  # type: ignore[misc]


class LockedRecorder(LockedCreate, SQLiteAggregateRecorder):
    """Writes under `writer_lock`; reads an aggregate's events with one statement. The
    snapshots' recorder, and the base of the events' one."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with writer_lock(self.datastore):
            return super().insert_events(stored_events, **kwargs)

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The library's query, without the BEGIN and ROLLBACK around it: one statement
        is its own read transaction (every append loads its case: a snapshot and the
        events after it)."""
        statement = self.select_events_statement
        params: list[Any] = [
            originator_id.hex if isinstance(originator_id, UUID) else originator_id
        ]
        if gt is not None:
            statement += "AND originator_version>? "
            params.append(gt)
        if lte is not None:
            statement += "AND originator_version<=? "
            params.append(lte)
        statement += "ORDER BY originator_version " + ("DESC " if desc else "ASC ")
        if limit is not None:
            statement += "LIMIT ? "
            params.append(limit)
        with self.datastore.get_connection(commit=False) as conn, conn.cursor() as c:
            c.execute(statement, params)
            return [
                StoredEvent(
                    originator_id=self.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
                for row in c.fetchall()
            ]


# sqlite3's errors as the library's transaction raises them (most specific first).
LIBRARY_ERRORS: tuple[tuple[type[sqlite3.Error], type[PersistenceError]], ...] = (
    (sqlite3.InterfaceError, InterfaceError),
    (sqlite3.DataError, DataError),
    (sqlite3.OperationalError, OperationalError),
    (sqlite3.IntegrityError, IntegrityError),
    (sqlite3.InternalError, InternalError),
    (sqlite3.ProgrammingError, ProgrammingError),
    (sqlite3.NotSupportedError, NotSupportedError),
    (sqlite3.DatabaseError, DatabaseError),
    (sqlite3.Error, PersistenceError),
)


def library_error(error: Exception) -> Exception:
    """The library's exception for an sqlite3 one (what callers of a recorder catch)."""
    for raw, mapped in LIBRARY_ERRORS:
        if isinstance(error, raw):
            chained = mapped(error)
            chained.__cause__ = error
            return chained
    return error


@dataclass(eq=False)
class _Pending:
    """One `insert_linked_events` call waiting to be written, and what came of it."""

    stored_events: Sequence[StoredEvent]
    kwargs: dict[str, Any]
    done: bool = False
    links: list[ChainLink] = field(default_factory=list)
    error: BaseException | None = None


class CaseEventRecorder(LockedRecorder, SQLiteApplicationRecorder):
    """Stored events plus their chain links and idempotency keys, in one transaction.

    Only the transaction runs under `writer_lock`: the events are encoded before it and
    the snapshot is taken after it, so a writer keeps the others waiting for its SQL and
    its commit, not for all of `Application.save` (docs/append-path.md).

    And commits are shared (a group commit): the calls of one process that wait for the
    lock while another writer holds it are written by the first of them to get it, each
    in a savepoint of one transaction (a refused one, e.g. a version conflict, rolls back
    alone), with one COMMIT and one fsync. Each call returns, or raises, only after that
    COMMIT: what it returns is on disk, as when it commits alone."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return [link.position for link in self.insert_linked_events(stored_events, **kwargs)]

    def insert_linked_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[ChainLink]:
        """Writes the events and their chain links (and idempotency key); the links."""
        pool = self.datastore.pool
        writer = _writer(pool.db_name)
        mine = _Pending(stored_events, kwargs)
        with writer.mutex:
            writer.pending.append(mine)
        with writer.lock:
            if not mine.done:  # else written by the thread that had the lock before
                with _file_lock(pool, writer):
                    with writer.mutex:  # everything that queued meanwhile, mine included
                        group, writer.pending = writer.pending, []
                    self._write_group(group)
        if mine.error is not None:
            raise mine.error
        return mine.links

    def _write_group(self, group: list[_Pending]) -> None:
        try:
            with self.datastore.transaction(commit=True) as c:
                if len(group) == 1:
                    group[0].links = self._insert_linked(
                        c, group[0].stored_events, **group[0].kwargs
                    )
                    return
                for pending in group:
                    c.execute("SAVEPOINT pending")
                    try:
                        pending.links = self._insert_linked(
                            c, pending.stored_events, **pending.kwargs
                        )
                    except Exception as error:
                        c.execute("ROLLBACK TO pending")
                        pending.error = library_error(error)
                    c.execute("RELEASE pending")
        except BaseException as error:
            for pending in group:  # nothing of the group was committed
                if pending.error is None:
                    pending.links, pending.error = [], error
            raise
        finally:
            for pending in group:
                pending.done = True

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *beside_events.create_statements(),
        ]

    def _insert_linked(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[ChainLink]:
        positions = list(super()._insert_events(c, stored_events, **kwargs) or [])
        cur = SQLiteDbCursor(c)
        return beside_events.write_beside_events(cur, stored_events, positions, **kwargs)


class TrackingRecorder(LockedCreate, SQLiteTrackingRecorder):
    pass


class Factory(SQLiteFactory):
    aggregate_recorder_class = LockedRecorder
    application_recorder_class = CaseEventRecorder
    tracking_recorder_class = TrackingRecorder

    def __init__(self, env: Environment | dict[str, str] | None):
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = DurableSQLiteConnectionPool(
            db_name=old.db_name, lock_timeout=old.lock_timeout, pool_size=5, max_overflow=20
        )
        old.close()

    def database(self) -> SQLiteDatabase:
        """Plain SQL on this store's database (units, users, checkpoints, read models)."""
        return SQLiteDatabase(self.datastore)

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


# Keys per SELECT of `select_by_keys` (two parameters each; SQLite allows 32,766).
KEYS_PER_SELECT = 500


class SQLiteDbCursor(Cursor):
    """`store.db.Cursor` on SQLite: `?` placeholders as written; many rows by the
    driver's executemany (one prepared statement stepped per row, in C)."""

    def select_by_keys(
        self,
        table: str,
        columns: Sequence[str],
        key_columns: Sequence[str],
        keys: Sequence[Sequence[Any]],
    ) -> list[dict[str, Any]]:
        """An OR of the keys, in chunks (each term an index probe)."""
        condition = "(" + " AND ".join(f"{column} = ?" for column in key_columns) + ")"
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), KEYS_PER_SELECT):
            chunk = keys[start : start + KEYS_PER_SELECT]
            found += self.execute(
                f"SELECT {', '.join(columns)} FROM {table} "
                f"WHERE {' OR '.join([condition] * len(chunk))}",
                [value for key in chunk for value in key],
            ).fetchall()
        return found

    def tuples(self, sql: str) -> list[tuple[Any, ...]]:
        inner = self.raw.sqlite_cursor
        inner.row_factory = None
        inner.execute(sql)
        return list(inner.fetchall())


# (pid, database path) of the databases whose writer lock this thread holds through
# `SQLiteDatabase.writer` (a forked child's thread holds none of its parent's).
_held = threading.local()


def _held_here() -> set[tuple[int, str]]:
    held: set[tuple[int, str]] | None = getattr(_held, "databases", None)
    if held is None:
        held = _held.databases = set()
    return held


class SQLiteDatabase(Database):
    """`store.db.Database` on SQLite. Every transaction that commits waits for the
    writer lock, as the recorders' do.

    Why the lock and not SQLite's busy timeout: a transaction starts with a plain BEGIN
    (deferred, the library's), so a writer that reads first (a checkpoint reads the
    last checkpoint, a user insert checks the unit) holds a read snapshot; if another
    writer commits before it writes, its write is refused at once with "database is
    locked" (SQLITE_BUSY_SNAPSHOT), which no busy handler waits out. Writers that take
    turns never interleave so. A writer of another program (the sqlite3 shell) still
    meets ours at SQLite's lock and its busy timeout (`lock_timeout`)."""

    dialect = "sqlite"
    serial_primary_key = "INTEGER PRIMARY KEY AUTOINCREMENT"
    position_column = "rowid"
    clustered_table_option = " WITHOUT ROWID"

    def use_cache(self, cur: Cursor, kib: int) -> None:
        cur.execute(f"PRAGMA cache_size = -{int(kib)}")

    def add_column(self, table: str, column: str, sql_type: str) -> None:
        if column in self._columns(table):
            return
        try:
            self.execute_script([f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"])
        except sqlite3.OperationalError:  # another process added it meanwhile
            if column not in self._columns(table):
                raise

    def _columns(self, table: str) -> set[str]:
        return {row["name"] for row in self.query(f"PRAGMA table_info({table})")}

    datastore: SQLiteDatastore

    def cursor(self, raw: Any) -> SQLiteDbCursor:
        return SQLiteDbCursor(raw)

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Waits for the database's single write lock (`writer_lock`: across threads and
        processes, shared with the appends); a thread that holds it already goes on."""
        key = (os.getpid(), self.datastore.pool.db_name)
        held = _held_here()
        if key in held:
            yield
            return
        with writer_lock(self.datastore):
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)

    @contextmanager
    def derived_transaction(self) -> Iterator[Cursor]:
        """Commits with synchronous=NORMAL: in WAL mode the commit is not fsynced on its
        own but by the next durable commit or checkpoint, and the database stays
        consistent after a power cut; what is lost is the last few batches, tracking
        record included, which the next catch-up applies again. The connection goes back
        to the pool at synchronous=FULL: the events' commits stay durable one by one."""
        with self.writer(), self.datastore.get_connection(commit=True) as conn:
            raw = conn._sqlite_conn
            raw.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.transaction(commit=True) as curs:
                    yield self.cursor(curs)
            finally:
                raw.execute("PRAGMA synchronous=FULL")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Without the BEGIN and ROLLBACK (two calls fewer, each giving up the GIL)."""
        with self.datastore.get_connection(commit=False) as lite, lite.cursor() as raw:
            return self.cursor(raw).execute(sql, params).fetchall()

    def maintain(self, statements: Sequence[str]) -> None:
        """Nothing: SQLite's plans are fixed by its indexes, and it has no VACUUM that
        read models would need."""

    def lock_table(self, cur: Cursor, table: str) -> None:
        """Nothing more: the transaction holds the writer lock, so no other writes."""

    def stored_id(self, case_id: str) -> Any:
        # eventsourcing stores UUIDs as 32 hex digits in SQLite.
        return case_id.replace("-", "")

    def text_list(self, alias: str, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        rows = ", ".join("(?)" for _ in values)
        return f"(SELECT column1 AS {column} FROM (VALUES {rows})) AS {alias}", list(values)
