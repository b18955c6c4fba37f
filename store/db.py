"""Plain SQL on the datastore the events live in: units, users, checkpoints, read models.

The base of the two stores' `Database` and `Cursor`: what every store does alike.
Statements are written with `?` placeholders in the SQL both stores share; what differs
between them (placeholders, bulk writes, the writer's turn, DDL words) is a method that
each store's subclass implements in its own module, `store.sqlite` and
`store.postgres`. The store's `Factory.database()` builds the right one. This
module imports neither: the stores import it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar


class Cursor(ABC):
    """A cursor of the library's datastore (`raw`), with rows as dictionaries and bulk
    writes that name their table and columns instead of being parsed from SQL."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw.execute(sql, tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement, run once per row (the driver's executemany)."""
        self.raw.executemany(sql, [tuple(row) for row in rows])

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        on_conflict: str = "",
    ) -> None:
        """`INSERT INTO table (columns) VALUES (...) on_conflict` for every row, each row
        a value per column; `on_conflict` (e.g. `ON CONFLICT (k) DO NOTHING`) is appended
        as written."""
        if not rows:
            return
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {on_conflict}"
        if len(rows) == 1:
            self.execute(sql, rows[0])
        else:
            self.executemany(sql, rows)

    def update_many(
        self, table: str, columns: Sequence[str], key: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        """`UPDATE table SET column = ?, ... WHERE key = ?` for every row (distinct keys),
        each row the new values in the order of `columns`, then the key."""
        if not rows:
            return
        sets = ", ".join(f"{column} = ?" for column in columns)
        self.executemany(f"UPDATE {table} SET {sets} WHERE {key} = ?", rows)

    def delete_many(self, table: str, key: str, values: Sequence[Any]) -> None:
        """`DELETE FROM table WHERE key = ?` for every value."""
        if values:
            self.executemany(f"DELETE FROM {table} WHERE {key} = ?", [(v,) for v in values])

    @abstractmethod
    def select_by_keys(
        self,
        table: str,
        columns: Sequence[str],
        key_columns: Sequence[str],
        keys: Sequence[Sequence[Any]],
    ) -> list[dict[str, Any]]:
        """The rows of `table` whose `key_columns` equal one of `keys` (`columns` of each)."""

    @abstractmethod
    def tuples(self, sql: str) -> list[tuple[Any, ...]]:
        """Every row of a query as a plain tuple, without a dictionary per row (the
        verifier reads the whole store at once)."""

    def fetchall(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.raw.fetchall()]

    def fetchone(self) -> dict[str, Any] | None:
        row = self.raw.fetchone()
        return dict(row) if row is not None else None

    def scalar(self) -> Any:
        row = self.raw.fetchone()
        if row is None:
            return None
        return next(iter(dict(row).values()))

    @property
    def rowcount(self) -> int:
        return int(self.raw.rowcount)


class Database(ABC):
    """SQL on one datastore of the library. A store's subclass says how it writes in
    turn, how it commits derived data, and the words of its DDL."""

    # Which store: for logs and for the code that has not yet moved its difference here.
    dialect: ClassVar[str]
    # DDL: an integer key that the store assigns in increasing order.
    serial_primary_key: ClassVar[str]
    # The column that holds an event's position in the library's events table.
    position_column: ClassVar[str]

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        self._done: set[str] = set()
        self._done_lock = threading.Lock()

    def once(self, name: str, setup: Callable[[], None]) -> None:
        """Runs `setup` the first time `name` is asked of this database object (tables a
        module creates on first use). Kept on the object, not by `id()`, which a later
        database may reuse once this one is gone."""
        with self._done_lock:
            if name in self._done:
                return
            setup()
            self._done.add(name)

    @abstractmethod
    def cursor(self, raw: Any) -> Cursor:
        """This store's `Cursor` over one of the library's cursors."""

    @contextmanager
    def writer(self) -> Iterator[None]:
        """The writer's turn: held around a write transaction, so that writers take turns
        instead of failing on each other. Re-entrant within a thread."""
        yield

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Cursor]:
        """A transaction; one that commits (`commit=True`) waits for the writer's turn."""
        if not commit:
            with self.datastore.transaction(commit=False) as raw:
                yield self.cursor(raw)
            return
        with self.writer(), self.datastore.transaction(commit=True) as raw:
            yield self.cursor(raw)

    @contextmanager
    def derived_transaction(self) -> Iterator[Cursor]:
        """A write transaction for data derived from the log (read models with their
        tracking records), which a crash may roll back but never corrupt. By default an
        ordinary one."""
        with self.transaction() as cur:
            yield cur

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One read statement, on its own: a statement is its own transaction, so without
        the BEGIN and ROLLBACK around it. Reads that must agree with each other use
        `transaction(commit=False)`."""

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    def maintain(self, statements: Sequence[str]) -> None:
        """Statements that cannot run in a transaction (PostgreSQL's VACUUM), one by one."""

    @abstractmethod
    def lock_table(self, cur: Cursor, table: str) -> None:
        """Until `cur`'s transaction (one that commits) ends, no other transaction writes
        `table`."""

    def execute_script(self, statements: Sequence[str]) -> None:
        """Runs DDL in one transaction, one process at a time."""
        with self.transaction() as cur:
            for statement in statements:
                cur.execute(statement)

    # The table option that stores rows in their primary key's B-tree, where the store has one.
    clustered_table_option = ""

    def use_cache(self, cur: Cursor, kib: int) -> None:
        """A page cache of `kib` for this transaction's connection, where the store sizes
        its cache per connection (bulk work on read models outgrows the default)."""
        return  # a store that sizes its cache once, for every connection

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """After a bulk fill of these tables: the planner's statistics, where the store
        keeps them apart from the data."""
        return  # a store whose plans its indexes fix

    @abstractmethod
    def add_column(self, table: str, column: str, sql_type: str) -> None:
        """Adds a column to a table made by an earlier version, unless it is there (any
        number of processes may try at once)."""

    def stored_id(self, case_id: str) -> Any:
        """A case id as the library's events table stores it."""
        return case_id

    @abstractmethod
    def text_list(self, alias: str, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        """A FROM item `alias` with one row per value in its column `column` (to join a
        list of keys against a table), and its parameters."""
