"""Reading the rows the verifier checks, and the checkpoints table. Plain SQL on the
event store's own database; no verification happens here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from evidence.verifier import CheckpointRow, StoredRow
from store import log_tree
from store.chain_links import CHAIN_TABLE
from store.db import Database

CHECKPOINT_TABLE = "audit_checkpoints"
LINK_COLUMNS = (
    "case_id, version, position, event_type, recorded_at, actor, actor_role, actor_unit, "
    "data_sha256, prev_hash, hash"
)


def create_tables(db: Database) -> None:
    db.execute_script(
        [
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (number {db.serial_primary_key}, "
            "tree_size BIGINT NOT NULL, root_hash TEXT NOT NULL, created_at TEXT NOT NULL, "
            "note TEXT NOT NULL)",
            *log_tree.create_statements(),
        ]
    )


def _bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def read_stored_at(db: Database, events_table: str, positions: Sequence[int]) -> list[StoredRow]:
    if not positions:
        return []
    marks = ", ".join("?" for _ in positions)
    return _read_events(db, events_table, f"{db.position_column} IN ({marks})", list(positions))


def read_case_events(db: Database, events_table: str, case_id: str) -> list[StoredRow]:
    """One case's stored events with their bytes, in position order."""
    return _read_events(db, events_table, "originator_id = ?", [db.stored_id(case_id)])


def _read_events(db: Database, events_table: str, where: str, params: list[Any]) -> list[StoredRow]:
    position = db.position_column
    rows = db.query(
        f"SELECT {position} AS position, originator_id, originator_version, topic, state "
        f"FROM {events_table} WHERE {where} ORDER BY {position}",
        params,
    )
    return [
        StoredRow(
            r["position"],
            r["originator_id"],
            r["originator_version"],
            r["topic"],
            _bytes(r["state"]),
        )
        for r in rows
    ]


def read_snapshots(db: Database, snapshots_table: str, case: str | None = None) -> list[StoredRow]:
    """The stored snapshots, or one case's (position 0: they are not in the log)."""
    where, params = ("", []) if case is None else (" WHERE originator_id = ?", [db.stored_id(case)])
    rows = db.query(
        f"SELECT originator_id, originator_version, topic, state FROM {snapshots_table}{where}",
        params,
    )
    return [StoredRow(0, *(_bytes(value) for value in row.values())) for row in rows]


def read_case_links(db: Database, case_id: str) -> list[dict[str, Any]]:
    return db.query(
        f"SELECT {LINK_COLUMNS} FROM {CHAIN_TABLE} WHERE case_id = ? ORDER BY version",
        (case_id,),
    )


def read_chain_hash(db: Database, position: int) -> str | None:
    row = db.query_one(f"SELECT hash FROM {CHAIN_TABLE} WHERE position = ?", (position,))
    return str(row["hash"]) if row else None


def read_checkpoints(db: Database) -> list[CheckpointRow]:
    rows = db.query(
        f"SELECT number, tree_size, root_hash, note FROM {CHECKPOINT_TABLE} ORDER BY number"
    )
    return [CheckpointRow(**row) for row in rows]


def iter_checkpoints(db: Database, chunk: int = 1_000) -> Iterator[CheckpointRow]:
    """Every checkpoint by number, read `chunk` rows at a time (a store holds one for
    every five minutes of its life)."""
    after: Any = None
    while True:
        where = "" if after is None else f"WHERE number > {int(after)} "
        rows = db.query(
            f"SELECT number, tree_size, root_hash, note FROM {CHECKPOINT_TABLE} {where}"
            f"ORDER BY number LIMIT {int(chunk)}"
        )
        for row in rows:
            yield CheckpointRow(**row)
        if len(rows) < chunk:
            return
        after = rows[-1]["number"]


def latest_checkpoint(db: Database) -> CheckpointRow | None:
    row = db.query_one(
        f"SELECT number, tree_size, root_hash, note FROM {CHECKPOINT_TABLE} "
        "ORDER BY number DESC LIMIT 1"
    )
    return CheckpointRow(**row) if row else None


def insert_checkpoint(
    db: Database, tree_size: int, root_hash: str, created_at: str, note: str
) -> int | None:
    """Stores a checkpoint unless a later one of a larger log got there first (a write
    transaction: it waits for the writer's turn, and the table is locked until commit)."""
    with db.transaction() as cur:
        db.lock_table(cur, CHECKPOINT_TABLE)
        last = cur.execute(f"SELECT MAX(tree_size) AS size FROM {CHECKPOINT_TABLE}").fetchone()
        if last and last["size"] is not None and int(last["size"]) > tree_size:
            return None
        cur.execute(
            f"INSERT INTO {CHECKPOINT_TABLE} (tree_size, root_hash, created_at, note) "
            "VALUES (?, ?, ?, ?)",
            (tree_size, root_hash, created_at, note),
        )
        row = cur.execute(f"SELECT MAX(number) AS number FROM {CHECKPOINT_TABLE}").fetchone()
    return int(row["number"]) if row else None


def as_stored_event(row: StoredRow) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(str(row.case_id)),
        originator_version=int(row.version),
        topic=str(row.topic),
        state=bytes(row.state),
    )
