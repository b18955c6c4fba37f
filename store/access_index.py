"""The read-access index: a row per case a read-access record names, written in the
record's transaction (as the chain links are): "who saw case X" is an index probe. The
record (hash-chained, in the Merkle log) is the evidence; the rows only find it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent

from store.db import Cursor

ACCESS_INDEX_TABLE = "case_access_index"
ACCESS_INDEX_COLUMNS = ("position", "case_id", "actor", "recorded_at", "endpoint", "granted")
# A record that names no case (a search that showed nobody) has one row with this case.
NO_CASE = ""


@dataclass(frozen=True)
class AccessRows:
    """What one read-access record names: its cases, reader, moment and endpoint."""

    cases: Sequence[str]
    actor: str
    recorded_at: str
    endpoint: str
    granted: bool


def create_statements() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {ACCESS_INDEX_TABLE} ("
        "position BIGINT NOT NULL, case_id TEXT NOT NULL, actor TEXT NOT NULL, "
        "recorded_at TEXT NOT NULL, endpoint TEXT NOT NULL, granted SMALLINT NOT NULL, "
        "PRIMARY KEY (position, case_id))",
        f"CREATE INDEX IF NOT EXISTS {ACCESS_INDEX_TABLE}_case "
        f"ON {ACCESS_INDEX_TABLE} (case_id, position)",
        # The coalescing lookup: this reader's recent reads (casetrail.audit.access).
        f"CREATE INDEX IF NOT EXISTS {ACCESS_INDEX_TABLE}_reader "
        f"ON {ACCESS_INDEX_TABLE} (actor, case_id, recorded_at)",
    ]


def write_rows(
    cur: Cursor,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    *,
    access: AccessRows | None = None,
    **_: Any,  # the other keywords of `Application.save` (the chain's, the idempotency key)
) -> None:
    """Indexes the cases the record (the last event saved) names, in its transaction."""
    if access is None or not stored_events:
        return
    position = positions[-1]
    granted = 1 if access.granted else 0
    cur.insert_many(
        ACCESS_INDEX_TABLE,
        ACCESS_INDEX_COLUMNS,
        [
            (position, case, access.actor, access.recorded_at, access.endpoint, granted)
            for case in (access.cases or [NO_CASE])
        ],
    )
