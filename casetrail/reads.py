"""Reads of the event streams themselves, for auditors and a case's own staff: a case as it
is or was, its history, the global feed and who read what. Every read of a case's personal
data, granted or refused, is recorded (and a read that cannot be recorded does not happen).

Lists and figures are read from the read models (projections), not here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from casetrail.application import CaseApplication
from casetrail.audit.access import MAX_RESULTS, ReadAccessLog, Search
from casetrail.directory import Directory
from casetrail.events import event_dict, kind_of, utc_iso
from casetrail.privacy import redact_identity, redact_minor, sees_minor_identity
from domain.case import Actor, Case, CaseEvent
from domain.clock import Clock, cst_date
from domain.errors import CaseNotFound, InvalidData, NotPermitted
from domain.roles import READ_ROLES
from domain.sealing import RecordSealed, Sealable
from store.chain_links import CHAIN_TABLE
from store.db import Database


class StreamReads:
    def __init__(
        self,
        app: CaseApplication,
        db: Database,
        directory: Directory,
        clock: Clock,
        access: ReadAccessLog,
    ) -> None:
        self.app = app
        self.db = db
        self.directory = directory
        self.clock = clock
        self.access = access

    def case_state(
        self,
        actor: Actor,
        case_id: str,
        *,
        as_of_version: int | None = None,
        as_of: datetime | None = None,
    ) -> dict[str, Any]:
        """The case as it is, or as it was at a version or a moment."""
        case = self.app.get_case(case_id)
        self._require_read(actor, case, operation="case_state")
        if as_of is not None:
            if as_of.tzinfo is None:
                raise InvalidData("'as_of' needs a timezone.", details={"as_of": ["No timezone."]})
            version = self.version_at(case_id, as_of)
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
            case = self.app.get_case(case_id, version=as_of_version)
            # The past is judged by the clock of that moment.
            return redact_minor(
                actor, case.state(case.last_event_at), unit=unit, today=self._today()
            )
        return redact_minor(actor, case.state(self.clock.now()), today=self._today())

    def history(self, actor: Actor, case_id: str) -> list[dict[str, Any]]:
        case = self.app.get_case(case_id)
        self._require_read(actor, case, operation="history")
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
            return [redact_identity(event, today=self._today()) for event in events]
        return events

    def feed(self, actor: Actor, after: int, limit: int) -> list[dict[str, Any]]:
        """The global log in append order, after a position."""
        self.directory.require_whole_log_reader(actor)
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
        read = list(dict.fromkeys(item["id"] for item in items if item["kind"] != "unknown"))
        self._record_read(actor, read, "feed", True)
        # A sealed record is provided to no one (刑事訴訟法 §286): its events keep their
        # place and hash in the feed, not their personal fields.
        sealed = self._sealed_among(read)
        return [
            redact_identity(item, today=self._today()) if item["id"] in sealed else item
            for item in items
        ]

    def _sealed_among(self, case_ids: list[str]) -> set[str]:
        """Which of these cases are sealed (a RecordSealed in their chain)."""
        if not case_ids:
            return set()
        wanted, params = self.db.text_list("w", "case_id", case_ids)
        rows = self.db.query(
            f"SELECT w.case_id FROM {wanted} WHERE EXISTS (SELECT 1 FROM {CHAIN_TABLE} c "
            "WHERE c.case_id = w.case_id AND c.event_type = ?)",
            [*params, RecordSealed.__name__],
        )
        return {str(row["case_id"]) for row in rows}

    def access_log(self, actor: Actor, **filters: Any) -> list[dict[str, Any]]:
        """The first page (up to 1,000) of `access_page`'s items."""
        return self.access_page(actor, **filters)[0]

    def access_page(
        self,
        actor: Actor,
        *,
        case: str | None = None,
        user: str | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        after: str | None = None,
        limit: int = MAX_RESULTS,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Who read which case's personal data, when, through which endpoint (auditors):
        a page after a cursor, and the next page's cursor (None: no more)."""
        self.directory.require_whole_log_reader(actor)
        return self.access.query(
            actor, case=case, user=user, from_=from_, to=to, after=after, limit=limit
        )

    def version_at(self, case_id: str, moment: datetime) -> int | None:
        """The case's last version recorded at or before `moment` (None: not yet opened)."""
        row = self.db.query_one(
            f"SELECT MAX(version) AS version FROM {CHAIN_TABLE} "
            "WHERE case_id = ? AND recorded_at <= ?",
            (str(UUID(case_id)), utc_iso(moment)),
        )
        return int(row["version"]) if row and row["version"] is not None else None

    def _today(self) -> date:
        return cst_date(self.clock.now())

    def head_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def record_reads(
        self,
        actor: Actor,
        case_ids: list[str],
        operation: str,
        *,
        search: Search | None = None,
    ) -> None:
        """Records granted reads of these cases' personal data made outside this class
        (e.g. a page of the case list that shows names), in one record; with `search`
        (a query, recorded as its keyed hash, and the total it found), even if no case is shown."""
        self.access.record(actor, case_ids, operation, granted=True, search=search)

    def require_reach(self, actor: Actor, case_id: str) -> None:
        """The case exists and is within the actor's reach (Case.reach_units); else 404, the
        answer for an id that does not exist (issue 14: `audit verify` of a case outside a
        district auditor's reach told that the id is taken, and how many events it has)."""
        case = self.app.get_case(case_id)
        if not self.directory.reaches(actor.unit, case.reach_units()):
            raise CaseNotFound(f"There is no case {case_id}.")

    def _require_read(self, actor: Actor, case: Case, *, operation: str) -> None:
        """Outside the units that reach the case (Case.reach_units) it does not exist for
        the reader (404); a role that never reads cases: 403; a sealed record (domain.sealing)
        only for the two people of an opening running now: 403 `sealed`. Each is recorded
        with its reason, and every read of a sealed record has a record of its own, naming
        the opening it was made under."""
        case_id = str(case.id)
        within = self.directory.reaches(actor.unit, case.reach_units())
        refusal = None
        if not within:
            refusal = "outside_jurisdiction"
        elif actor.role not in READ_ROLES:
            refusal = "role_cannot_read"
        sealed = bool(getattr(case, "sealed", False))
        opening = None
        if sealed and refusal is None:
            assert isinstance(case, Sealable)
            opening = case.opening_for(actor.user_id, self.clock.now())
            if opening is None:
                refusal = "sealed"
        self.access.record(
            actor,
            [case_id],
            operation,
            granted=refusal is None,
            refusal=refusal,
            opening=None if opening is None else opening_record(opening),
            coalesce=not sealed,
        )
        if not within:
            raise CaseNotFound(f"There is no case {case_id}.")
        if refusal == "sealed":
            raise NotPermitted(
                "This record is sealed (犯罪記錄封存): it is read only under an opening an "
                "auditor asked for and a supervisor approved.",
                code="sealed",
            )
        if refusal is not None:
            raise NotPermitted("Your role does not read cases.", code="role_cannot_read")

    def _record_read(
        self, actor: Actor, case_ids: list[str], operation: str, granted: bool
    ) -> None:
        self.access.record(actor, case_ids, operation, granted=granted)


def opening_record(opening: dict[str, Any]) -> dict[str, Any]:
    """What a read's record says of the opening it was made under: its approval's
    version in the case's stream, the legal ground and when it ends (no personal data)."""
    return {
        "approved_version": opening["approved_version"],
        "legal_ground": opening["legal_ground"],
        "until": opening["until"].isoformat(),
    }
