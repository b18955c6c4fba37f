"""Rewriting a store without per-person keys into a new one with them (docs/privacy.md,
"Migrating an existing store"), and proving the new store says what the old one said.

1. The old store (read only, `cli.old_store`) must verify, every chain and its Merkle log
   against every signed checkpoint, and its last checkpoint must cover its whole log.
2. Every event of its log, in order, is decoded with the old settings and appended to the
   new store through the new store's mapper (each personal field sealed under its record's
   new key) and recorder (which links it into the new store's own chains): the same ids,
   versions, types, data, timestamps and actors, under new positions and new hashes. The
   snapshots go the same way; the tables that are not derived from the log (units, users,
   registers) are copied, and the rows that point into the log (the read-access index,
   idempotency keys, the webhook outbox) are copied with their new positions.
3. Both logs are read again side by side: every event decodes to the same thing, with the
   same chain metadata; a digest over every `old position, old hash, new position, new
   hash` binds the new chain to the old one.
4. An administration act, `StoreMigrated`, names the old log's last signed checkpoint (the
   note itself), its verifier key, the counts and that digest; a checkpoint is signed over
   the new log, and the new store must verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casetrail.administration import AdministrationLog
from casetrail.audit.records import (
    CHECKPOINT_TABLE,
    LINK_COLUMNS,
    as_stored_event,
    latest_checkpoint,
    read_snapshots,
)
from casetrail.bootstrap import Casetrail
from cli.old_store import OldStore
from domain.case import Actor
from domain.errors import CasetrailError
from domain.roles import ADMIN
from evidence.chain import ChainEntry
from evidence.note import Checkpoint, NoteError, open_checkpoint
from projections.outbox import CURSOR_TABLE as OUTBOX_CURSOR_TABLE
from projections.outbox import OUTBOX_TABLE
from projections.outbox import create_tables as create_outbox_tables
from store.access_index import ACCESS_INDEX_TABLE
from store.chain_links import CHAIN_TABLE
from store.db import Database
from store.idempotency import IDEMPOTENCY_TABLE

# Events read, sealed and appended per transaction of the new store.
PAGE = 500
# Who migrates: the store's operator at the console, as for an erasure.
OPERATOR = Actor("console", ADMIN, "")
# Tables not derived from the log: copied as they are.
STATE_TABLES = ("units", "users", "registers")
# Tables whose rows name a position in the log: copied with the new positions.
POSITIONED_TABLES = (ACCESS_INDEX_TABLE, IDEMPOTENCY_TABLE, OUTBOX_TABLE)
CHAIN_METADATA = (
    "case_id",
    "version",
    "event_type",
    "recorded_at",
    "actor",
    "actor_role",
    "actor_unit",
)

Progress = Callable[[int], None]
NO_CHECKPOINT = (
    "the old store has no signed checkpoint (or no events); expected one over its whole "
    "log: casetrail audit checkpoint on the old store"
)


class MigrationRefused(CasetrailError):
    """The old store cannot be migrated as it is; nothing was written (exit 2)."""

    code = "migration_refused"


class MigrationFailed(CasetrailError):
    """The new store does not say what the old one said; it is discarded (exit 2)."""

    code = "migration_failed"


@dataclass(frozen=True)
class OldLog:
    """The old log as verified: its size and its last signed checkpoint."""

    size: int
    checkpoint_number: int
    checkpoint: Checkpoint
    note: str


@dataclass
class Migrated:
    events: int = 0
    snapshots: int = 0
    copied_rows: int = 0
    mapping_sha256: str = ""
    checkpoint_size: int = 0


def verified_old_log(old: OldStore) -> OldLog:
    """The old store verified, with a signed checkpoint over its whole log."""
    if CHECKPOINT_TABLE not in old.tables:
        raise MigrationRefused(NO_CHECKPOINT, code="no_checkpoint")
    report = old.audit.verify()
    if not report.ok:
        shown = "; ".join(f"[{p.code}] {p.message}" for p in report.problems[:3])
        raise MigrationRefused(
            f"the old store does not verify ({len(report.problems)} problem(s): {shown}); "
            "expected a store whose chains and checkpoints verify (casetrail audit verify)",
            code="source_does_not_verify",
        )
    row = latest_checkpoint(old.db)
    if row is None or report.log_size == 0:
        raise MigrationRefused(NO_CHECKPOINT, code="no_checkpoint")
    try:
        checkpoint = open_checkpoint(str(row.note), old.audit.signer.verifier)
    except NoteError as error:  # verify() would have said so; read again since
        raise MigrationRefused(
            f"the old store's last checkpoint does not verify ({error})"
        ) from None
    if checkpoint.size != report.log_size:
        raise MigrationRefused(
            f"the old store's last checkpoint (#{row.number}) covers {checkpoint.size} of its "
            f"{report.log_size} events; expected one over the whole log: stop the old "
            "store's services, then casetrail audit checkpoint on it",
            code="checkpoint_behind",
        )
    return OldLog(report.log_size, int(row.number), checkpoint, str(row.note))


def migrate(old: OldStore, new: Casetrail, log: OldLog, progress: Progress) -> Migrated:
    """Rewrites `old` into `new` (a new store, with per-person keys), checks the result
    event by event, records the act and signs the new log (see the module's doc)."""
    if getattr(new.app.mapper, "keys", None) is None:
        raise MigrationRefused("the new store has no per-person keys; expected a new, empty store")
    done = Migrated()
    for table in STATE_TABLES:
        done.copied_rows += copy_rows(old, new.db, table)
    if OUTBOX_TABLE in old.tables:
        create_outbox_tables(new.db)
    cursor = outbox_cursor(old)
    new_cursor = 0
    after = 0
    while True:
        page = old.app.recorder.select_notifications(after + 1, PAGE)
        if not page:
            break
        links = links_between(old.db, page[0].id, page[-1].id)
        events, chain = [], []
        for notification in page:
            link = links.get(notification.id)
            if link is None:
                raise MigrationRefused(f"the old log has no chain link at {notification.id}")
            events.append(decoded(old, notification))
            chain.append(ChainEntry(*(str(link[name]) for name in CHAIN_METADATA[2:])))
        # As an append stores them: sealed by the mapper, new records' keys written in the
        # events' transaction, each event linked into its chain by the recorder.
        written: list[Any] = new.app.events.put(events, chain=chain)
        moved = {n.id: r.link.position for n, r in zip(page, written, strict=True)}
        done.copied_rows += copy_positioned(old, new.db, moved)
        if cursor is not None:
            new_cursor = max([new_cursor, *(moved[p] for p in moved if p <= cursor)])
        done.events += len(page)
        after = page[-1].id
        progress(len(page))
    if cursor is not None:
        with new.db.transaction() as cur:
            cur.insert_many(OUTBOX_CURSOR_TABLE, ("name", "position"), [("deadlines", new_cursor)])
    done.snapshots = copy_snapshots(old, new)
    if done.events != log.size:
        raise MigrationFailed(f"{done.events} events read from the old log, which has {log.size}")
    done.mapping_sha256 = compare_logs(old, new, log.size)
    record_act(old, new, log, done)
    new.audit.write_checkpoint(force=True)
    report = new.audit.verify()
    if not report.ok:
        shown = "; ".join(f"[{p.code}] {p.message}" for p in report.problems[:3])
        raise MigrationFailed(f"the new store does not verify: {shown}")
    done.checkpoint_size = report.log_size
    return done


def decoded(old: OldStore, notification: Any) -> Any:
    try:
        return old.app.mapper.to_domain_event(notification)
    except Exception as error:  # an event type this code no longer has, bytes it cannot read
        raise MigrationRefused(
            f"the old event at position {notification.id} cannot be read "
            f"({type(error).__name__}: {error}); expected a store this version of casetrail reads",
            code="cannot_decode",
        ) from None


def links_between(db: Database, low: int, high: int) -> dict[int, dict[str, Any]]:
    rows = db.query(
        f"SELECT {LINK_COLUMNS} FROM {CHAIN_TABLE} WHERE position >= ? AND position <= ?",
        (low, high),
    )
    return {int(row["position"]): row for row in rows}


def copy_rows(old: OldStore, new: Database, table: str, where: str = "", params: Any = ()) -> int:
    """The old table's rows (`where`), into the new store's table of that name: the
    columns both have (an older store may lack a column added since)."""
    if table not in old.tables:
        return 0
    rows = old.db.query(f"SELECT * FROM {table} {where}", params)
    return insert_rows(new, table, rows)


def insert_rows(new: Database, table: str, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    wanted = columns_of(new, table)
    columns = [column for column in rows[0] if column in wanted]
    with new.transaction() as cur:
        cur.insert_many(table, columns, [[row[column] for column in columns] for row in rows])
    return len(rows)


def columns_of(db: Database, table: str) -> set[str]:
    if db.dialect == "sqlite":
        return {str(row["name"]) for row in db.query(f"PRAGMA table_info({table})")}
    rows = db.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ?",
        (table,),
    )
    return {str(row["column_name"]) for row in rows}


def copy_positioned(old: OldStore, new: Database, moved: dict[int, int]) -> int:
    """The rows of the positioned tables for the old positions in `moved`, at their new
    positions."""
    low, high = min(moved), max(moved)
    copied = 0
    for table in POSITIONED_TABLES:
        if table not in old.tables:
            continue
        rows = old.db.query(
            f"SELECT * FROM {table} WHERE position >= ? AND position <= ?", (low, high)
        )
        for row in rows:
            position = moved.get(int(row["position"]))
            if position is None:
                raise MigrationRefused(f"{table} names position {row['position']}, not an event")
            row["position"] = position
        copied += insert_rows(new, table, rows)
    return copied


def outbox_cursor(old: OldStore) -> int | None:
    """How far the old outbox has scanned the log (None: it never has)."""
    if OUTBOX_CURSOR_TABLE not in old.tables:
        return None
    row = old.db.query_one(f"SELECT position FROM {OUTBOX_CURSOR_TABLE} WHERE name = 'deadlines'")
    return None if row is None else int(row["position"])


def copy_snapshots(old: OldStore, new: Casetrail) -> int:
    """The old snapshots, sealed by the new mapper (a cache of the replay: `audit verify`
    checks each against its case's events)."""
    old_store: Any = old.app.snapshots
    new_store: Any = new.app.snapshots
    if old_store is None or new_store is None:
        return 0
    table = old_store.recorder.events_table_name
    if table not in old.tables:
        return 0
    rows = read_snapshots(old.db, table)
    for start in range(0, len(rows), PAGE):
        sealed = [
            new.app.mapper.to_stored_event(old.app.mapper.to_domain_event(as_stored_event(row)))
            for row in rows[start : start + PAGE]
        ]
        new_store.recorder.insert_events(sealed)
    return len(rows)


def compare_logs(old: OldStore, new: Casetrail, size: int) -> str:
    """Reads both logs side by side: the first `size` events of the new one must decode
    to the old ones, with the same chain metadata. The digest of the mapping from old
    (position, hash) to new (position, hash), one line an event."""
    digest = hashlib.sha256()
    after_old = after_new = compared = 0
    while compared < size:
        olds = old.app.recorder.select_notifications(after_old + 1, PAGE)
        news = new.app.recorder.select_notifications(after_new + 1, len(olds) or 1)
        if not olds or len(news) != len(olds):
            raise MigrationFailed(
                f"the new log ends after {compared} of the old log's {size} events"
            )
        old_links = links_between(old.db, olds[0].id, olds[-1].id)
        new_links = links_between(new.db, news[0].id, news[-1].id)
        for before, after in zip(olds, news, strict=True):
            where = f"{before.originator_id} v{before.originator_version}"
            if (before.originator_id, before.originator_version, before.topic) != (
                after.originator_id,
                after.originator_version,
                after.topic,
            ):
                raise MigrationFailed(
                    f"the new log has another event where the old one has {where}"
                )
            was = decoded(old, before)
            now = new.app.mapper.to_domain_event(after)
            if type(was) is not type(now) or was.__dict__ != now.__dict__:
                raise MigrationFailed(f"{where} does not decode to the same event in the new store")
            old_link, new_link = old_links[before.id], new_links[after.id]
            if any(str(old_link[n]) != str(new_link[n]) for n in CHAIN_METADATA):
                raise MigrationFailed(f"{where}: its chain metadata differ in the new store")
            digest.update(
                f"{before.id} {old_link['hash']} {after.id} {new_link['hash']}\n".encode()
            )
        compared += len(olds)
        after_old, after_new = olds[-1].id, news[-1].id
    return digest.hexdigest()


def record_act(old: OldStore, new: Casetrail, log: OldLog, done: Migrated) -> None:
    """The audited act of the migration, in the new store's administration log: no
    personal data, the old log's signed checkpoint and what binds the new log to it."""
    data = {
        "from": {
            "backend": old.settings.backend,
            "verifier_key": old.audit.signer.verifier.encode(),
            "log_size": log.size,
            "checkpoint": {
                "number": log.checkpoint_number,
                "origin": log.checkpoint.origin,
                "size": log.checkpoint.size,
                "root": log.checkpoint.root.hex(),
                "time": log.checkpoint.time,
                "note": log.note,
            },
        },
        "events": done.events,
        "snapshots": done.snapshots,
        "mapping_sha256": done.mapping_sha256,
        "mapping": "sha256 of one line per event, in log order: "
        "'<old position> <old hash> <new position> <new hash>\\n'",
    }
    AdministrationLog(new.app, new.db, new.clock).record(
        OPERATOR, "StoreMigrated", data, reason="per-person keys (docs/privacy.md)"
    )
