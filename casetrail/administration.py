"""The administration log: every act on units and users (who added a unit, created,
disabled, moved or re-roled a user, rotated a token) is an event on one stream, in the
same event store, hash-chained and in the signed Merkle log like every case event.

Its events carry the acting admin (as every event does) and ids, roles and units; never
a token nor its hash.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, cast
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from casetrail.application import CaseApplication, LinkedRecording
from casetrail.events import AppendListener, announce
from domain.case import Actor, RecordedEvent
from domain.clock import Clock
from evidence.chain import ChainEntry
from store.chain_links import CHAIN_TABLE
from store.db import Cursor, Database

ADMINISTRATION_ID: UUID = uuid5(NAMESPACE_URL, "https://casetrail.invalid/administration")
# Concurrent acts race for the stream's next version; the losers retry.
MAX_ATTEMPTS = 32


class Administration(Aggregate):
    """The administration acts of one directory (units and users)."""

    class AdministrationEvent(RecordedEvent):
        def apply(self, aggregate: Any) -> None:
            """The log's state is its events."""

    class AdministrationOpened(Aggregate.Created, AdministrationEvent):
        """The first act opens the log."""

    class UnitAdded(AdministrationEvent):
        """新增單位: a unit added under the parent its code implies (or, from a reviewed
        file loaded by a root admin, the parent the file names)."""

    class UserCreated(AdministrationEvent):
        """新增用戶: a user created with a role at a unit (the token is never recorded)."""

    class UserDisabled(AdministrationEvent):
        """停用用戶: the user's token is refused from now on."""

    class UserEnabled(AdministrationEvent):
        """啟用用戶: a disabled user may sign in again."""

    class UserTokenRotated(AdministrationEvent):
        """更換令牌: a new token issued; the old one is refused from now on."""

    class UserChanged(AdministrationEvent):
        """調整用戶: the user's unit or role changed (`data` has before and after)."""

    class RegisterEntryAdded(AdministrationEvent):
        """登記名冊: a mediation committee, mediator, transitional base or correction staff
        member entered in its unit's register (casetrail.registers)."""

    class RegisterEntryChanged(AdministrationEvent):
        """變更名冊: a register entry's name, capacity, post or committee changed (`data`
        has before and after)."""

    class RegisterEntryRetired(AdministrationEvent):
        """註銷名冊: a register entry retired; events may no longer name it (old ones
        still read)."""

    class ParkedEventSkipped(AdministrationEvent):
        """跳過暫停事件: a read model gives up on a parked event (`data`: which, and why)."""

    class StoreMigrated(AdministrationEvent):
        """遷移存儲: this store was rewritten from one without per-person keys (docs/
        privacy.md); `data` names the old log's last signed checkpoint and binds every old
        event's hash to its new one. No personal data."""

    def __init__(self, **_: Any) -> None:
        """Reconstructed from its events only."""


EVENT_TYPES = {
    name: cls
    for name, cls in vars(Administration).items()
    if isinstance(cls, type) and issubclass(cls, Administration.AdministrationEvent)
}


class AdministrationLog:
    """Appends administration acts to the administration stream."""

    def __init__(
        self,
        app: CaseApplication,
        db: Database,
        clock: Clock,
        on_append: AppendListener | None = None,
    ) -> None:
        self.app = app
        self.db = db
        self.clock = clock
        self.on_append = on_append

    def record(
        self, actor: Actor, event_type: str, data: dict[str, Any], *, reason: str | None = None
    ) -> None:
        """Appends one act; raises if it cannot be recorded (then the act is not done)."""
        append_to_log(
            self.app,
            self.db,
            self.clock,
            ADMINISTRATION_ID,
            Administration,
            Administration.AdministrationOpened,
            EVENT_TYPES[event_type],
            actor,
            data,
            reason=reason,
            on_append=self.on_append,
        )


def append_to_log(
    app: CaseApplication,
    db: Database,
    clock: Clock,
    log_id: UUID,
    log_class: type[Aggregate],
    opened: type[Any],
    event_class: type[Any],
    actor: Actor,
    data: dict[str, Any],
    *,
    reason: str | None = None,
    also: Callable[[Cursor], None] | None = None,
    on_append: AppendListener | None = None,
) -> None:
    """Appends one event to a log that is one stream of its own (the administration log,
    the erasures), opening the stream with its first event; hash-chained and in the Merkle
    log like a case event, and announced to `on_append` like one (the read models' catch-up
    passes over it). Concurrent appends race for the stream's next version: the losers
    retry."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            position = _append_once(
                app, db, clock, log_id, log_class, opened, event_class, actor, data, reason, also
            )
            announce(on_append, position)
            return
        except IntegrityError:
            if attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def _append_once(
    app: CaseApplication,
    db: Database,
    clock: Clock,
    log_id: UUID,
    log_class: type[Aggregate],
    opened: type[Any],
    event_class: type[Any],
    actor: Actor,
    data: dict[str, Any],
    reason: str | None,
    also: Callable[[Cursor], None] | None,
) -> int:
    """Appends the event (and the stream's opening, if it is the first); its position."""
    now = clock.now()
    row = db.query_one(
        f"SELECT MAX(version) AS version FROM {CHAIN_TABLE} WHERE case_id = ?", (str(log_id),)
    )
    version = int(row["version"]) if row and row["version"] is not None else 0
    common: dict[str, Any] = {
        "actor": actor.user_id,
        "actor_role": actor.role,
        "actor_unit": actor.unit,
        "reason": reason,
        "note": None,
        "idempotency_key": None,
        "timestamp": now,
    }
    events: list[Any] = []
    if version == 0:
        version = 1
        events.append(
            opened(
                originator_id=log_id,
                originator_version=version,
                originator_topic=get_topic(log_class),
                data={},
                **common,
            )
        )
    events.append(
        event_class(originator_id=log_id, originator_version=version + 1, data=data, **common)
    )
    chain = [
        ChainEntry(
            event_type=type(event).__name__,
            recorded_at=now.isoformat(),
            actor=actor.user_id,
            actor_role=actor.role,
            actor_unit=actor.unit,
        )
        for event in events
    ]
    # On SQLite the recorder takes the writer lock for its transaction (store/sqlite).
    recordings = cast("list[LinkedRecording]", app.save(*events, chain=chain, also=also))
    return recordings[-1].link.position
