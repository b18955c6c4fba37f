"""Plain SQL on the datastore the events live in: units, users, read models.

Statements are written with `?` placeholders; on PostgreSQL they become `%s`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore


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
            sql = sql.replace("?", "%s")
        self.raw.executemany(sql, [tuple(r) for r in rows])

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
    def transaction(self, *, commit: bool = True) -> Iterator[Cursor]:
        with self.datastore.transaction(commit=commit) as raw:
            yield Cursor(raw, self.dialect)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.transaction(commit=False) as cur:
            return cur.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute_script(self, statements: Sequence[str]) -> None:
        with self.transaction() as cur:
            for statement in statements:
                cur.execute(statement)
