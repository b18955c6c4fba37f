"""What others vouch for a checkpoint: the witnesses' cosignatures (C2SP tlog-cosignature
lines) and the RFC 3161 timestamp tokens, kept beside the checkpoints. Asking for them is
the cron's checkpoint job's (workers.witnessing), never the append path's."""

from __future__ import annotations

import base64

from store.db import Database

COSIGNATURE_TABLE = "audit_cosignatures"
TIMESTAMP_TABLE = "audit_timestamps"


def create_tables(db: Database) -> None:
    db.execute_script(
        [
            f"CREATE TABLE IF NOT EXISTS {COSIGNATURE_TABLE} (checkpoint_number BIGINT NOT NULL, "
            "tree_size BIGINT NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, "
            "PRIMARY KEY (checkpoint_number, witness))",
            f"CREATE TABLE IF NOT EXISTS {TIMESTAMP_TABLE} (checkpoint_number BIGINT PRIMARY KEY, "
            "token TEXT NOT NULL)",
        ]
    )


def _of(number: int | None, upto: int | None = None) -> tuple[str, list[int]]:
    if number is None:
        return "", []
    if upto is None:
        return " WHERE checkpoint_number = ?", [number]
    return " WHERE checkpoint_number BETWEEN ? AND ?", [number, upto]


def cosignatures(
    db: Database, number: int | None = None, upto: int | None = None
) -> dict[int, list[str]]:
    """The stored cosignature lines (of every checkpoint, of one, or of those numbered
    `number` to `upto`), by checkpoint number."""
    result: dict[int, list[str]] = {}
    where, params = _of(number, upto)
    for row in db.query(
        f"SELECT checkpoint_number, line FROM {COSIGNATURE_TABLE}{where} "
        "ORDER BY checkpoint_number, witness",
        params,
    ):
        result.setdefault(int(row["checkpoint_number"]), []).append(str(row["line"]))
    return result


def timestamps(db: Database, number: int | None = None, upto: int | None = None) -> dict[int, str]:
    """The stored RFC 3161 tokens (base64 DER, of every checkpoint, of one, or of those
    numbered `number` to `upto`), by number."""
    where, params = _of(number, upto)
    rows = db.query(f"SELECT checkpoint_number, token FROM {TIMESTAMP_TABLE}{where}", params)
    return {int(row["checkpoint_number"]): str(row["token"]) for row in rows}


def last_cosigned(db: Database, witness: str) -> int:
    """The largest log size `witness` cosigned, as we keep it (0: none)."""
    row = db.query_one(
        f"SELECT MAX(tree_size) AS size FROM {COSIGNATURE_TABLE} WHERE witness = ?", (witness,)
    )
    return int(row["size"]) if row and row["size"] is not None else 0


def keep(db: Database, table: str, number: int, values: dict[str, object]) -> None:
    """Stores a cosignature or a token of checkpoint `number` (replacing the one before)."""
    where = "checkpoint_number = ?" + (" AND witness = ?" if "witness" in values else "")
    key = (number, values["witness"]) if "witness" in values else (number,)
    columns = ", ".join(["checkpoint_number", *values])
    marks = ", ".join("?" for _ in range(len(values) + 1))
    with db.transaction() as cur:
        cur.execute(f"DELETE FROM {table} WHERE {where}", key)
        cur.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", (number, *values.values()))


def encode_token(token: bytes) -> str:
    return base64.b64encode(token).decode()
