"""The one application service: every command and every audit read goes through here.

HTTP, the CLI and the demo loader call these methods; nothing else writes case events.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from casetrail.application import CaseApplication
from casetrail.chain import ChainEntry
from casetrail.db import Database
from casetrail.directory import Directory
from casetrail.store.chain_links import CHAIN_TABLE, ChainLink
from casetrail.store.idempotency import IDEMPOTENCY_TABLE, IdempotencyRecord
from domain.case import Actor, Case, CaseEvent, Context, require_writer, to_json
from domain.clock import Clock
from domain.errors import (
    CaseNotFound,
    CasetrailError,
    IdempotencyKeyReused,
    InvalidData,
    NotPermitted,
    RuleViolation,
    VersionConflict,
)
from domain.kinds import KINDS

log = logging.getLogger("casetrail.service")

# Appends without expected_version retry when another append took their version; with a
# short random pause, so that a crowd of writers on one case does not starve one of them.
MAX_APPEND_ATTEMPTS = 32
RETRY_PAUSE_SECONDS = 0.004
READ_ROLES = ("caseworker", "supervisor", "auditor")


@dataclass(frozen=True)
class Appended:
    """The answer to an accepted command (or to its idempotent replay)."""

    id: str
    kind: str
    version: int
    position: int
    event: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class _Saved:
    """What `CaseService._save` knows once the transaction committed."""

    position: int
    event: Any  # the last new event, as the aggregate triggered it
    link: ChainLink | None  # its chain link as written (None: read it back)


AppendListener = Callable[[int], None]
# (reader, case ids, operation, granted, refusal code): the audit trail's read-access log.
ReadListener = Callable[[Actor, list[str], str, bool, str | None], None]


class CaseService:
    def __init__(
        self,
        app: CaseApplication,
        db: Database,
        directory: Directory,
        clock: Clock,
        on_append: AppendListener | None = None,
    ) -> None:
        self.app = app
        self.db = db
        self.directory = directory
        self.clock = clock
        self.on_append = on_append
        # Set by casetrail.audit: every read of a case's personal data, granted or denied,
        # is recorded (and a read that cannot be recorded does not happen).
        self.on_read: ReadListener | None = None
        self.access: Any = None

    # --- commands ---------------------------------------------------------------

    def open_case(
        self,
        actor: Actor,
        kind: str,
        unit: str,
        event_type: str,
        data: Any,
        *,
        reason: str | None = None,
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> Appended:
        """Opens a case of `kind` at `unit` with its opening event."""
        request = {
            "op": "open",
            "kind": kind,
            "unit": unit,
            "type": event_type,
            "data": data,
            "reason": reason,
            "note": note,
        }
        replay = self._replay(actor, idempotency_key, request)
        if replay is not None:
            return replay
        case_class = KINDS.get(kind)
        if case_class is None:
            raise InvalidData(
                f"'{kind}' is not a case kind.", details={"kind": [f"One of {', '.join(KINDS)}."]}
            )
        if event_type != case_class.opening_event.__name__:
            raise RuleViolation(
                f"A {kind} case opens with {case_class.opening_event.__name__}, not {event_type}.",
                code="wrong_opening_event",
                details={"expected": case_class.opening_event.__name__},
            )
        self.directory.require_unit(unit)
        self._require_jurisdiction(actor, unit)
        ctx = self._context(actor, reason, note, idempotency_key)
        case = case_class.open(unit, data, ctx)
        self._check_units(case)
        try:
            saved = self._save(case, actor, idempotency_key, request)
        except IntegrityError:
            replay = self._replay(actor, idempotency_key, request)
            if replay is not None:
                return replay
            raise
        return self._answer(case, saved)

    def append(
        self,
        actor: Actor,
        case_id: str,
        event_type: str,
        data: Any,
        *,
        expected_version: int | None = None,
        reason: str | None = None,
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> Appended:
        """Appends an event to a case, if the case's rules allow it now."""
        request = {
            "op": "append",
            "case": case_id,
            "type": event_type,
            "data": data,
            "expected_version": expected_version,
            "reason": reason,
            "note": note,
        }
        for attempt in range(MAX_APPEND_ATTEMPTS):
            replay = self._replay(actor, idempotency_key, request)
            if replay is not None:
                return replay
            case = self._load(case_id)
            try:
                self._require_jurisdiction(actor, case.unit)
                if expected_version is not None and expected_version != case.version:
                    raise VersionConflict(
                        f"The case is at version {case.version}, not {expected_version}.",
                        details={
                            "current_version": case.version,
                            "expected_version": expected_version,
                        },
                    )
                ctx = self._context(actor, reason, note, idempotency_key)
                case.record(event_type, data, ctx)
                self._check_units(case)
            except CasetrailError:
                # A concurrent retry of this very command may have been accepted since the
                # replay check above, changing the case under us: answer as it was answered.
                replay = self._replay(actor, idempotency_key, request)
                if replay is not None:
                    return replay
                raise
            try:
                saved = self._save(case, actor, idempotency_key, request)
            except IntegrityError:
                # Another append won the race for this version (or this key).
                if expected_version is not None:
                    replay = self._replay(actor, idempotency_key, request)
                    if replay is not None:
                        return replay
                    current = self._load(case_id).version
                    raise VersionConflict(
                        f"The case is at version {current}, not {expected_version}.",
                        details={"current_version": current, "expected_version": expected_version},
                    ) from None
                time.sleep(random.uniform(0, RETRY_PAUSE_SECONDS * min(attempt + 1, 8)))
                continue
            return self._answer(case, saved)
        raise VersionConflict(
            "The case kept changing while this event was appended; try again.",
            details={"current_version": self._load(case_id).version},
        )

    # --- audit reads --------------------------------------------------------------

    def case_state(
        self,
        actor: Actor,
        case_id: str,
        *,
        as_of_version: int | None = None,
        as_of: datetime | None = None,
    ) -> dict[str, Any]:
        """The case as it is, or as it was at a version or a moment."""
        case = self._load(case_id)
        self._require_read(actor, case.unit, case_id=str(case.id), operation="case_state")
        if as_of is not None:
            if as_of.tzinfo is None:
                raise InvalidData("'as_of' needs a timezone.", details={"as_of": ["No timezone."]})
            version = self._version_at(case_id, as_of)
            if version is None:
                raise CaseNotFound(
                    f"The case did not exist yet at {as_of.isoformat()}.",
                    details={"as_of": as_of.isoformat()},
                )
            as_of_version = version if as_of_version is None else min(version, as_of_version)
        if as_of_version is not None:
            if as_of_version < 1 or as_of_version > case.version:
                raise CaseNotFound(
                    f"The case has no version {as_of_version} (it is at {case.version}).",
                    details={"current_version": case.version},
                )
            unit = case.unit
            case = self._load(case_id, version=as_of_version)
            # The past is judged by the clock of that moment.
            return redact_minor(actor, case.state(case.last_event_at), unit=unit)
        return redact_minor(actor, case.state(self.clock.now()))

    def history(self, actor: Actor, case_id: str) -> list[dict[str, Any]]:
        case = self._load(case_id)
        self._require_read(actor, case.unit, case_id=str(case.id), operation="history")
        links = {
            row["version"]: row
            for row in self.db.query(
                f"SELECT version, position, hash, prev_hash FROM {CHAIN_TABLE} WHERE case_id = ?",
                (str(case.id),),
            )
        }
        events = [
            event_dict(event, case.kind, links.get(event.originator_version))
            for event in self.app.events.get(case.id)
            if isinstance(event, CaseEvent)
        ]
        if getattr(case, "minor", False) and not sees_minor_identity(actor, case.unit):
            return [redact_identity(event) for event in events]
        return events

    def feed(self, actor: Actor, after: int, limit: int) -> list[dict[str, Any]]:
        """The global log in append order, after a position."""
        if actor.role != "auditor":
            raise NotPermitted("Only auditors read the global event feed.", code="auditors_only")
        notifications = self.app.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        if not notifications:
            return []
        links = {
            row["position"]: row
            for row in self.db.query(
                f"SELECT version, position, hash, prev_hash FROM {CHAIN_TABLE} "
                "WHERE position >= ? AND position <= ?",
                (notifications[0].id, notifications[-1].id),
            )
        }
        items = []
        for notification in notifications:
            event = self.app.mapper.to_domain_event(notification)
            kind = kind_of(event)
            items.append(event_dict(event, kind, links.get(notification.id)))
        read = [item["id"] for item in items if item["kind"] != "unknown"]
        self._record_read(actor, list(dict.fromkeys(read)), "feed", True)
        return items

    def access_log(
        self,
        actor: Actor,
        *,
        case: str | None = None,
        user: str | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Who read which case's personal data, when, through which endpoint (auditors)."""
        if self.access is None:
            return []
        result: list[dict[str, Any]] = self.access.query(
            actor, case=case, user=user, from_=from_, to=to
        )
        return result

    def head_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    # --- internals ------------------------------------------------------------------

    def _context(
        self, actor: Actor, reason: str | None, note: str | None, key: str | None
    ) -> Context:
        return Context(
            actor=actor, now=self.clock.now(), reason=reason, note=note, idempotency_key=key
        )

    def _load(self, case_id: str, version: int | None = None) -> Case:
        try:
            uuid = UUID(str(case_id))
        except ValueError:
            raise CaseNotFound(f"There is no case {case_id}.") from None
        try:
            case: Any = self.app.repository.get(uuid, version=version)
        except AggregateNotFoundError:
            raise CaseNotFound(f"There is no case {case_id}.") from None
        if not isinstance(case, Case):
            raise CaseNotFound(f"There is no case {case_id}.")
        return case

    def _require_jurisdiction(self, actor: Actor, unit: str) -> None:
        require_writer(actor)
        if not self.directory.may_act(actor.unit, unit):
            raise NotPermitted(
                "This case is outside your unit's jurisdiction.", code="outside_jurisdiction"
            )

    def _require_read(
        self, actor: Actor, unit: str, *, case_id: str | None = None, operation: str = "read"
    ) -> None:
        granted = actor.role == "auditor" or (
            actor.role in READ_ROLES and self.directory.may_act(actor.unit, unit)
        )
        if case_id is not None:
            self._record_read(actor, [case_id], operation, granted)
        if not granted:
            raise NotPermitted(
                "This case is outside your unit's jurisdiction.", code="outside_jurisdiction"
            )

    def record_reads(self, actor: Actor, case_ids: list[str], operation: str) -> None:
        """Records granted reads of these cases' personal data made outside the service
        (e.g. a page of the case list that shows names)."""
        self._record_read(actor, list(dict.fromkeys(case_ids)), operation, True)

    def _record_read(
        self, actor: Actor, case_ids: list[str], operation: str, granted: bool
    ) -> None:
        if self.on_read is not None and case_ids:
            refusal = None if granted else "outside_jurisdiction"
            self.on_read(actor, case_ids, operation, granted, refusal)

    def _check_units(self, case: Case) -> None:
        """Units named in the new events' data must exist."""
        for event in case.pending_events:
            assert isinstance(event, CaseEvent)
            for field in event.unit_fields:
                code = event.data.get(field)
                if code is not None and self.directory.get_unit(code) is None:
                    raise InvalidData(
                        f"The unit {code} named in '{field}' does not exist.",
                        details={field: ["Unknown unit."]},
                    )

    def _save(self, case: Case, actor: Actor, key: str | None, request: dict[str, Any]) -> _Saved:
        """Saves the case's new events; the last one, its position and its chain link."""
        chain = [
            ChainEntry(
                event_type=type(event).__name__,
                recorded_at=event.timestamp.isoformat(),
                actor=event.actor,
                actor_role=event.actor_role,
                actor_unit=event.actor_unit,
            )
            for event in case.pending_events
            if isinstance(event, CaseEvent)
        ]
        idempotency = None
        if key is not None:
            idempotency = IdempotencyRecord(
                scope=idempotency_scope(actor, key),
                request_hash=request_hash(request),
                created_at=self.clock.now().isoformat(),
            )
        # The recorder fills `links` with the chain links it wrote in the same transaction.
        links: list[ChainLink] = []
        # On SQLite the recorders take the writer lock for their transactions (store/sqlite).
        recordings = self.app.save(case, chain=chain, idempotency=idempotency, links=links)
        last = recordings[-1]
        position = last.notification.id
        if self.on_append is not None:
            try:
                self.on_append(position)
            except Exception:  # the append is durable; the safety net catches up
                log.warning("could not signal the projection workers", exc_info=True)
        link = links[-1] if links else None
        if link is not None and (
            link.case_id != str(last.domain_event.originator_id)
            or link.version != last.domain_event.originator_version
            or link.position != position
        ):
            link = None
        return _Saved(position, last.domain_event, link)

    def _answer(self, case: Case, saved: _Saved) -> Appended:
        """The answer to an accepted command, from what was just saved (no read back).

        Equal, field for field, to what `_appended` reads back for a replay: the event
        as stored and decoded, and its chain row."""
        event = saved.event
        if saved.link is None or event.originator_version != case.version:
            return self._appended(case, saved.position)
        link = {
            "version": saved.link.version,
            "position": saved.link.position,
            "hash": saved.link.hash,
            "prev_hash": saved.link.prev_hash,
        }
        return Appended(
            id=str(case.id),
            kind=case.kind,
            version=case.version,
            position=saved.position,
            event=event_dict(event, case.kind, link),
        )

    def _appended(self, case: Case, position: int, *, replayed: bool = False) -> Appended:
        events = self.app.events.get(case.id, gt=case.version - 1, lte=case.version)
        event = next(iter(events))
        link = self.db.query_one(
            f"SELECT version, position, hash, prev_hash FROM {CHAIN_TABLE} "
            "WHERE case_id = ? AND version = ?",
            (str(case.id), case.version),
        )
        return Appended(
            id=str(case.id),
            kind=case.kind,
            version=case.version,
            position=position,
            event=event_dict(event, case.kind, link),
            replayed=replayed,
        )

    def _replay(self, actor: Actor, key: str | None, request: dict[str, Any]) -> Appended | None:
        """The first answer to a retried command, or None if the key is new."""
        if key is None:
            return None
        row = self.db.query_one(
            f"SELECT request_hash, case_id, version, position FROM {IDEMPOTENCY_TABLE} "
            "WHERE scope = ?",
            (idempotency_scope(actor, key),),
        )
        if row is None:
            return None
        if row["request_hash"] != request_hash(request):
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used before with a different request.",
                details={"idempotency_key": key},
            )
        case = self._load(row["case_id"], version=int(row["version"]))
        return self._appended(case, int(row["position"]), replayed=True)

    def _version_at(self, case_id: str, moment: datetime) -> int | None:
        row = self.db.query_one(
            f"SELECT MAX(version) AS version FROM {CHAIN_TABLE} "
            "WHERE case_id = ? AND recorded_at <= ?",
            (str(UUID(case_id)), _utc_iso(moment)),
        )
        return int(row["version"]) if row and row["version"] is not None else None


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# Minors' identity is confidential (社區矯正法): names and ID numbers are shown only to
# the staff of the case's own unit and to auditors; the web and the CLI both read here.
REDACTED = "[redacted]"
IDENTITY_FIELDS = ("name", "id_number")


def sees_minor_identity(actor: Actor, case_unit: str | None) -> bool:
    return actor.role == "auditor" or actor.unit == case_unit


def redact_minor(actor: Actor, state: dict[str, Any], *, unit: str | None = None) -> dict[str, Any]:
    """A case's state (or read-model row) with a minor's identity hidden from those not entitled."""
    if not state.get("minor") or sees_minor_identity(actor, unit or state.get("unit")):
        return state
    return redact_identity(state)


def redact_identity(value: Any) -> Any:
    """`value` with the identity fields of every `person` in it (and `names`) replaced."""
    if isinstance(value, list):
        return [redact_identity(item) for item in value]
    if not isinstance(value, dict):
        return value
    redacted = {key: redact_identity(item) for key, item in value.items()}
    person = redacted.get("person")
    if isinstance(person, dict):
        redacted["person"] = {
            key: REDACTED if key in IDENTITY_FIELDS else item for key, item in person.items()
        }
    if isinstance(redacted.get("names"), list):  # a read-model row's display names
        redacted["names"] = [REDACTED for _ in redacted["names"]]
    return redacted


def idempotency_scope(actor: Actor, key: str) -> str:
    return f"{actor.user_id}\x1f{key}"


def request_hash(request: dict[str, Any]) -> str:
    encoded = json.dumps(
        request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


def kind_of(event: Any) -> str:
    """The case kind an event belongs to, from the module of its class."""
    for kind, case_class in KINDS.items():
        if type(event) in case_class.events:
            return kind
    return "unknown"


def event_dict(event: Any, kind: str, link: dict[str, Any] | None) -> dict[str, Any]:
    """An event with the fields DOMAIN.md lists, its position and its chain hash."""
    return {
        "type": type(event).__name__,
        "id": str(event.originator_id),
        "kind": kind,
        "version": event.originator_version,
        "position": int(link["position"]) if link else None,
        "recorded_at": event.timestamp.isoformat(),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "actor_unit": event.actor_unit,
        "reason": event.reason,
        "note": event.note,
        "idempotency_key": event.idempotency_key,
        "data": to_json(event.data),
        "unit": getattr(event, "unit", None),
        "hash": link["hash"] if link else None,
        "prev_hash": link["prev_hash"] if link else None,
    }
