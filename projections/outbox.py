"""The notification outbox: every recorded deadline warning and breach (workers.sweeps),
once, as a row to deliver to the webhook (workers.notify delivers them).

Why it cannot lose a record: the outbox is derived from the hash-chained log, never written
beside it by the sweep. A row is keyed by the record's position in the log, and a scan
cursor says how far the log has been read; `fill()` reads the log after the cursor, inserts
a row for each warning and breach (`ON CONFLICT DO NOTHING`) and moves the cursor, in one
transaction. The log commits in position order (PostgreSQL: the events table is locked
around an append; SQLite: one writer), so nothing is ever committed behind the cursor. A
process killed before the commit leaves the cursor where it was and the next fill reads the
same records again; two fills at once insert the same rows once (the key) and the cursor
only moves forward. So each record gets exactly one row, whatever dies when, and a sweep
does not even have to know the outbox exists.

A row is `pending` until delivered (`delivered`) or given up (`failed`, after retrying for
`give_up` seconds, a day by default). Workers claim due rows for a while (a lease:
`lease_until`), under `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL and the writer lock
on SQLite, so two workers never deliver a row at once; a worker that dies mid-delivery
leaves its lease to lapse and another delivers the row again (at least once, with the same
delivery id, derived from the record's event id: the receiver deduplicates on it). A worker
notes its attempts' outcomes a group at a time, with its next claim (`claim`, `settle`), so
a worker that dies may leave several rows delivered but not yet noted: each is delivered
again, with the same id and the same body. A row whose lease lapsed before it was posted is
handed back, never posted by two workers at once.

Rows hold ids and dates only (case, unit, deadline type, due), never personal data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from casetrail.application import CaseApplication
from casetrail.audit import records as stored
from store.chain_links import CHAIN_TABLE
from store.db import Cursor, Database

OUTBOX_TABLE = "notification_outbox"
CURSOR_TABLE = "notification_cursor"
DELIVERY_NAMESPACE = uuid5(NAMESPACE_URL, "https://casetrail.invalid/webhook-delivery")
NOTIFIED_TYPES = {"DeadlineWarned": "warning", "DeadlineBreached": "breach"}
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
# Log entries read per fill transaction.
SCAN = 5000
ERROR_CHARS = 200


def delivery_id(log_id: str | UUID, version: int) -> str:
    """The delivery id of a record: derived from its event's id (stream and version)."""
    return str(uuid5(DELIVERY_NAMESPACE, f"{UUID(str(log_id))}:{int(version)}"))


def create_tables(db: Database) -> None:
    """The outbox and its scan cursor (once a process per database)."""
    db.once(
        "outbox",
        lambda: db.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} (position BIGINT PRIMARY KEY, "
                "delivery_id TEXT NOT NULL, case_id TEXT NOT NULL, unit TEXT NOT NULL, "
                "deadline TEXT NOT NULL, due TEXT NOT NULL, record TEXT NOT NULL, "
                "detected_at TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, "
                "attempts INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL, "
                "next_attempt_at DOUBLE PRECISION NOT NULL, "
                "lease_until DOUBLE PRECISION NOT NULL, "
                "delivered_at DOUBLE PRECISION, last_error TEXT)",
                # A claim's order, so that it reads its first rows rather than sorting
                # every pending one (121,500 after a first sweep: a sort per claim).
                f"DROP INDEX IF EXISTS {OUTBOX_TABLE}_due",
                f"CREATE INDEX IF NOT EXISTS {OUTBOX_TABLE}_due_in_order ON {OUTBOX_TABLE} "
                "(status, next_attempt_at, position)",
                f"CREATE TABLE IF NOT EXISTS {CURSOR_TABLE} (name TEXT PRIMARY KEY, "
                "position BIGINT NOT NULL)",
            ]
        ),
    )


def body_of(data: dict[str, Any], record: str, detected_at: str, delivery: str) -> str:
    """The webhook's JSON body: ids and dates only, keys sorted, no spaces."""
    return json.dumps(
        {
            "delivery": delivery,
            "case": data["case"],
            "case_kind": data["kind"],
            "unit": data["unit"],
            "deadline": data["deadline"],
            "ref": data["ref"],
            "due": data["due"],
            "state": record,
            "detected_at": detected_at,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


def fill(app: CaseApplication, db: Database, now: float, *, scan: int = SCAN) -> int:
    """Adds an outbox row for each warning and breach recorded since the cursor; the number
    of rows added. Reads the log to its end, `scan` entries a transaction."""
    create_tables(db)
    added = 0
    while True:
        with db.transaction() as cur:
            row = cur.execute(
                f"SELECT position FROM {CURSOR_TABLE} WHERE name = 'deadlines'"
            ).fetchone()
            after = int(row["position"]) if row else 0
            links = cur.execute(
                f"SELECT position, case_id, version, event_type FROM {CHAIN_TABLE} "
                "WHERE position > ? ORDER BY position LIMIT ?",
                (after, scan),
            ).fetchall()
            if not links:
                return added
            wanted = {int(r["position"]): r for r in links if r["event_type"] in NOTIFIED_TYPES}
            rows = []
            recorder: Any = app.recorder
            for found in stored.read_stored_at(db, recorder.events_table_name, sorted(wanted)):
                event: Any = app.mapper.to_domain_event(stored.as_stored_event(found))
                link = wanted[int(found.position)]
                record = NOTIFIED_TYPES[str(link["event_type"])]
                delivery = delivery_id(str(link["case_id"]), int(link["version"]))
                detected_at = event.timestamp.isoformat()
                data = event.data
                rows.append(
                    (
                        int(found.position),
                        delivery,
                        data["case"],
                        data["unit"],
                        data["deadline"],
                        data["due"],
                        record,
                        detected_at,
                        body_of(data, record, detected_at, delivery),
                        PENDING,
                        0,
                        now,
                        now,
                        0.0,
                    )
                )
            if rows:
                cur.executemany(
                    f"INSERT INTO {OUTBOX_TABLE} (position, delivery_id, case_id, unit, "
                    "deadline, due, record, detected_at, body, status, attempts, created_at, "
                    "next_attempt_at, lease_until) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING",
                    rows,
                )
                added += len(rows)
            last = int(links[-1]["position"])
            cur.execute(
                f"INSERT INTO {CURSOR_TABLE} (name, position) VALUES ('deadlines', ?) "
                f"ON CONFLICT (name) DO UPDATE SET position = excluded.position "
                f"WHERE {CURSOR_TABLE}.position < excluded.position",
                (last,),
            )
        if len(links) < scan:
            return added


@dataclass(frozen=True)
class Claimed:
    position: int
    delivery_id: str
    body: str
    attempts: int
    created_at: float
    lease_until: float


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt answered `at`: delivered (`error` None), to be tried
    again at `next_attempt_at`, or given up (`error` set, `next_attempt_at` None)."""

    position: int
    at: float
    error: str | None = None
    next_attempt_at: float | None = None


def claim(
    db: Database,
    now: float,
    lease: float,
    limit: int,
    *,
    done: Sequence[Outcome] = (),
    handed_back: Sequence[Claimed] = (),
) -> list[Claimed]:
    """Up to `limit` pending rows due by `now`, leased until `now + lease`; in the same
    transaction, notes the outcomes `done` and hands back `handed_back` (`settle`)."""
    create_tables(db)
    lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else ""
    lease_until = now + lease
    with db.derived_transaction() as cur:
        _settle(cur, done, handed_back)
        rows = cur.execute(
            f"SELECT position FROM {OUTBOX_TABLE} WHERE status = ? AND next_attempt_at <= ? "
            f"AND lease_until <= ? ORDER BY next_attempt_at, position LIMIT ?{lock}",
            (PENDING, now, now, limit),
        ).fetchall()
        positions = [int(r["position"]) for r in rows]
        if not positions:
            return []
        marks = ", ".join("?" for _ in positions)
        cur.execute(
            f"UPDATE {OUTBOX_TABLE} SET lease_until = ?, attempts = attempts + 1 "
            f"WHERE position IN ({marks})",
            (lease_until, *positions),
        )
        claimed = cur.execute(
            f"SELECT position, delivery_id, body, attempts, created_at FROM {OUTBOX_TABLE} "
            f"WHERE position IN ({marks}) ORDER BY position",
            positions,
        ).fetchall()
    return [
        Claimed(
            int(r["position"]),
            str(r["delivery_id"]),
            str(r["body"]),
            int(r["attempts"]),
            float(r["created_at"]),
            lease_until,
        )
        for r in claimed
    ]


def settle(db: Database, done: Sequence[Outcome], handed_back: Sequence[Claimed] = ()) -> None:
    """Notes the outcomes of attempts, and hands back claimed rows that were not attempted,
    as if never claimed (unless their lease lapsed and another worker claimed them since).
    A row no longer pending (delivered by a worker whose lease had lapsed) is left as it is.

    A derived transaction (on SQLite not fsynced on its own, as the read models'): a power
    cut may undo the last outcomes noted, and those rows are delivered again, with the same
    id; a process killed loses nothing committed."""
    if done or handed_back:
        with db.derived_transaction() as cur:
            _settle(cur, done, handed_back)


def _settle(cur: Cursor, done: Sequence[Outcome], handed_back: Sequence[Claimed]) -> None:
    delivered = [(DELIVERED, o.at, o.position, PENDING) for o in done if o.error is None]
    failed = [
        (
            PENDING if o.next_attempt_at is not None else FAILED,
            o.next_attempt_at or 0.0,
            o.error[:ERROR_CHARS],
            o.position,
            PENDING,
        )
        for o in done
        if o.error is not None
    ]
    if delivered:
        cur.executemany(
            f"UPDATE {OUTBOX_TABLE} SET status = ?, delivered_at = ?, lease_until = 0, "
            "last_error = NULL WHERE position = ? AND status = ?",
            delivered,
        )
    if failed:
        cur.executemany(
            f"UPDATE {OUTBOX_TABLE} SET status = ?, next_attempt_at = ?, lease_until = 0, "
            "last_error = ? WHERE position = ? AND status = ?",
            failed,
        )
    if handed_back:
        cur.executemany(
            f"UPDATE {OUTBOX_TABLE} SET lease_until = 0, attempts = attempts - 1 "
            "WHERE position = ? AND status = ? AND lease_until = ?",
            [(row.position, PENDING, row.lease_until) for row in handed_back],
        )


def _within(units: list[str] | None) -> tuple[str, list[Any]]:
    """The condition on the row's unit: any (None), or one of `units`."""
    if units is None:
        return "1 = 1", []
    if not units:
        return "1 = 0", []
    return f"unit IN ({', '.join('?' for _ in units)})", list(units)


def listing(
    db: Database, status: str | None, offset: int, limit: int, units: list[str] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Outbox rows, newest record first, and how many there are (of that status), of the
    cases of `units` (None: every unit)."""
    create_tables(db)
    where, params = _within(units)
    if status:
        where, params = f"{where} AND status = ?", [*params, status]
    total = db.query_one(f"SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE {where}", params)
    rows = db.query(
        f"SELECT position, delivery_id, case_id, unit, deadline, due, record, detected_at, "
        f"status, attempts, next_attempt_at, delivered_at, last_error FROM {OUTBOX_TABLE} "
        f"WHERE {where} ORDER BY position DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows, int(total["n"]) if total else 0


def counts(db: Database, units: list[str] | None = None) -> dict[str, int]:
    create_tables(db)
    where, params = _within(units)
    rows = db.query(
        f"SELECT status, COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE {where} GROUP BY status", params
    )
    found = {str(r["status"]): int(r["n"]) for r in rows}
    return {status: found.get(status, 0) for status in STATUSES}
