"""Idempotency keys: a command retried with its key gets its first answer, not a second
event. The key is written with the command's events, in their transaction
(store); it is read only when a command fails, to tell a retry from a refusal."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from casetrail.application import CaseApplication
from casetrail.events import Appended
from domain.case import Actor
from domain.errors import CasetrailError, IdempotencyKeyReused
from store.chain_links import CHAIN_TABLE, ChainLink
from store.db import Database
from store.idempotency import IDEMPOTENCY_TABLE, IdempotencyRecord


def idempotency_scope(actor: Actor, key: str) -> str:
    """Keys are the user's own: two users may use the same key."""
    return f"{actor.user_id}\x1f{key}"


def request_hash(request: dict[str, Any]) -> str:
    encoded = json.dumps(
        request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, app: CaseApplication, db: Database) -> None:
        self.app = app
        self.db = db

    def record(
        self, actor: Actor, key: str | None, request: dict[str, Any], now: datetime
    ) -> IdempotencyRecord | None:
        """The row the recorder writes with the command's events (None: no key)."""
        if key is None:
            return None
        return IdempotencyRecord(
            scope=idempotency_scope(actor, key),
            request_hash=request_hash(request),
            created_at=now.isoformat(),
        )

    def answered_once(
        self,
        actor: Actor,
        key: str | None,
        request: dict[str, Any],
        command: Callable[[], Appended],
    ) -> Appended:
        """Runs `command`. If it is refused, or its key is taken by the time it commits,
        and the key was used before: the first answer (or IdempotencyKeyReused for another
        request). An accepted command reads nothing here; its key is written with it."""
        try:
            return command()
        except (CasetrailError, IntegrityError):
            # A refusal: the command may have been accepted before, or meanwhile by a
            # concurrent retry, changing the case under us; answer as it was answered.
            first = self.replay(actor, key, request)
            if first is None:
                raise
            return first

    def replay(self, actor: Actor, key: str | None, request: dict[str, Any]) -> Appended | None:
        """The first answer to a retried command, or None if the key is new."""
        if key is None:
            return None
        row = self.db.query_one(
            f"SELECT request_hash, case_id, version FROM {IDEMPOTENCY_TABLE} WHERE scope = ?",
            (idempotency_scope(actor, key),),
        )
        if row is None:
            return None
        if row["request_hash"] != request_hash(request):
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used before with a different request.",
                details={"idempotency_key": key},
            )
        case_id, version = str(row["case_id"]), int(row["version"])
        [event] = self.app.events.get(UUID(case_id), gt=version - 1, lte=version)
        link = self.db.query_one(
            f"SELECT position, hash, prev_hash FROM {CHAIN_TABLE} "
            "WHERE case_id = ? AND version = ?",
            (case_id, version),
        )
        assert link is not None, "an event's chain link is written with it"
        chained = ChainLink(
            case_id, version, int(link["position"]), link["hash"], link["prev_hash"]
        )
        return Appended.of(event, chained, replayed=True)
