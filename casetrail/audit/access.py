"""The read-access log (閱覽記錄): every read of cases' personal data, granted or denied,
is recorded (hash-chained, in the signed Merkle log) before the data leaves; a read that
cannot be recorded does not happen.

One request, one record (domain.access.ReadRecord, on a fresh stream: no version races),
naming every case shown; the cases are indexed in its transaction (store.access_index).
Reads of a case by the same reader through the same endpoint within
`CASETRAIL_ACCESS_COALESCE_SECONDS` (default 60) are covered by the first one's record.
Stores written before hold an `AccessRecorded` per case read on a stream per case
(`access_log_id`): they still verify and are still answered.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper
from eventsourcing.utils import get_topic

from casetrail.application import CaseApplication
from casetrail.audit import records
from casetrail.personal import ACCESS_SEARCH_PURPOSE, ERASED, access_key_id
from domain.access import ReadRecord
from domain.case import Actor, RecordedEvent
from domain.clock import Clock
from domain.errors import InvalidData, NotPermitted
from domain.roles import AUDITOR
from evidence.chain import ChainEntry
from evidence.envelope import is_envelope
from store.access_index import ACCESS_INDEX_TABLE, NO_CASE, AccessRows
from store.chain_links import CHAIN_TABLE
from store.db import Database

ACCESS_NAMESPACE = uuid5(NAMESPACE_URL, "https://casetrail.invalid/access-log")
MAX_RESULTS = 1000
DEFAULT_COALESCE_SECONDS = 60.0
COALESCE_ENV = "CASETRAIL_ACCESS_COALESCE_SECONDS"


def access_log_id(case_id: str) -> UUID:
    """The id of a case's access-log stream in the old shape, derived from the case id."""
    return uuid5(ACCESS_NAMESPACE, str(UUID(str(case_id))))


class AccessLog(Aggregate):
    """The reads of one case's personal data (the old shape: a stream per case)."""

    class AccessEvent(RecordedEvent):
        """Who did it, as on every case event (so the global feed shows it alike)."""

        def apply(self, aggregate: Any) -> None:
            """The log's state is its events."""

    class AccessLogOpened(Aggregate.Created, AccessEvent):
        """The first read of a case opened its access log; `data.case` names the case."""

    class AccessRecorded(AccessEvent):
        """閱覽記錄 (old shape): who read one case, when, through which endpoint."""

    def __init__(self, **_: Any) -> None:
        """Reconstructed from its events only."""


# Topics of access records: the read models skip them without decoding.
ACCESS_TOPICS = frozenset(
    get_topic(event_class)
    for event_class in (ReadRecord.CasesRead, AccessLog.AccessLogOpened, AccessLog.AccessRecorded)
)


@dataclass(frozen=True)
class Search:
    """A search to record: its normalised text (never stored, never shown), the total it
    found, and its term in the read models' index (what is stored in a store without
    per-person keys)."""

    text: str = field(repr=False)
    total: int
    index_term: int


def search_hash(key: bytes, text: str) -> int:
    """The first 64 bits of HMAC-SHA256 of the whole-word token, as a signed BIGINT."""
    digest = hmac.digest(key, ("w:" + text).encode(), "sha256")
    return int.from_bytes(digest[:8], "big", signed=True)


def index_moment(moment: datetime) -> str:
    """A moment as the index stores it: UTC, always with microseconds (ordered as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


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
        self.app, self.db, self.clock = app, db, clock
        # Told how many cases a record named, granted or not (web/metrics counts them).
        self.on_record: Callable[[bool, int], None] | None = None
        # 0: every read a record of its own.
        self.coalesce_seconds = float(os.environ.get(COALESCE_ENV) or DEFAULT_COALESCE_SECONDS)

    def record(
        self,
        actor: Actor,
        case_ids: Sequence[str],
        operation: str,
        *,
        granted: bool,
        refusal: str | None = None,
        search: Search | None = None,
        opening: dict[str, Any] | None = None,
        coalesce: bool = True,
    ) -> None:
        """Appends one record naming these cases (less those this reader read the same
        way within the coalescing window, unless not `coalesce`: a sealed record's every
        read), a search's keyed hash and total, and the opening of a sealed record the read
        was made under; nothing if there is nothing new to record. Raises if it cannot
        record: the read fails."""
        cases = list(dict.fromkeys(str(UUID(str(case_id))) for case_id in case_ids))
        if not cases and search is None:
            return
        endpoint = current_endpoint(operation)
        now = self.clock.now()
        if cases and coalesce and self.coalesce_seconds > 0:
            recent = self._recently_recorded(actor, cases, endpoint, granted, now)
            cases = [case for case in cases if case not in recent]
            if not cases and search is None:
                return
        self._append(actor, cases, endpoint, granted, refusal, search, now, opening)
        if self.on_record is not None:
            self.on_record(granted, len(cases))

    def _recently_recorded(
        self, actor: Actor, cases: list[str], endpoint: str, granted: bool, now: datetime
    ) -> set[str]:
        """Which of these cases this reader's records of the window already name."""
        since = index_moment(now - timedelta(seconds=self.coalesce_seconds))
        wanted, params = self.db.text_list("w", "case_id", cases)
        rows = self.db.query(  # one index probe a case, stopping at the first hit
            f"SELECT w.case_id FROM {wanted} WHERE EXISTS (SELECT 1 FROM {ACCESS_INDEX_TABLE} "
            "i WHERE i.actor = ? AND i.case_id = w.case_id AND i.recorded_at >= ? "
            "AND i.endpoint = ? AND i.granted = ?)",
            [*params, actor.user_id, since, endpoint, 1 if granted else 0],
        )
        return {str(row["case_id"]) for row in rows}

    def _append(
        self,
        actor: Actor,
        cases: list[str],
        endpoint: str,
        granted: bool,
        refusal: str | None,
        search: Search | None,
        now: datetime,
        opening: dict[str, Any] | None = None,
    ) -> None:
        # The event class is a dataclass whose fields mypy does not see.
        cases_read: Any = ReadRecord.CasesRead
        data = {"cases": cases, "endpoint": endpoint, "granted": granted, "refusal": refusal}
        if search is not None:
            data["search"] = {"query": self._search_hash(search, now), "total": search.total}
        data |= {} if opening is None else {"opening": opening}
        event = cases_read(
            originator_id=uuid4(),  # a stream of its own: no version to race for
            originator_version=1,
            originator_topic=get_topic(ReadRecord),
            data=data,
            actor=actor.user_id,
            actor_role=actor.role,
            actor_unit=actor.unit,
            reason=None,
            note=None,
            idempotency_key=None,
            timestamp=now,
        )
        chain = ChainEntry("CasesRead", now.isoformat(), actor.user_id, actor.role, actor.unit)
        rows = AccessRows(cases, actor.user_id, index_moment(now), endpoint, granted)
        # One transaction (shared with other writers' on SQLite: store/sqlite's group
        # commit): the event, its chain link and its index rows.
        self.app.save(event, chain=[chain], access=rows)

    def _search_hash(self, search: Search, now: datetime) -> int:
        """A search's keyed hash under a key derived from the record's month's access key:
        destroying that key (the month's retention) leaves every copy of the month's
        search hashes unlinkable, and the hash of one query differs across months and
        from the index's term. A store without per-person keys stores the index term."""
        keys = getattr(self.app.mapper, "keys", None)
        if keys is None:
            return search.index_term
        return search_hash(keys.derived(access_key_id(now), ACCESS_SEARCH_PURPOSE), search.text)

    def index_mismatches(self) -> list[int]:
        """Positions whose index rows are not what their record names (rows added,
        removed or altered): the record is the evidence, the rows must match it."""
        indexed: dict[int, set[tuple[Any, ...]]] = {}
        for row in self.db.query(f"SELECT * FROM {ACCESS_INDEX_TABLE}"):
            entry = (row["case_id"], row["actor"], row["recorded_at"], row["endpoint"])
            indexed.setdefault(int(row["position"]), set()).add((*entry, int(row["granted"])))
        links = self.db.query(
            f"SELECT position FROM {CHAIN_TABLE} WHERE event_type = ?", ["CasesRead"]
        )
        recorder: Any = self.app.recorder
        positions = [int(link["position"]) for link in links]
        wrong = []
        for stored in records.read_stored_at(self.db, recorder.events_table_name, positions):
            try:
                event: Any = self.app.mapper.to_domain_event(records.as_stored_event(stored))
                moment, data = index_moment(event.timestamp), event.data
                if data["cases"] == ERASED or is_envelope(data["cases"]):
                    # Its month's key is gone (expired, or a copy without the key table) or
                    # not attached: what it names cannot be read, nor its rows checked.
                    indexed.pop(int(stored.position), None)
                    continue
                named = {
                    (case, event.actor, moment, data["endpoint"], int(bool(data["granted"])))
                    for case in data["cases"] or [NO_CASE]
                }
            except Exception:
                if self._sealed_beyond_reach(stored):
                    indexed.pop(int(stored.position), None)
                    continue
                named = set()  # an altered record (the chain reports it too)
            if indexed.pop(int(stored.position), set()) != named or not named:
                wrong.append(int(stored.position))
        return sorted(wrong + list(indexed))

    def _sealed_beyond_reach(self, stored: Any) -> bool:
        """Whether the record names its cases under a key this process cannot unwrap (the
        store opened without its master key): its index rows cannot be checked then."""
        mapper: Any = self.app.mapper
        keys = getattr(mapper, "keys", None)
        try:
            raw: Any = Mapper.to_domain_event(mapper, records.as_stored_event(stored))
        except Exception:  # an altered record
            return False
        sealed: Any = raw.data.get("cases") if isinstance(raw.data, dict) else None
        if keys is None or not is_envelope(sealed):
            return False
        try:
            keys.key(sealed["_enc"])
        except Exception:  # wrapped by another master key
            return True
        return False

    def query(
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
        """The recorded reads, oldest first, one item per case a record names, filtered
        by case, reader and time (auditors); and the cursor of the next page (None: no
        more). Reads both shapes of record."""
        if actor.role != AUDITOR:
            raise NotPermitted("Only auditors read the access log.", code="auditors_only")
        limit = max(1, min(int(limit), MAX_RESULTS))
        new_where: list[str] = []
        new_params: list[Any] = []
        old_where: list[str] = ["event_type = ?"]
        old_params: list[Any] = ["AccessRecorded"]
        if case is not None:
            try:
                canonical = str(UUID(case))
            except ValueError:
                raise InvalidData(
                    f"'{case}' is not a case id.", details={"case": ["Not a case id."]}
                ) from None
            new_where.append("case_id = ?")
            new_params.append(canonical)
            old_where.append("case_id = ?")
            old_params.append(str(access_log_id(canonical)))
        if user is not None:
            for where, params in ((new_where, new_params), (old_where, old_params)):
                where.append("actor = ?")
                params.append(user)
        for moment, op, name in ((from_, ">=", "from"), (to, "<=", "to")):
            if moment is None:
                continue
            if moment.tzinfo is None:
                raise InvalidData(f"'{name}' needs a timezone.", details={name: ["No timezone."]})
            new_where.append(f"recorded_at {op} ?")
            new_params.append(index_moment(moment))
            old_where.append(f"recorded_at {op} ?")
            old_params.append(moment.astimezone(UTC).isoformat())
        if after is not None:
            position, key = parse_cursor(after)
            for where, params in ((new_where, new_params), (old_where, old_params)):
                where.append("(position > ? OR (position = ? AND case_id > ?))")
                params.extend([position, position, key])
        new_sql = f"SELECT position, case_id FROM {ACCESS_INDEX_TABLE}"
        if new_where:
            new_sql += f" WHERE {' AND '.join(new_where)}"
        old_sql = f"SELECT position, case_id FROM {CHAIN_TABLE} WHERE {' AND '.join(old_where)}"
        found = self.db.query(
            f"SELECT position, case_id FROM ({new_sql} UNION ALL {old_sql}) AS a "
            f"ORDER BY position, case_id LIMIT {limit + 1}",
            [*new_params, *old_params],
        )
        more = len(found) > limit
        found = found[:limit]
        recorder: Any = self.app.recorder
        positions = sorted({int(row["position"]) for row in found})
        events: dict[int, Any] = {
            int(row.position): self.app.mapper.to_domain_event(records.as_stored_event(row))
            for row in records.read_stored_at(self.db, recorder.events_table_name, positions)
        }
        result = []
        for row in found:
            position = int(row["position"])
            event = events.get(position)
            if event is None:
                continue
            key = str(row["case_id"])
            shown = key if isinstance(event, ReadRecord.CasesRead) else event.data.get("case")
            item = {
                "position": position,
                "at": event.timestamp.isoformat(),
                "user": event.actor,
                "role": event.actor_role,
                "unit": event.actor_unit,
                "case": None if shown == NO_CASE else shown,
                "endpoint": event.data.get("endpoint"),
                "granted": event.data.get("granted"),
                "refusal": event.data.get("refusal"),
            }
            item |= {"search": data} if (data := event.data.get("search")) else {}
            item |= {"opening": opened} if (opened := event.data.get("opening")) else {}
            result.append(item)
        next_cursor = f"{found[-1]['position']}.{found[-1]['case_id']}" if more else None
        return result, next_cursor


def parse_cursor(cursor: str) -> tuple[int, str]:
    """A page cursor (`<position>.<key>`, as `query` returns it), or 422."""
    position, _, key = cursor.partition(".")
    try:
        return int(position), key
    except ValueError:
        raise InvalidData(
            f"'{cursor}' is not a cursor of this log.", details={"after": ["Not a cursor."]}
        ) from None
