"""The registers (名冊) that events name: mediation committees and mediators by unit,
transitional bases with their capacity, correction staff (domain.registers).

An admin keeps the entries of their own subtree (add, change, retire), as they keep its
users; every act is an event of the administration log (casetrail.administration) with
the admin who did it. Entries are never deleted: a retired one stays readable, and the
events that named it stay valid, but no new event may name it.

On every append the service asks `check_named` whether the entries an event names are
registered, active, of the right kind (and post) and of a unit on the case's branch of
the tree (the unit itself, one above it, or one below it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from casetrail.directory import Directory
from domain.case import Actor, CaseEvent
from domain.errors import CasetrailError, InvalidData, NotPermitted, RuleViolation
from domain.registers import (
    BASE,
    CORRECTION_STAFF,
    ENTRY_ID,
    MAX_CAPACITY,
    MEDIATION_COMMITTEE,
    MEDIATOR,
    REGISTER_KINDS,
    STAFF_POSTS,
    named_entries,
)
from domain.roles import ADMIN
from store.db import Cursor, Database

TABLES = [
    "CREATE TABLE IF NOT EXISTS registers (id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
    "unit TEXT NOT NULL, name TEXT NOT NULL, capacity INTEGER, post TEXT, committee TEXT, "
    "active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL, changed_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS registers_kind_unit ON registers (kind, unit)",
]
COLUMNS = "id, kind, unit, name, capacity, post, committee, active"
# The id an entry gets when the admin names none: a prefix by kind, then random hex.
ID_PREFIXES = {MEDIATION_COMMITTEE: "mc_", MEDIATOR: "md_", BASE: "base_", CORRECTION_STAFF: "cs_"}
MAX_NAME = 100


@dataclass(frozen=True)
class RegisterEntry:
    id: str
    kind: str
    unit: str
    name: str
    capacity: int | None = None  # bases: the people they hold
    post: str | None = None  # correction staff: officer or social_worker
    committee: str | None = None  # mediators: the committee they sit on, if registered
    active: bool = True

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class RegisterEntryNotFound(CasetrailError):
    status = 404
    code = "register_entry_not_found"


class RegisterEntryExists(CasetrailError):
    status = 409
    code = "register_entry_exists"


def _entry(row: dict[str, Any]) -> RegisterEntry:
    return RegisterEntry(
        id=row["id"],
        kind=row["kind"],
        unit=row["unit"],
        name=row["name"],
        capacity=None if row["capacity"] is None else int(row["capacity"]),
        post=row["post"],
        committee=row["committee"],
        active=bool(row["active"]),
    )


class Registers:
    def __init__(self, db: Database, directory: Directory) -> None:
        self.db = db
        self.directory = directory

    def create_tables(self) -> None:
        self.db.execute_script(TABLES)

    # --- reading --------------------------------------------------------------------

    def get(self, entry_id: str) -> RegisterEntry | None:
        row = self.db.query_one(f"SELECT {COLUMNS} FROM registers WHERE id = ?", (entry_id,))
        return _entry(row) if row else None

    def entries(self, kind: str | None = None) -> list[RegisterEntry]:
        where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
        rows = self.db.query(f"SELECT {COLUMNS} FROM registers {where} ORDER BY unit, id", params)
        return [_entry(row) for row in rows]

    def version(self, cur: Cursor) -> tuple[int, str]:
        """What changes whenever an entry is added, changed or retired (answers kept by
        it: projections.kept)."""
        row = cur.execute("SELECT COUNT(*) AS n, MAX(changed_at) AS at FROM registers").fetchone()
        return int((row or {}).get("n") or 0), str((row or {}).get("at") or "")

    def on_branch(self, unit: str, other: str) -> bool:
        """Is `other` the unit, one above it, or one below it?"""
        return self.directory.may_act(other, unit) or self.directory.may_act(unit, other)

    def visible(
        self,
        actor: Actor,
        *,
        kind: str | None = None,
        unit: str | None = None,
        active: bool | None = None,
    ) -> list[RegisterEntry]:
        """The entries a user may read: those of their unit's branch (their units above,
        whose bases and committees serve them too, and their subtree); with `unit`, that
        unit's subtree, which must lie inside the user's own."""
        if kind is not None:
            self._check_kind(kind)
        if unit is not None:
            self.directory.require_unit(unit)
            if not self.directory.may_act(actor.unit, unit):
                raise NotPermitted(
                    "This unit is outside your unit's jurisdiction.", code="outside_jurisdiction"
                )
        found = []
        for entry in self.entries(kind):
            if active is not None and entry.active != active:
                continue
            if unit is not None:
                if self.directory.may_act(unit, entry.unit):
                    found.append(entry)
            elif self.on_branch(actor.unit, entry.unit):
                found.append(entry)
        return found

    # --- administration -------------------------------------------------------------

    def add(
        self,
        kind: str,
        unit: str,
        name: str,
        *,
        by: Actor,
        entry_id: str | None = None,
        capacity: int | None = None,
        post: str | None = None,
        committee: str | None = None,
    ) -> RegisterEntry:
        """Enters a committee, mediator, base or staff member in `unit`'s register; an
        admin over that unit only. An `entry_id` given (e.g. the code a base already has,
        which older events name) must be free."""
        self._check_kind(kind)
        self.directory.require_admin_over(by, unit)
        entry = RegisterEntry(
            id=entry_id or ID_PREFIXES[kind] + secrets.token_hex(6),
            kind=kind,
            unit=unit,
            name=name,
            capacity=capacity,
            post=post,
            committee=committee,
        )
        if entry_id is not None and not re.match(ENTRY_ID, entry_id):
            raise InvalidData(
                "A register entry id is 1 to 64 letters, digits, '_', '.' or '-'.",
                details={"id": ["Not a register entry id."]},
            )
        self._check_fields(entry)
        # The id is claimed first (two admins racing for one id: one gets 409, and only
        # the winner's act is logged); a claim whose act cannot be recorded is undone.
        now = _now()
        with self.db.transaction() as cur:
            self.db.lock_table(cur, "registers")
            taken = cur.execute("SELECT id FROM registers WHERE id = ?", (entry.id,)).fetchone()
            if taken is not None:
                raise RegisterEntryExists(
                    f"The register entry {entry.id} exists already.", details={"id": entry.id}
                )
            cur.execute(
                "INSERT INTO registers (id, kind, unit, name, capacity, post, committee, active, "
                "created_at, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (entry.id, kind, unit, name, capacity, post, committee, now, now),
            )
        data = {"entry": entry.id, **{k: v for k, v in entry.as_json().items() if k != "id"}}
        try:
            self._record(by, "RegisterEntryAdded", data)
        except BaseException:
            with self.db.transaction() as cur:
                cur.execute("DELETE FROM registers WHERE id = ?", (entry.id,))
            raise
        return entry

    def change(self, entry_id: str, *, by: Actor, **changes: Any) -> RegisterEntry:
        """Changes an active entry's name, capacity, post or committee (its unit and kind
        stay: another unit's entry is a new one)."""
        entry = self.managed(by, entry_id)
        if not entry.active:
            raise RuleViolation(
                f"The register entry {entry.id} is retired; it is no longer changed.",
                code="register_entry_retired",
                details={"id": entry.id},
            )
        allowed = {"name", "capacity", "post", "committee"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidData(
                "Only name, capacity, post and committee change.",
                details={field: ["Unknown field."] for field in sorted(unknown)},
            )
        new = replace(entry, **{k: v for k, v in changes.items() if v is not None})
        self._check_fields(new)
        if new == entry:
            return entry
        before = {
            k: getattr(entry, k) for k in sorted(allowed) if getattr(entry, k) != getattr(new, k)
        }
        after = {k: getattr(new, k) for k in before}
        self._record(
            by,
            "RegisterEntryChanged",
            {
                "entry": entry.id,
                "kind": entry.kind,
                "unit": entry.unit,
                "before": before,
                "after": after,
            },
        )
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE registers SET name = ?, capacity = ?, post = ?, committee = ?, "
                "changed_at = ? WHERE id = ?",
                (new.name, new.capacity, new.post, new.committee, _now(), entry.id),
            )
        return new

    def retire(self, entry_id: str, *, by: Actor, reason: str) -> RegisterEntry:
        """Retires an entry: no new event may name it; the events that did stay valid. A
        base still holding people may be retired (they stay until their placement ends;
        the occupancy list shows them)."""
        entry = self.managed(by, entry_id)
        if not reason or len(reason) > 200:
            raise InvalidData(
                "Retiring an entry needs a reason of 1 to 200 characters.",
                details={"reason": ["Length."]},
            )
        if not entry.active:
            return entry
        self._record(
            by,
            "RegisterEntryRetired",
            {"entry": entry.id, "kind": entry.kind, "unit": entry.unit},
            reason=reason,
        )
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE registers SET active = 0, changed_at = ? WHERE id = ?", (_now(), entry.id)
            )
        return replace(entry, active=False)

    def managed(self, by: Actor, entry_id: str) -> RegisterEntry:
        """An entry `by` may keep: in their subtree (else not found: ids outside are not
        told)."""
        if by.role != ADMIN:
            raise NotPermitted(
                f"A user with the role '{by.role}' may not do this.", code="role_not_permitted"
            )
        entry = self.get(entry_id)
        if entry is None or not self.directory.may_act(by.unit, entry.unit):
            raise RegisterEntryNotFound(f"There is no register entry {entry_id} in your subtree.")
        return entry

    # --- what events name -----------------------------------------------------------

    def check_named(self, events: Iterable[CaseEvent], case_units: tuple[str, ...]) -> None:
        """Every entry the new events name is registered, active, of the field's kind
        (and post), and of a unit on the branch of one of the case's units."""
        for event in events:
            for field, entry_id in named_entries(event.register_fields, event.data):
                self._check_one(field.path, field.kind, field.post, entry_id, case_units)

    def _check_one(
        self, path: str, kind: str, post: str | None, entry_id: str, case_units: tuple[str, ...]
    ) -> None:
        entry = self.get(entry_id)
        term, unknown = REGISTER_KINDS[kind]
        if entry is None or entry.kind != kind:
            raise RuleViolation(
                f"'{path}' names {entry_id}, which is not a registered {kind} ({term}).",
                code=unknown,
                details={path: entry_id},
            )
        if not entry.active:
            raise RuleViolation(
                f"'{path}' names {entry_id}, which is retired from the register.",
                code="register_entry_retired",
                details={path: entry_id},
            )
        if post is not None and entry.post != post:
            raise RuleViolation(
                f"'{path}' names {entry_id}, registered as {entry.post}, not {post}.",
                code="staff_post_mismatch",
                details={path: entry_id, "post": entry.post},
            )
        if not any(self.on_branch(unit, entry.unit) for unit in case_units):
            raise RuleViolation(
                f"'{path}' names {entry_id} of unit {entry.unit}, not a unit on this "
                "case's branch of the unit tree.",
                code="register_entry_outside_unit",
                details={path: entry_id, "unit": entry.unit},
            )

    # --- internals ------------------------------------------------------------------

    def _record(
        self, by: Actor, event_type: str, data: dict[str, Any], *, reason: str | None = None
    ) -> None:
        log = self.directory.log
        if log is None:
            raise RuntimeError("register acts need the administration log")
        log.record(by, event_type, data, reason=reason)

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in REGISTER_KINDS:
            raise InvalidData(
                f"Unknown register '{kind}'.",
                details={"kind": [f"One of {', '.join(REGISTER_KINDS)}."]},
            )

    def _check_fields(self, entry: RegisterEntry) -> None:
        errors: dict[str, list[str]] = {}
        if not entry.name or len(entry.name) > MAX_NAME:
            errors["name"] = [f"1 to {MAX_NAME} characters."]
        if entry.kind == BASE:
            if entry.capacity is None or not 1 <= entry.capacity <= MAX_CAPACITY:
                errors["capacity"] = [f"A base holds 1 to {MAX_CAPACITY} people."]
        elif entry.capacity is not None:
            errors["capacity"] = ["Only a base has a capacity."]
        if entry.kind == CORRECTION_STAFF:
            if entry.post not in STAFF_POSTS:
                errors["post"] = [f"One of {', '.join(STAFF_POSTS)}."]
        elif entry.post is not None:
            errors["post"] = ["Only correction staff have a post."]
        if entry.committee is not None and entry.kind != MEDIATOR:
            errors["committee"] = ["Only a mediator sits on a committee."]
        if errors:
            raise InvalidData("The register entry is not valid.", details=errors)
        if entry.committee is not None:
            self._check_one("committee", MEDIATION_COMMITTEE, None, entry.committee, (entry.unit,))


def _now() -> str:
    return datetime.now(UTC).isoformat()
