"""The read-access log (閱覽記錄): every read of a case's personal data, granted or
denied, is an event of its own on the case's access-log stream, in the same event store,
hash-chained and in the signed Merkle log like every other event.

An access event carries ids only (the reader, the case, the endpoint), never personal data.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from casetrail.application import CaseApplication
from casetrail.audit import records
from casetrail.db import Database
from casetrail.store.chain_links import CHAIN_TABLE
from domain.case import Actor, RecordedEvent
from domain.clock import Clock
from domain.errors import InvalidData, NotPermitted
from evidence.chain import ChainEntry

log = logging.getLogger("casetrail.audit.access")

ACCESS_NAMESPACE = uuid5(NAMESPACE_URL, "https://casetrail.invalid/access-log")
# Concurrent reads of one case race for its log's next version; the losers retry.
MAX_ATTEMPTS = 32
MAX_RESULTS = 1000


def access_log_id(case_id: str) -> UUID:
    """The id of a case's access-log stream, derived from the case id."""
    return uuid5(ACCESS_NAMESPACE, str(UUID(str(case_id))))


class AccessLog(Aggregate):
    """The reads of one case's personal data."""

    class AccessEvent(RecordedEvent):
        """Who did it, as on every case event (so the global feed shows it alike)."""

        def apply(self, aggregate: Any) -> None:
            """The log's state is its events."""

    class AccessLogOpened(Aggregate.Created, AccessEvent):
        """The first read of a case opens its access log; `data.case` names the case."""

    class AccessRecorded(AccessEvent):
        """閱覽記錄: who read which case, when, through which endpoint, granted or denied."""

    def __init__(self, **_: Any) -> None:
        """Reconstructed from its events only."""


def current_endpoint(default: str) -> str:
    """The HTTP method and route of the current request, else the service operation."""
    try:
        from flask import has_request_context, request
    except ImportError:  # pragma: no cover - flask is a dependency
        return default
    if has_request_context():
        rule = request.url_rule.rule if request.url_rule is not None else request.path
        return f"{request.method} {rule}"
    return default


class ReadAccessLog:
    """Records reads as events and answers the auditors' questions about them."""

    def __init__(self, app: CaseApplication, db: Database, clock: Clock) -> None:
        self.app = app
        self.db = db
        self.clock = clock
        # Told how many records were written, granted or not (web/metrics counts them).
        self.on_record: Callable[[bool, int], None] | None = None

    def record(
        self,
        actor: Actor,
        case_ids: Sequence[str],
        operation: str,
        *,
        granted: bool,
        refusal: str | None = None,
        search: dict[str, Any] | None = None,
    ) -> None:
        """Appends one AccessRecorded per case, in one transaction; a search (its keyed
        hash and total) is recorded even when it shows no case, on a log of its query."""
        cases = list(dict.fromkeys(str(UUID(str(case_id))) for case_id in case_ids))
        if not cases and search is not None:
            cases = [str(uuid5(ACCESS_NAMESPACE, f"search:{search['query']}"))]
        if not cases:
            return
        endpoint = current_endpoint(operation)
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._append(actor, cases, endpoint, granted, refusal, search)
                if self.on_record is not None:
                    self.on_record(granted, len(cases))
                return
            except IntegrityError:
                # Another read of the same case took the next version; read it again.
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))

    def _last_links_query(self, log_ids: list[str]) -> tuple[str, list[Any]]:
        """The last link (version, hash) of each of these access logs; NULLs: none yet.

        One index probe per log (`MAX` of the key's second column for an equal first
        column reads one index entry), then one row by its key; not a scan of each log's
        rows: a log grows by an event at every read of its case, and a `GROUP BY` over
        its rows made recording a page's reads slower with every read (2.2 ms for 20 logs
        of 121 events each). The hashes save the append reading them again (`previous`
        of `write_links`). On PostgreSQL over an array: one statement text whatever the
        number of logs."""
        logs, params = self.db.text_list("w", "case_id", log_ids)
        return (
            f"SELECT w.case_id, c.version, c.hash FROM {logs} "
            f"LEFT JOIN {CHAIN_TABLE} c ON c.case_id = w.case_id AND c.version = "
            f"(SELECT MAX(version) FROM {CHAIN_TABLE} m WHERE m.case_id = w.case_id)",
            params,
        )

    def _append(
        self,
        actor: Actor,
        cases: list[str],
        endpoint: str,
        granted: bool,
        refusal: str | None,
        search: dict[str, Any] | None = None,
    ) -> None:
        now = self.clock.now()
        log_ids = {case_id: access_log_id(case_id) for case_id in cases}
        last_links = {
            str(row["case_id"]): (int(row["version"]), str(row["hash"]))
            for row in self.db.query(*self._last_links_query([str(i) for i in log_ids.values()]))
            if row["version"] is not None
        }
        # The event classes are dataclasses whose fields mypy does not see.
        opened: Any = AccessLog.AccessLogOpened
        recorded: Any = AccessLog.AccessRecorded
        events: list[Any] = []
        common: dict[str, Any] = {
            "actor": actor.user_id,
            "actor_role": actor.role,
            "actor_unit": actor.unit,
            "reason": None,
            "note": None,
            "idempotency_key": None,
            "timestamp": now,
        }
        for case_id, log_id in log_ids.items():
            version = last_links.get(str(log_id), (0, ""))[0]
            if version == 0:
                version = 1
                events.append(
                    opened(
                        originator_id=log_id,
                        originator_version=version,
                        originator_topic=get_topic(AccessLog),
                        data={"case": case_id},
                        **common,
                    )
                )
            events.append(
                recorded(
                    originator_id=log_id,
                    originator_version=version + 1,
                    data={
                        "case": case_id,
                        "endpoint": endpoint,
                        "granted": granted,
                        "refusal": refusal,
                        **({"search": search} if search is not None else {}),
                    },
                    **common,
                )
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
        self.app.save(*events, chain=chain, previous=last_links)

    def query(
        self,
        actor: Actor,
        *,
        case: str | None = None,
        user: str | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int = MAX_RESULTS,
    ) -> list[dict[str, Any]]:
        """The recorded reads, oldest first, filtered by case, reader and time (auditors)."""
        if actor.role != "auditor":
            raise NotPermitted("Only auditors read the access log.", code="auditors_only")
        where, params = ["event_type = ?"], ["AccessRecorded"]
        if case is not None:
            try:
                where.append("case_id = ?")
                params.append(str(access_log_id(case)))
            except ValueError:
                raise InvalidData(
                    f"'{case}' is not a case id.", details={"case": ["Not a case id."]}
                ) from None
        if user is not None:
            where.append("actor = ?")
            params.append(user)
        for moment, op, name in ((from_, ">=", "from"), (to, "<=", "to")):
            if moment is None:
                continue
            if moment.tzinfo is None:
                raise InvalidData(f"'{name}' needs a timezone.", details={name: ["No timezone."]})
            where.append(f"recorded_at {op} ?")
            params.append(moment.astimezone(UTC).isoformat())
        links = self.db.query(
            f"SELECT position FROM {CHAIN_TABLE} WHERE {' AND '.join(where)} "
            f"ORDER BY position LIMIT {max(1, min(int(limit), MAX_RESULTS))}",
            params,
        )
        result = []
        recorder: Any = self.app.recorder
        positions = [int(link["position"]) for link in links]
        for row in records.read_stored_at(self.db, recorder.events_table_name, positions):
            event: Any = self.app.mapper.to_domain_event(records.as_stored_event(row))
            result.append(
                {
                    "position": int(row.position),
                    "at": event.timestamp.isoformat(),
                    "user": event.actor,
                    "role": event.actor_role,
                    "unit": event.actor_unit,
                    "case": event.data.get("case"),
                    "endpoint": event.data.get("endpoint"),
                    "granted": event.data.get("granted"),
                    "refusal": event.data.get("refusal"),
                    **({"search": event.data["search"]} if event.data.get("search") else {}),
                }
            )
        return result
