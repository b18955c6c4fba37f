"""The idempotency keys' table: a command's key, written in the transaction of the events
it appended, so that a retry finds what the first attempt did (or that it did nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent

from store.db import Cursor

IDEMPOTENCY_TABLE = "idempotency_keys"


@dataclass(frozen=True)
class IdempotencyRecord:
    """A command's idempotency key (scoped to its user) and the hash of its request."""

    scope: str
    request_hash: str
    created_at: str


def create_statements() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {IDEMPOTENCY_TABLE} ("
        "scope TEXT PRIMARY KEY, request_hash TEXT NOT NULL, case_id TEXT NOT NULL, "
        "version BIGINT NOT NULL, position BIGINT NOT NULL, created_at TEXT NOT NULL)",
    ]


def record_key(
    cur: Cursor,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    *,
    idempotency: IdempotencyRecord | None = None,
    **_: Any,  # the other keywords of `Application.save` (the chain's)
) -> None:
    """Records the command's key against the last event it appended (if it has one).

    Runs inside the insert transaction: a second command with the same key fails on the
    primary key and appends nothing."""
    if idempotency is None or not stored_events:
        return
    last = stored_events[-1]
    cur.execute(
        f"INSERT INTO {IDEMPOTENCY_TABLE} (scope, request_hash, case_id, version, position, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            idempotency.scope,
            idempotency.request_hash,
            str(last.originator_id),
            last.originator_version,
            positions[-1],
            idempotency.created_at,
        ),
    )
