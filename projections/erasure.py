"""Erasure of a person (個人信息保護法 §47): their records' data keys destroyed
(crypto-shredding, casetrail.personal), an erasure act appended to the hash-chained log that
holds no personal data (case ids, kinds, the keys' count, the reason), the records' cached
snapshots dropped, and the case list's row of each record re-projected: its display names
and summary erased, its search terms (keyed hashes) deleted, and the keyed hash that joins
their cases in the re-offending figures (`person`) replaced by the case's own id. The events stay as they were,
so `audit verify` still passes; what they held of the person reads as `[erased]`.

Refused while a record of the person is open, or within its kind's retention period
(`CASETRAIL_RETENTION_DAYS`, e.g. `correction=1825,dispute=365`; none by default) after its
last event. The act, the keys' destruction and the read models' forgetting are one
transaction: a crash leaves all or nothing (projections.retention erases the same way)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from casetrail.administration import append_to_log
from casetrail.bootstrap import Casetrail
from casetrail.personal import ERASED, KEYS_TABLE, SUBJECTS_TABLE, PersonKeys, record_key_ids
from domain.case import Actor, RecordedEvent
from domain.errors import CaseNotFound, InvalidData, RuleViolation
from evidence.envelope import subject_hash
from projections import engine_for
from projections.generations import GENERATIONS_TABLE
from projections.population import forget_person
from projections.readmodel import Tables
from store.access_index import ACCESS_INDEX_TABLE
from store.db import Cursor

ERASURES_ID: UUID = uuid5(NAMESPACE_URL, "https://casetrail.invalid/erasures")


class Erasures(Aggregate):
    """The erasures of one store: one stream, in the chain and the Merkle log."""

    class ErasureEvent(RecordedEvent):
        def apply(self, aggregate: Any) -> None:
            """The log's state is its events."""

    class ErasuresOpened(Aggregate.Created, ErasureEvent):
        """The first erasure opens the log."""

    class PersonErased(ErasureEvent):
        """刪除個人信息: a person's data keys destroyed; `data` names the cases only."""

    class RetentionExpired(ErasureEvent):
        """保存期限屆滿: data whose retention period ended erased by the retention job;
        `data` names months of read-access records, records and kinds only."""

    def __init__(self, **_: Any) -> None:
        """Reconstructed from its events only."""


def erase_person(
    ct: Casetrail, actor: Actor, id_number: str, reason: str, *, console: bool = False
) -> dict[str, Any]:
    """Erases the person with this ID number from every record of theirs (see above): by
    an admin over every record's unit, or (`console`) by the operator of the store."""
    keys: PersonKeys | None = getattr(ct.app.mapper, "keys", None)
    if keys is None:
        raise RuleViolation(
            "This store has no per-person keys: migrate it first (docs/privacy.md).",
            code="no_person_keys",
        )
    if not console:
        ct.directory.require_admin_over(actor)  # the role first: nothing is looked up
    if not reason.strip() or len(reason) > 200:
        raise InvalidData("An erasure needs a reason (at most 200 characters).")
    rows = ct.db.query(
        f"SELECT key_id FROM {SUBJECTS_TABLE} WHERE subject = ? ORDER BY key_id",
        (subject_hash(keys.master, id_number),),
    )
    case_ids = [str(row["key_id"]) for row in rows]
    if not case_ids:
        raise CaseNotFound("No record of this person is held.", code="person_not_found")
    cases = [ct.app.get_case(case_id) for case_id in case_ids]
    if not console and not all(ct.directory.may_act(actor.unit, case.unit) for case in cases):
        # Whether a person has records beyond the admin's reach is not theirs to learn.
        raise CaseNotFound("No record of this person is held.", code="person_not_found")
    retention, now = dict(ct.settings.retention_days), ct.clock.now()
    for case in cases:
        if case.is_open:
            raise RuleViolation(
                "A record of this person is still open.",
                code="case_open",
                details={"case": str(case.id)},
            )
        until = case.last_event_at + timedelta(days=retention.get(case.kind, 0))
        if now < until:
            raise RuleViolation(
                f"A {case.kind} record is kept until {until.date().isoformat()}.",
                code="within_retention",
                details={"case": str(case.id), "until": until.isoformat()},
            )
    data = {
        "cases": [{"id": str(case.id), "kind": case.kind} for case in cases],
        "keys_destroyed": len(case_ids),
    }
    forget = Forgetting.of(ct, case_ids, [k for c in case_ids for k in record_key_ids(c)])
    append_erasure(ct, actor, reason, Erasures.PersonErased, data, also=forget)
    keys.forget(forget.key_ids)
    forget_person_keys(ct, case_ids)
    scrub_freed_space(ct)
    return data


def append_erasure(
    ct: Casetrail,
    actor: Actor,
    reason: str,
    event_class: type[Any],
    data: dict[str, Any],
    *,
    also: Callable[[Cursor], None],
) -> None:
    """Appends the act to the erasures stream, `also` in the same transaction."""
    append_to_log(
        ct.app,
        ct.db,
        ct.clock,
        ERASURES_ID,
        Erasures,
        Erasures.ErasuresOpened,
        event_class,
        actor,
        data,
        reason=reason,
        also=also,
        on_append=ct.service.on_append,
    )


@dataclass(frozen=True)
class Forgetting:
    """What an erasure deletes in its act's transaction: the data keys (and the keyed
    hashes that find them), read-access index rows, and of whole records the case list's
    rows in every generation (names and summary erased, search terms deleted) and their
    snapshots."""

    key_ids: list[str]
    case_ids: list[str]
    display: str
    lists: list[Tables]
    snapshots: str | None
    snapshot_ids: list[Any]
    # Read-access index rows recorded in these [from, to) ranges (index moments).
    access_ranges: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        ct: Casetrail,
        case_ids: list[str],
        key_ids: list[str],
        access_ranges: list[tuple[str, str]] | None = None,
    ) -> Forgetting:
        engine = engine_for(ct)
        lists = []
        try:
            generations = ct.db.query(
                f"SELECT generation FROM {GENERATIONS_TABLE} WHERE name = ?", ("cases",)
            )
        except Exception:  # no read model was ever built in this store
            generations = []
        for row in generations:
            tables = engine.tables("cases", int(row["generation"]))
            try:  # a retired generation whose tables are gone is skipped
                ct.db.query(f"SELECT case_id FROM {tables['list']} LIMIT 1")
            except Exception:
                continue
            lists.append(tables)
        snapshots: Any = ct.app.snapshots
        return cls(
            key_ids,
            case_ids,
            engine.privacy.seal({"names": [ERASED], "summary": ERASED}),
            lists,
            snapshots.recorder.events_table_name if snapshots is not None else None,
            [ct.db.stored_id(case_id) for case_id in case_ids],
            access_ranges or [],
        )

    def __call__(self, cur: Cursor) -> None:
        for table in (KEYS_TABLE, SUBJECTS_TABLE):
            cur.executemany(f"DELETE FROM {table} WHERE key_id = ?", [[k] for k in self.key_ids])
        for since, until in self.access_ranges:
            cur.execute(
                f"DELETE FROM {ACCESS_INDEX_TABLE} WHERE recorded_at >= ? AND recorded_at < ?",
                (since, until),
            )
        for t in self.lists:
            for case_id in self.case_ids:
                cur.execute(f"DELETE FROM {t['terms']} WHERE case_id = ?", (case_id,))
                found = cur.execute(
                    f"SELECT state FROM {t['list']} WHERE case_id = ?", (case_id,)
                ).fetchone()
                if found is None:
                    continue
                state = json.loads(found["state"])
                state.pop("terms", None)  # the keyed hashes kept to move them along
                cur.execute(
                    f"UPDATE {t['list']} SET display = ?, state = ? WHERE case_id = ?",
                    (
                        self.display,
                        json.dumps(state, sort_keys=True, separators=(",", ":")),
                        case_id,
                    ),
                )
        if self.snapshots is not None:
            cur.executemany(
                f"DELETE FROM {self.snapshots} WHERE originator_id = ?",
                [[stored_id] for stored_id in self.snapshot_ids],
            )


# Read models that join a person's cases by the keyed hash of their ID number: the table
# holding it per case, and the table keyed by it (with the rest of its key after '|').
PERSON_KEYED = {
    "correction": ("subjects", "reoffenders", "person"),
    "resettlement": ("people", "reoffences", "person_year"),
}


def forget_person_keys(ct: Casetrail, case_ids: list[str]) -> None:
    """The erased person's keyed hash out of the re-offending read models: the case rows
    lose it, and what was counted under it is kept under the case's id (the figures do
    not change; a later case of the same person is another person)."""
    engine = engine_for(ct)
    for name, (cases, counted, key_column) in PERSON_KEYED.items():
        try:
            generations = ct.db.query(
                f"SELECT generation FROM {GENERATIONS_TABLE} WHERE name = ?", (name,)
            )
        except Exception:  # no read model was ever built in this store
            generations = []
        for row in generations:
            t = engine.tables(name, int(row["generation"]))
            try:
                with ct.db.transaction() as cur:
                    for case_id in case_ids:
                        found = cur.execute(
                            f"SELECT person FROM {t[cases]} WHERE case_id = ?", (case_id,)
                        ).fetchone()
                        if found is None or not found["person"]:
                            continue
                        person = str(found["person"])
                        keys = cur.execute(
                            f"SELECT {key_column} AS k FROM {t[counted]} "
                            f"WHERE {key_column} = ? OR {key_column} LIKE ?",
                            (person, person + "|%"),
                        ).fetchall()
                        for key in keys:
                            rest = str(key["k"])[len(person) :]
                            cur.execute(
                                f"UPDATE {t[counted]} SET {key_column} = ? WHERE {key_column} = ?",
                                (f"case:{case_id}{rest}", key["k"]),
                            )
                        cur.execute(
                            f"UPDATE {t[cases]} SET person = NULL WHERE case_id = ?", (case_id,)
                        )
            except Exception:  # a retired generation whose tables are gone
                continue
            try:
                with ct.db.transaction() as cur:
                    for case_id in case_ids:
                        forget_person(cur, t["stays"], case_id)
            except Exception:  # a generation from before the stays (projections.population)
                continue


def scrub_freed_space(ct: Casetrail) -> None:
    """Deleted and overwritten rows leave their bytes in free pages (and SQLite's WAL) until
    reused: SQLite is rewritten (VACUUM) and its WAL emptied; PostgreSQL's key tables are
    rewritten (VACUUM FULL) and the others vacuumed."""
    if ct.settings.backend == "sqlite":
        with ct.db.writer(), closing(sqlite3.connect(ct.settings.sqlite_path, timeout=30)) as con:
            con.execute("VACUUM")
            for _ in range(50):  # readers still on an old snapshot delay the truncation
                busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    break
                time.sleep(0.1)
        return
    engine = engine_for(ct)
    try:
        generation = engine.active_generation("cases")
    except Exception:  # no read model was ever built in this store
        generation = None
    tables = engine.tables("cases", generation) if generation is not None else None
    snapshots: Any = ct.app.snapshots
    statements = [f"VACUUM FULL {KEYS_TABLE}", f"VACUUM FULL {SUBJECTS_TABLE}"]
    if tables is not None:
        statements += [f"VACUUM {tables['list']}", f"VACUUM {tables['terms']}"]
    for name, (cases, counted, _) in PERSON_KEYED.items():
        try:
            active = engine.active_generation(name)
        except Exception:  # no read model was ever built in this store
            active = None
        if active is not None:
            t = engine.tables(name, active)
            statements += [f"VACUUM {t[cases]}", f"VACUUM {t[counted]}"]
    if snapshots is not None:
        statements.append(f"VACUUM {snapshots.recorder.events_table_name}")
    ct.db.maintain(statements)
