"""Events as the API shows them: an event's fields with its position and chain hash, and
the answer to an accepted command."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.case import to_json
from domain.kinds import KINDS
from store.chain_links import ChainLink

log = logging.getLogger("casetrail")

# Called with the position of each accepted append: how web and worker processes wake the
# projection workers (workers.signals); bootstrap hands it to whatever appends.
AppendListener = Callable[[int], None]


def announce(listener: AppendListener | None, position: int) -> None:
    """Tells `listener` of an accepted append. Its failure fails nothing: the append is
    durable, and the cron safety net catches the read models up."""
    if listener is None:
        return
    try:
        listener(position)
    except Exception:
        log.warning("could not signal the projection workers", exc_info=True)


@dataclass(frozen=True)
class Appended:
    """The answer to an accepted command (or to its idempotent replay)."""

    id: str
    kind: str
    version: int
    position: int
    event: dict[str, Any]
    replayed: bool = False

    @classmethod
    def of(cls, event: Any, link: ChainLink, *, replayed: bool = False) -> Appended:
        """The answer for `event`, the last event a command appended, and its chain link."""
        kind = kind_of(event)
        row = {"position": link.position, "hash": link.hash, "prev_hash": link.prev_hash}
        return cls(
            id=str(event.originator_id),
            kind=kind,
            version=event.originator_version,
            position=link.position,
            event=event_dict(event, kind, row),
            replayed=replayed,
        )


def kind_of(event: Any) -> str:
    """The case kind an event belongs to, from the module of its class."""
    for kind, case_class in KINDS.items():
        if type(event) in case_class.events:
            return kind
    return "unknown"


def event_dict(event: Any, kind: str, link: Mapping[str, Any] | None) -> dict[str, Any]:
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


def utc_iso(moment: datetime) -> str:
    """A moment as the chain's `recorded_at` is written: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat()
