"""The scale-out store: PostgreSQL with synchronous_commit on.

Here: the recorders, their factory, and `PostgresDatabase` with its cursor (what
PostgreSQL does its own way: `%s` placeholders, bulk writes as one statement over column
arrays, table locks, VACUUM, DDL under the schema's advisory lock). Writers need no turn
of their own: PostgreSQL's row locks let them write side by side.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import (
    ConnectionPool,
    PostgresApplicationRecorder,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import Environment
from psycopg.rows import tuple_row
from psycopg.sql import SQL
from psycopg_pool import PoolTimeout, TooManyRequests

from domain.errors import CasetrailError, ConfigError
from store import beside_events
from store.chain_links import ChainLink
from store.db import Cursor, Database

CONNECT_TIMEOUT_SECONDS = 5

# A server that cannot be reached costs a request a few seconds, not minutes (issue 21).
# While the last attempt to connect failed, a request waits this long for a connection
# (not the pool's whole wait, `POSTGRES_CONNECT_TIMEOUT`), then is refused (503).
WAIT_WHILE_UNREACHABLE_SECONDS = 1.0
# The pool gives up reconnecting in the background after this long; the next request
# that finds no connection tries again at once. (psycopg_pool's default is 5 minutes of
# doubling delays: a server back after a minute waited a minute more to be used.)
RECONNECT_SECONDS = 5.0
# libpq's connection options: a connection attempt, data the server does not
# acknowledge, an idle connection whose peer is gone (a cut cable, not a refusal) end in
# seconds, not at TCP's retransmission timeout (minutes).
LIBPQ_TIMEOUTS = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "tcp_user_timeout": 10_000,  # ms
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
}
# A write that lost its connection (a server restarted, a connection dropped) runs again
# on another: at most this many times, within this long.
WRITE_ATTEMPTS = 10
WRITE_RETRY_SECONDS = 3.0
WRITE_RETRY_PAUSE_SECONDS = 0.2


class DatabaseUnavailable(CasetrailError):
    status = 503
    code = "db_unavailable"


class FailFastPool(ConnectionPool[Any]):
    """The library's pool, which knows whether its last attempt to connect failed: then a
    request that finds no connection waits `WAIT_WHILE_UNREACHABLE_SECONDS` for one, not
    the whole `timeout` (the server refuses now; it is likelier to refuse in 10 s than
    not). The first request after a success waits as usual."""

    unreachable_since: float | None = None

    def _connect(self, timeout: float | None = None) -> Any:
        try:
            conn = super()._connect(timeout=timeout)
        except psycopg.Error:
            if self.unreachable_since is None:
                self.unreachable_since = time.monotonic()
            raise
        self.unreachable_since = None
        return conn

    def getconn(self, timeout: float | None = None) -> Any:
        if timeout is None and self.unreachable_since is not None:
            timeout = min(self.timeout, WAIT_WHILE_UNREACHABLE_SECONDS)
        return super().getconn(timeout=timeout)


def fail_fast_pool(old: Any) -> FailFastPool:
    """A `FailFastPool` with the settings of the (unopened) pool the library made."""
    return FailFastPool(
        get_password_func=old.get_password_func,
        connection_class=old.connection_class,
        kwargs={**old.kwargs, **LIBPQ_TIMEOUTS},
        min_size=old.min_size,
        max_size=old.max_size,
        open=False,
        configure=old._configure,
        timeout=old.timeout,
        max_waiting=old.max_waiting,
        max_lifetime=old.max_lifetime,
        check=old._check,
        reconnect_timeout=RECONNECT_SECONDS,
    )


def unreachable(error: BaseException) -> bool:
    """Whether `error` says that no connection could be had (the pool waited for one in
    vain): trying again would only wait again."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (PoolTimeout, TooManyRequests)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


Written = TypeVar("Written")


def retry_lost_connections(write: Callable[..., Written]) -> Callable[..., Written]:
    """Runs `write` again when its connection failed under it (a restarted server, a
    dropped connection: the next pooled one, or a new one, may work), at most
    `WRITE_ATTEMPTS` times within `WRITE_RETRY_SECONDS`; never when the pool had no
    connection to give (each attempt waited for one: ten attempts stacked ten waits, and a
    request hung for minutes while PostgreSQL was out of reach, issue 21)."""

    @wraps(write)
    def retrying(*args: Any, **kwargs: Any) -> Written:
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        attempt = 1
        while True:
            try:
                return write(*args, **kwargs)
            except (InterfaceError, OperationalError) as error:
                if attempt >= WRITE_ATTEMPTS or unreachable(error) or time.monotonic() >= deadline:
                    raise
            attempt += 1
            time.sleep(WRITE_RETRY_PAUSE_SECONDS * random.uniform(0.95, 1.05))

    return retrying


def check_postgres(
    *, host: str, port: int, dbname: str, user: str, password: str, schema: str | None
) -> None:
    """Connects once, at once, and names the real cause when that fails: a database or a
    schema that does not exist, a refused user, a server that does not answer."""
    where = f"{host}:{port}"
    try:
        conn = psycopg.connect(
            host=host,
            port=port,
            dbname=dbname,
            user=user,
            password=password,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            autocommit=True,
        )
    except psycopg.OperationalError as error:
        cause = str(error).splitlines()[0].rsplit("failed: ", 1)[-1].replace("FATAL:  ", "")
        if f'database "{dbname}" does not exist' in cause:
            raise ConfigError(
                f"CASETRAIL_DATABASE_URL: the database {dbname} does not exist on {where}; "
                f"expected an existing database (create it: createdb -h {host} -p {port} "
                f"-U {user} {dbname})"
            ) from None
        if "authentication failed" in cause or "role" in cause:
            raise ConfigError(
                f"CASETRAIL_DATABASE_URL: {where} refused the user {user}: {cause}; "
                "expected a user and password the server accepts"
            ) from None
        raise DatabaseUnavailable(
            f"CASETRAIL_DATABASE_URL: cannot connect to PostgreSQL at {where}: {cause}; "
            "expected a running server there"
        ) from None
    with conn:
        if schema is not None:
            found = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
            if found is None:
                raise ConfigError(
                    f"CASETRAIL_DATABASE_SCHEMA: the schema {schema} does not exist in the "
                    f"database {dbname} on {where}; expected an existing schema (CREATE "
                    f"SCHEMA {schema})"
                )


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
            SQL(statement).format() for statement in beside_events.create_statements()
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return [link.position for link in self.insert_linked_events(stored_events, **kwargs)]

    @retry_lost_connections
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
            cur = PostgresDbCursor(curs)
            links = beside_events.write_beside_events(cur, stored_events, positions, **kwargs)
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
        # Bounded waits for a server out of reach (`FailFastPool`, `LIBPQ_TIMEOUTS`).
        self.datastore.pool = fail_fast_pool(self.datastore.pool)
        # Our own tables are unqualified: find them in the configured schema.
        # Every commit waits for the WAL flush.
        connect_kwargs: Any = self.datastore.pool.kwargs
        connect_kwargs["options"] = (
            f"-c search_path={self.datastore.schema} -c synchronous_commit=on"
        )

    def database(self) -> PostgresDatabase:
        """Plain SQL on this store's schema (units, users, checkpoints, read models)."""
        return PostgresDatabase(self.datastore)

    def check_durability(self) -> None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SHOW synchronous_commit")
            row = curs.fetchone()
        value = row["synchronous_commit"] if row else None
        if value != "on":
            raise PersistenceError(f"PostgreSQL must run with synchronous_commit on (got {value})")


# Column types of tables written through `insert_many`/`update_many` (read models' table
# names carry their generation, so a name's columns never change).
COLUMN_TYPES: dict[str, dict[str, str]] = {}


class PostgresDbCursor(Cursor):
    """`store.db.Cursor` on PostgreSQL: `?` becomes `%s`; many rows in one statement
    over column arrays (`unnest`), where psycopg's executemany binds and executes row by
    row: one round trip and a short statement text whatever the number of rows, which
    psycopg and the server parse and plan once (prepared)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw.execute(sql.replace("?", "%s"), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(sql.replace("?", "%s"), [tuple(row) for row in rows])

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        on_conflict: str = "",
    ) -> None:
        if len(rows) < 2:
            super().insert_many(table, columns, rows, on_conflict=on_conflict)
            return
        self.raw.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT * FROM unnest({self._arrays(table, columns)}) {on_conflict}",
            [list(values) for values in zip(*rows, strict=True)],
        )

    def update_many(
        self, table: str, columns: Sequence[str], key: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        if len(rows) < 2:
            super().update_many(table, columns, key, rows)
            return
        names = [*columns, key]
        sets = ", ".join(f"{column} = v.{column}" for column in columns)
        self.raw.execute(
            f"UPDATE {table} SET {sets} FROM unnest({self._arrays(table, names)}) "
            f"AS v({', '.join(names)}) WHERE {table}.{key} = v.{key}",
            [list(values) for values in zip(*rows, strict=True)],
        )

    def delete_many(self, table: str, key: str, values: Sequence[Any]) -> None:
        if len(values) < 2:
            super().delete_many(table, key, values)
            return
        self.raw.execute(
            f"DELETE FROM {table} WHERE {key} = ANY({self._arrays(table, [key])})", [list(values)]
        )

    def select_by_keys(
        self,
        table: str,
        columns: Sequence[str],
        key_columns: Sequence[str],
        keys: Sequence[Sequence[Any]],
    ) -> list[dict[str, Any]]:
        """A join with the keys' arrays: one statement text whatever the number of keys
        (an OR list of a new length each time was parsed and planned anew)."""
        if not keys:
            return []
        on = " AND ".join(f"t.{column} = w.{column}" for column in key_columns)
        self.raw.execute(
            f"SELECT {', '.join(f't.{column}' for column in columns)} FROM {table} t "
            f"JOIN unnest({self._arrays(table, key_columns)}) AS w({', '.join(key_columns)}) "
            f"ON {on}",
            [list(values) for values in zip(*keys, strict=True)],
        )
        return self.fetchall()

    def tuples(self, sql: str) -> list[tuple[Any, ...]]:
        self.raw.row_factory = tuple_row
        self.raw.execute(sql)
        return list(self.raw.fetchall())

    def _arrays(self, table: str, columns: Sequence[str]) -> str:
        """A typed array parameter per column, sent in binary (`%b`): psycopg's text format
        quotes every element of a text array with a regular expression (a third of a
        rebuild's time on PostgreSQL went there); binary arrays need no quoting."""
        types = self._column_types(table)
        return ", ".join(f"%b::{types[column]}[]" for column in columns)

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


class PostgresDatabase(Database):
    """`store.db.Database` on PostgreSQL."""

    dialect = "postgres"
    serial_primary_key = "BIGSERIAL PRIMARY KEY"
    position_column = "notification_id"

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """VACUUM (ANALYZE), as autovacuum would do later: ANALYZE gives the planner its
        statistics; VACUUM sets the visibility map, without which an index-only scan still
        visits the table for every entry."""
        self.maintain([f"VACUUM (ANALYZE) {table}" for table in tables])

    def add_column(self, table: str, column: str, sql_type: str) -> None:
        self.execute_script([f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {sql_type}"])

    def cursor(self, raw: Any) -> PostgresDbCursor:
        return PostgresDbCursor(raw)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Without the BEGIN and ROLLBACK (two round trips fewer: the library's
        connections are in autocommit)."""
        with self.datastore.get_connection() as pg, pg.cursor() as raw:
            return self.cursor(raw).execute(sql, params).fetchall()

    def maintain(self, statements: Sequence[str]) -> None:
        with self.datastore.get_connection() as conn:
            for statement in statements:
                conn.execute(statement)  # the library's connections are in autocommit

    def lock_table(self, cur: Cursor, table: str) -> None:
        cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")

    def execute_script(self, statements: Sequence[str]) -> None:
        """Under the schema's advisory lock, so that processes starting at once do not
        create the same table or index concurrently."""
        with self.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(?)", (schema_lock_key(self.datastore),))
            for statement in statements:
                cur.execute(statement)

    def text_list(self, alias: str, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return f"unnest(?::text[]) AS {alias}({column})", [list(values)]
