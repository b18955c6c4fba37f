"""The commands: open a case, append an event. HTTP, the CLI and the demo loader call
these; nothing else writes case events.

Each command loads its case, checks what only the application knows (the unit exists,
the jurisdiction, the expected version), lets the case check its own rules, and saves.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from eventsourcing.persistence import IntegrityError

from casetrail.application import CaseApplication
from casetrail.directory import Directory
from casetrail.events import Appended, AppendListener, announce
from casetrail.idempotency import IdempotencyKeys
from casetrail.registers import Registers
from domain.case import Actor, Case, CaseEvent, Context
from domain.clock import Clock
from domain.errors import CaseNotFound, InvalidData, NotPermitted, RuleViolation, VersionConflict
from domain.kinds import KINDS
from evidence.chain import ChainEntry

# Appends without expected_version retry when another append took their version; with a
# short random pause, so that a crowd of writers on one case does not starve one of them.
MAX_APPEND_ATTEMPTS = 32
RETRY_PAUSE_SECONDS = 0.004


class LostRaces(Exception):
    """Every attempt lost its version to another append."""


def retry_lost_races(attempt: Callable[[], Appended]) -> Appended:
    """Runs `attempt` again, after a short random pause, while another append takes the
    version it was about to write (the store refuses it with an IntegrityError)."""
    for tries in range(1, MAX_APPEND_ATTEMPTS + 1):
        try:
            return attempt()
        except IntegrityError:
            time.sleep(random.uniform(0, RETRY_PAUSE_SECONDS * min(tries, 8)))
    raise LostRaces


class CaseService:
    def __init__(
        self,
        app: CaseApplication,
        directory: Directory,
        clock: Clock,
        idempotency: IdempotencyKeys,
        registers: Registers,
        on_append: AppendListener | None = None,
        *,
        seal_opening: timedelta | None = None,
    ) -> None:
        self.app = app
        self.directory = directory
        self.registers = registers
        self.clock = clock
        self.idempotency = idempotency
        self.on_append = on_append
        # How long an approved opening of a sealed record lasts (None: the rules' default).
        self.seal_opening = seal_opening

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

        def open_once() -> Appended:
            case_class = KINDS.get(kind)
            if case_class is None:
                raise InvalidData(
                    f"'{kind}' is not a case kind.",
                    details={"kind": [f"One of {', '.join(KINDS)}."]},
                )
            opening = case_class.opening_event.__name__
            if event_type != opening:
                raise RuleViolation(
                    f"A {kind} case opens with {opening}, not {event_type}.",
                    code="wrong_opening_event",
                    details={"expected": opening},
                )
            self.directory.require_unit(unit)
            self._require_jurisdiction(actor, unit)
            ctx = self._context(actor, reason, note, idempotency_key)
            case = case_class.open(unit, data, ctx)
            self._check_units(case)
            self._check_registers(case)
            return self._save(case, actor, idempotency_key, request)

        return self.idempotency.answered_once(actor, idempotency_key, request, open_once)

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

        def append_once() -> Appended:
            case = self.app.get_case(case_id, for_command=True)
            self._require_case_jurisdiction(actor, case, event_type)
            if expected_version is not None and expected_version != case.version:
                raise version_conflict(case.version, expected_version)
            case.record(event_type, data, self._context(actor, reason, note, idempotency_key))
            self._check_units(case)
            self._check_registers(case)
            try:
                return self._save(case, actor, idempotency_key, request)
            except IntegrityError:
                if expected_version is None:
                    raise  # another append took the version: try again on the new one
                current = self.app.get_case(case_id).version
                raise version_conflict(current, expected_version) from None

        try:
            return retry_lost_races(
                lambda: self.idempotency.answered_once(actor, idempotency_key, request, append_once)
            )
        except LostRaces:
            raise VersionConflict(
                "The case kept changing while this event was appended; try again.",
                details={"current_version": self.app.get_case(case_id).version},
            ) from None

    # --- internals ------------------------------------------------------------------

    def _context(
        self, actor: Actor, reason: str | None, note: str | None, key: str | None
    ) -> Context:
        ctx = Context(
            actor=actor, now=self.clock.now(), reason=reason, note=note, idempotency_key=key
        )
        if self.seal_opening is not None:
            ctx = replace(ctx, seal_opening=self.seal_opening)
        return ctx

    def _require_jurisdiction(self, actor: Actor, unit: str) -> None:
        # Only the jurisdiction: who may record which event (writers only, some events
        # supervisors only) is the case's own rule, checked once, by `Case.open` and
        # `Case.record` (domain.case.check_role).
        if not self.directory.may_act(actor.unit, unit):
            raise NotPermitted(
                "This case is outside your unit's jurisdiction.", code="outside_jurisdiction"
            )

    def _require_case_jurisdiction(self, actor: Actor, case: Case, event_type: str) -> None:
        """The case names who reads it and who records this event (Case.reach_units,
        acting_units); outside its reach it does not exist (404, as for an unknown id)."""
        if not self.directory.reaches(actor.unit, case.reach_units()):
            raise CaseNotFound(f"There is no case {case.id}.")
        if not self.directory.reaches(actor.unit, case.acting_units(event_type)):
            raise NotPermitted(
                f"{event_type} on this case is recorded by "
                f"{' or '.join(case.acting_units(event_type))} (or a unit above).",
                code="outside_jurisdiction",
            )

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

    def _check_registers(self, case: Case) -> None:
        """Register entries named in the new events' data are registered, active and of
        the case's branch of the unit tree (its units once the events apply)."""
        events = [event for event in case.pending_events if isinstance(event, CaseEvent)]
        self.registers.check_named(events, case.reach_units())

    def _save(self, case: Case, actor: Actor, key: str | None, request: dict[str, Any]) -> Appended:
        """Saves the case's new events, their chain links and the idempotency key in one
        transaction; the answer, from what was written."""
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
        idempotency = self.idempotency.record(actor, key, request, self.clock.now())
        # On SQLite the recorders take the writer lock for their transactions (store/sqlite).
        last = self.app.save_linked(case, chain=chain, idempotency=idempotency)[-1]
        self.app.keep_case(case)
        announce(self.on_append, last.link.position)
        return Appended.of(last.domain_event, last.link)


def version_conflict(current: int, expected: int) -> VersionConflict:
    return VersionConflict(
        f"The case is at version {current}, not {expected}.",
        details={"current_version": current, "expected_version": expected},
    )
