"""Plain SQL on the datastore the events live in: units, users, read models.

Statements are written with `?` placeholders; on PostgreSQL they become `%s`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

# `INSERT INTO t (a, b) VALUES (?, ?) [ON CONFLICT ...]`, with no other placeholder.
MULTI_ROW_INSERT = re.compile(
    r"\s*INSERT INTO (?P<table>\w+) \((?P<columns>[^)]*)\) VALUES \((?:\?, )*\?\)"
    r"(?P<tail>[^?]*)$",
    re.DOTALL,
)
# `UPDATE t SET a = ?, b = ? WHERE k = ?`.
MULTI_ROW_UPDATE = re.compile(
    r"\s*UPDATE (?P<table>\w+) SET (?P<sets>(?:\w+ = \?, )*\w+ = \?) WHERE (?P<key>\w+) = \?$"
)
# Column types of PostgreSQL tables written through `_insert_rows` (table names carry
# their generation, so a name's columns never change).
COLUMN_TYPES: dict[str, dict[str, str]] = {}


class Cursor:
    def __init__(self, raw: Any, dialect: str) -> None:
        self.raw = raw
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        self.raw.execute(sql, tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.dialect == "postgres":
            match = MULTI_ROW_INSERT.match(sql)
            if match is not None and len(rows) > 1:
                self._insert_rows(match, rows)
                return
            match = MULTI_ROW_UPDATE.match(sql)
            if match is not None and len(rows) > 1:
                self._update_rows(match, rows)
                return
            sql = sql.replace("?", "%s")
        self.raw.executemany(sql, [tuple(r) for r in rows])

    def _insert_rows(self, match: re.Match[str], rows: Sequence[Sequence[Any]]) -> None:
        """PostgreSQL: an INSERT of many rows as one statement over column arrays
        (`SELECT * FROM unnest(...)`): one round trip and a short, cached query, where
        psycopg's executemany binds and executes row by row."""
        table, tail = match.group("table"), match.group("tail")
        columns = [column.strip() for column in match.group("columns").split(",")]
        types = self._column_types(table)
        arrays = ", ".join(f"%s::{types[column]}[]" for column in columns)
        self.raw.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}){tail}",
            [list(values) for values in zip(*rows, strict=True)],
        )

    def _update_rows(self, match: re.Match[str], rows: Sequence[Sequence[Any]]) -> None:
        """PostgreSQL: `UPDATE t SET a = ? WHERE k = ?` for many rows (distinct keys) as
        one `UPDATE ... FROM unnest(...)`."""
        table, key = match.group("table"), match.group("key")
        columns = [part.split("=")[0].strip() for part in match.group("sets").split(",")]
        types = self._column_types(table)
        names = [*columns, key]
        arrays = ", ".join(f"%s::{types[column]}[]" for column in names)
        sets = ", ".join(f"{column} = v.{column}" for column in columns)
        self.raw.execute(
            f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}) "
            f"WHERE {table}.{key} = v.{key}",
            [list(values) for values in zip(*rows, strict=True)],
        )

    def _column_types(self, table: str) -> dict[str, str]:
        types = COLUMN_TYPES.get(table)
        if types is None:
            self.raw.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s AND table_schema = current_schema()",
                (table,),
            )
            types = {row["column_name"]: row["data_type"] for row in self.raw.fetchall()}
            COLUMN_TYPES[table] = types
        return types

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


class Database:
    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.dialect = "postgres" if isinstance(datastore, PostgresDatastore) else "sqlite"

    @contextmanager
    def writer(self) -> Iterator[None]:
        """On SQLite, waits for the database's single write lock (`writer_lock`: across
        threads and processes, shared with the appends); on PostgreSQL, nothing."""
        if self.dialect != "sqlite":
            yield
            return
        from casetrail.store.sqlite import writer_lock

        assert isinstance(self.datastore, SQLiteDatastore)
        with writer_lock(self.datastore):
            yield

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Cursor]:
        with self.datastore.transaction(commit=commit) as raw:
            yield Cursor(raw, self.dialect)

    @contextmanager
    def derived_transaction(self) -> Iterator[Cursor]:
        """A write transaction for data derived from the log (read models with their
        tracking records), which a crash may roll back but never corrupt.

        On SQLite it commits with synchronous=NORMAL: in WAL mode the commit is not
        fsynced on its own but by the next durable commit or checkpoint, and the database
        stays consistent after a power cut; what is lost is the last few batches, tracking
        record included, which the next catch-up applies again. The connection goes back
        to the pool at synchronous=FULL: the events' commits stay durable one by one.
        On PostgreSQL, an ordinary transaction.
        """
        if self.dialect != "sqlite":
            with self.transaction() as cur:
                yield cur
            return
        assert isinstance(self.datastore, SQLiteDatastore)
        with self.datastore.get_connection(commit=True) as conn:
            raw = conn._sqlite_conn
            raw.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.transaction(commit=True) as curs:
                    yield Cursor(curs, self.dialect)
            finally:
                raw.execute("PRAGMA synchronous=FULL")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One read statement, on its own: a statement is its own transaction, so without
        the BEGIN and ROLLBACK around it (two calls fewer on SQLite, each giving up the
        GIL; two round trips fewer on PostgreSQL, whose connections are in autocommit).
        Reads that must agree with each other use `transaction(commit=False)`."""
        if isinstance(self.datastore, SQLiteDatastore):
            with self.datastore.get_connection(commit=False) as lite, lite.cursor() as raw:
                return Cursor(raw, self.dialect).execute(sql, params).fetchall()
        with self.datastore.get_connection() as pg, pg.cursor() as raw:
            return Cursor(raw, self.dialect).execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def maintain(self, statements: Sequence[str]) -> None:
        """PostgreSQL: statements that cannot run in a transaction (VACUUM), one by one."""
        if self.dialect != "postgres":
            return
        assert isinstance(self.datastore, PostgresDatastore)
        with self.datastore.get_connection() as conn:
            for statement in statements:
                conn.execute(statement)  # the library's connections are in autocommit

    def execute_script(self, statements: Sequence[str]) -> None:
        """Runs DDL in one transaction; on PostgreSQL under the schema's advisory lock, so
        processes starting at once do not create the same table or index concurrently."""
        with self.transaction() as cur:
            if self.dialect == "postgres":
                from casetrail.store.postgres import schema_lock_key

                cur.execute("SELECT pg_advisory_xact_lock(?)", (schema_lock_key(self.datastore),))
            for statement in statements:
                cur.execute(statement)
