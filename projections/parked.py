"""Parked events: an event a read model could not decode or apply, kept with its position
and an error that names the exception class only (never its text: it may quote personal
data), instead of being skipped so that the read model drifts unnoticed.

A read model whose rows each concern one case (`partitionable`) parks the failing event
and every later event of the same case, in order, and goes on with the other cases. One
that cannot be isolated stops at the failing event (a *stopping* park): its tracking record
stays just before it until the event is retried or skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from store.db import Cursor, Database

PARKED_TABLE = "rm_parked"

PARKED_TABLES = [
    f"CREATE TABLE IF NOT EXISTS {PARKED_TABLE} (name TEXT NOT NULL, generation BIGINT NOT NULL, "
    "position BIGINT NOT NULL, case_id TEXT NOT NULL, event_type TEXT NOT NULL, "
    "error TEXT NOT NULL, stops BIGINT NOT NULL, parked_at TEXT NOT NULL, "
    "PRIMARY KEY (name, generation, position))",
]


def apply_error(exc: BaseException, event_type: str) -> str:
    """What is stored of a handler's failure: the exception class, not its message."""
    return f"{type(exc).__name__}: the handler for {event_type} failed"


def decode_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: the stored event cannot be decoded"


WAITING = "Waiting: an earlier event of this case is parked"


class Parked:
    """The parked events of the read models of one datastore."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ready = False

    def setup(self) -> None:
        if not self._ready:
            self.db.execute_script(PARKED_TABLES)
            self._ready = True

    def cases(self, name: str, generation: int, reader: Cursor | None = None) -> set[str]:
        """The cases whose events this generation parks (an earlier one is parked)."""
        sql = f"SELECT DISTINCT case_id FROM {PARKED_TABLE} WHERE name = ? AND generation = ?"
        if reader is not None:
            rows = reader.execute(sql, (name, generation)).fetchall()
        else:
            rows = self.db.query(sql, (name, generation))
        return {row["case_id"] for row in rows}

    def stopped_at(self, name: str, generation: int) -> int | None:
        """The position a read model stopped at, if it did."""
        row = self.db.query_one(
            f"SELECT MIN(position) AS position FROM {PARKED_TABLE} "
            "WHERE name = ? AND generation = ? AND stops = 1",
            (name, generation),
        )
        return int(row["position"]) if row and row["position"] is not None else None

    def add(
        self,
        cur: Cursor,
        name: str,
        generation: int,
        rows: list[tuple[int, str, str, str]],
        *,
        stops: bool = False,
    ) -> None:
        """Parks (position, case_id, event_type, error) rows, in the batch's transaction."""
        now = datetime.now(UTC).isoformat()
        for position, case_id, event_type, error in rows:
            cur.execute(
                f"INSERT INTO {PARKED_TABLE} (name, generation, position, case_id, event_type, "
                "error, stops, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name, generation, position) DO NOTHING",
                (name, generation, position, case_id, event_type, error, int(stops), now),
            )

    def rows(self, name: str | None = None) -> list[dict[str, Any]]:
        sql = (
            f"SELECT name, generation, position, case_id, event_type, error, stops, parked_at "
            f"FROM {PARKED_TABLE}"
        )
        params: tuple[Any, ...] = ()
        if name is not None:
            sql += " WHERE name = ?"
            params = (name,)
        rows = self.db.query(sql + " ORDER BY name, generation, position", params)
        return [{**row, "stops": bool(row["stops"])} for row in rows]

    def counts(self) -> dict[tuple[str, int], int]:
        rows = self.db.query(
            f"SELECT name, generation, COUNT(*) AS n FROM {PARKED_TABLE} GROUP BY name, generation"
        )
        return {(row["name"], int(row["generation"])): int(row["n"]) for row in rows}

    def remove(self, cur: Cursor, name: str, generation: int, positions: list[int]) -> None:
        for position in positions:
            cur.execute(
                f"DELETE FROM {PARKED_TABLE} WHERE name = ? AND generation = ? AND position = ?",
                (name, generation, position),
            )
