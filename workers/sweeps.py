"""Deadline sweeps: each warning and each breach of a deadline (domain.deadlines) is recorded
once, in the hash-chained log, and resolved once when the deadline is met, extended or moot.

Each case has a deadline log of its own (a stream beside the case, as the read-access log
is): the case's stream is never touched, so an `expected_version` a caseworker holds stays
valid. A sweep reads a case and its deadline log, and appends what the log lacks at the
log's next versions; two sweeps of the same case race for the same versions and the store
refuses the loser's append (unique stream and version), which reads the log again and finds
nothing left to record. So any number of sweeping processes, killed at any point, record
each warning and breach exactly once; a sweep missed (Redis down, no worker) is caught up
by the next one, which recomputes everything from the event streams.

The records carry ids and dates only (case, kind, unit, deadline type, due), never personal
data; their `recorded_at` is the moment the sweep detected them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import get_topic

from casetrail.application import CaseApplication
from casetrail.audit import records as stored
from casetrail.bootstrap import Casetrail
from casetrail.config import leads_from_env
from domain.case import RecordedEvent
from domain.clock import Clock, cst_date
from domain.deadlines import (
    DUE_SOON,
    MET,
    OVERDUE,
    RUNNING_STATES,
    DeadlineState,
    deadlines_of,
    lead_days,
)
from domain.kinds import KINDS
from evidence.chain import ChainEntry
from store.chain_links import CHAIN_TABLE
from store.db import Database

log = logging.getLogger("casetrail.workers.sweeps")

DEADLINE_LOG_NAMESPACE = uuid5(NAMESPACE_URL, "https://casetrail.invalid/deadline-log")
# Who records: the sweep, on behalf of the case's handling unit (the chain's actor_unit).
SWEEP_ACTOR = "casetrail:deadlines"
SWEEP_ROLE = "system"
# Cases read and recorded per transaction; a conflict retries that chunk case by case.
CHUNK = 200
MAX_ATTEMPTS = 16

WARNING, BREACH = "warning", "breach"
RECORD_TYPES = ("DeadlineWarned", "DeadlineBreached", "DeadlineResolved")


def deadline_log_id(case_id: str | UUID) -> UUID:
    """The id of a case's deadline log, derived from the case id."""
    return uuid5(DEADLINE_LOG_NAMESPACE, str(UUID(str(case_id))))


@dataclass
class Recorded:
    """What a deadline log holds about one deadline (type, ref, due)."""

    warned: bool = False
    breached: bool = False
    resolution: str | None = None


class DeadlineLog(Aggregate):
    """The warnings, breaches and resolutions of one case's deadlines."""

    records: dict[tuple[str, str, str], Recorded]

    class DeadlineLogEvent(RecordedEvent):
        """Carries who recorded it like a case event, so the global feed shows it alike."""

        def apply(self, aggregate: Any) -> None:
            data = self.data
            key = (data["deadline"], data["ref"], data["due"])
            found = aggregate.records.setdefault(key, Recorded())
            self.change(found)

        def change(self, found: Recorded) -> None:
            """Nothing but the record's existence."""

    class DeadlineLogOpened(Aggregate.Created, RecordedEvent):
        """The first record about a case opens its deadline log; `data.case` names it."""

        def apply(self, aggregate: Any) -> None:
            aggregate.records = {}

    class DeadlineWarned(DeadlineLogEvent):
        """預警: a deadline falls due within its warning lead."""

        def change(self, found: Recorded) -> None:
            found.warned = True

    class DeadlineBreached(DeadlineLogEvent):
        """超期: a deadline passed without the act it waited for."""

        def change(self, found: Recorded) -> None:
            found.breached = True

    class DeadlineResolved(DeadlineLogEvent):
        """A warned or breached deadline was met (late or not), extended, or made moot."""

        def change(self, found: Recorded) -> None:
            found.resolution = self.data["resolution"]

    def __init__(self, **_: Any) -> None:
        """Reconstructed from its events only."""


def resolution_of(
    key: tuple[str, str, str], found: Recorded, states: Sequence[DeadlineState]
) -> str | None:
    """How a recorded deadline that is no longer running was resolved; None if it runs."""
    same = next((s for s in states if s.key == key), None)
    if same is not None:
        if same.state in RUNNING_STATES:
            return None
        if same.state == MET:
            return "met_late" if found.breached else "met"
        return "moot"
    # Gone from the case's deadlines: its due day moved (an extension, a renewed grant).
    if any(s.type == key[0] for s in states):
        return "extended"
    return "moot"


@dataclass
class SweepReport:
    cases: int = 0
    warnings: int = 0
    breaches: int = 0
    resolutions: int = 0
    conflicts: int = 0
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "warnings": self.warnings,
            "breaches": self.breaches,
            "resolutions": self.resolutions,
            "conflicts": self.conflicts,
        }


class DeadlineSweeper:
    """Sweeps cases for warnings, breaches and resolutions, and lists what was recorded."""

    def __init__(
        self,
        app: CaseApplication,
        db: Database,
        clock: Clock,
        leads: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.db = db
        self.clock = clock
        self.leads = dict(leads) if leads is not None else leads_from_env()

    # --- sweeping ---------------------------------------------------------------------

    def case_ids(self) -> list[str]:
        """Every case of the store, oldest first (from the chain: one opening link each)."""
        openings = [case_class.opening_event.__name__ for case_class in KINDS.values()]
        rows = self.db.query(
            f"SELECT case_id FROM {CHAIN_TABLE} WHERE version = 1 AND event_type IN "
            f"({', '.join('?' for _ in openings)}) ORDER BY position",
            openings,
        )
        return [str(row["case_id"]) for row in rows]

    def sweep(self, case_ids: Iterable[str] | None = None, *, chunk: int = CHUNK) -> SweepReport:
        """Records what is due on the given cases (all cases by default), as of now."""
        report = SweepReport()
        ids = list(case_ids) if case_ids is not None else self.case_ids()
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            now = self.clock.now()
            loaded = self._load(part)
            planned = [(case_id, self._plan(case_id, now, report, loaded)) for case_id in part]
            events = [event for _, events in planned for event in events]
            report.cases += len(part)
            try:
                self._save(events, report)
            except IntegrityError:
                # Another sweep recorded on one of these cases meanwhile: case by case.
                report.conflicts += 1
                for case_id, _ in planned:
                    self._sweep_one(case_id, report)
        return report

    def _sweep_one(self, case_id: str, report: SweepReport) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._save(self._plan(case_id, self.clock.now(), report), report)
                return
            except IntegrityError:
                report.conflicts += 1
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))

    def _load(self, case_ids: Sequence[str]) -> dict[UUID, Any]:
        """The cases and their deadline logs, replayed from one query for them all
        (a sweep reads every case: a query per stream cost more than the replay)."""
        wanted: list[UUID] = []
        for case_id in case_ids:
            try:
                wanted += [UUID(case_id), deadline_log_id(case_id)]
            except ValueError:
                continue
        if not wanted:
            return {}
        recorder: Any = self.app.recorder
        # No deadline depends on a personal field (domain.deadlines): none is opened.
        decode = getattr(
            self.app.mapper, "to_domain_event_unopened", self.app.mapper.to_domain_event
        )
        marks = ", ".join("?" for _ in wanted)
        rows = self.db.query(
            f"SELECT originator_id, originator_version, topic, state "
            f"FROM {recorder.events_table_name} WHERE originator_id IN ({marks}) "
            "ORDER BY originator_id, originator_version",
            [self.db.stored_id(str(stream)) for stream in wanted],
        )
        found: dict[UUID, Any] = {}
        for row in rows:
            stream = UUID(str(row["originator_id"]))
            event: Any = decode(
                StoredEvent(
                    originator_id=stream,
                    originator_version=int(row["originator_version"]),
                    topic=str(row["topic"]),
                    state=bytes(row["state"]),
                )
            )
            found[stream] = event.mutate(found.get(stream))
        return found

    def _plan(
        self,
        case_id: str,
        now: datetime,
        report: SweepReport,
        loaded: Mapping[UUID, Any] | None = None,
    ) -> list[Any]:
        """The events the case's deadline log lacks as of `now` (from `loaded`, the
        streams read beforehand, when given)."""
        log_id = deadline_log_id(case_id)
        try:
            case: Any = (
                loaded[UUID(case_id)]
                if loaded is not None
                else self.app.repository.get(UUID(case_id))
            )
        except (AggregateNotFoundError, KeyError, ValueError):
            report.missing.append(case_id)
            return []
        try:
            deadline_log: Any = (
                loaded.get(log_id) if loaded is not None else self.app.repository.get(log_id)
            )
        except AggregateNotFoundError:
            deadline_log = None
        today = cst_date(now)
        states = deadlines_of(case, today, self.leads)
        found: dict[tuple[str, str, str], Recorded] = (
            deadline_log.records if deadline_log is not None else {}
        )
        wanted: list[tuple[str, DeadlineState | tuple[str, str, str], dict[str, Any]]] = []
        for s in states:
            seen = found.get(s.key, Recorded())
            if seen.resolution is not None:
                continue
            if s.state == DUE_SOON and not seen.warned:
                lead = lead_days(s.type, self.leads)
                wanted.append(("DeadlineWarned", s, {"lead_days": lead}))
            elif s.state == OVERDUE and not seen.breached:
                wanted.append(("DeadlineBreached", s, {}))
        for key, seen in found.items():
            if seen.resolution is None:
                resolution = resolution_of(key, seen, states)
                if resolution is not None:
                    wanted.append(("DeadlineResolved", key, {"resolution": resolution}))
        if not wanted:
            return []
        version = deadline_log.version if deadline_log is not None else 0
        common: dict[str, Any] = {
            "actor": SWEEP_ACTOR,
            "actor_role": SWEEP_ROLE,
            "actor_unit": case.unit,
            "reason": None,
            "note": None,
            "idempotency_key": None,
            "timestamp": now,
        }
        events: list[Any] = []
        # The event classes are dataclasses whose fields mypy does not see.
        opened: Any = DeadlineLog.DeadlineLogOpened
        if version == 0:
            version = 1
            events.append(
                opened(
                    originator_id=log_id,
                    originator_version=version,
                    originator_topic=get_topic(DeadlineLog),
                    data={"case": case_id, "kind": case.kind},
                    **common,
                )
            )
        for type_name, what, extra in wanted:
            deadline, ref, due = what.key if isinstance(what, DeadlineState) else what
            event_class: Any = getattr(DeadlineLog, type_name)
            version += 1
            data = {
                "case": case_id,
                "kind": case.kind,
                "unit": case.unit,
                "deadline": deadline,
                "ref": ref,
                "due": due,
                "detected_on": today.isoformat(),
                **extra,
            }
            events.append(
                event_class(originator_id=log_id, originator_version=version, data=data, **common)
            )
        return events

    def _save(self, events: list[Any], report: SweepReport) -> None:
        if not events:
            return
        chain = [
            ChainEntry(
                event_type=type(event).__name__,
                recorded_at=event.timestamp.isoformat(),
                actor=event.actor,
                actor_role=event.actor_role,
                actor_unit=event.actor_unit,
            )
            for event in events
        ]
        self.app.save(*events, chain=chain)
        for event in events:
            name = type(event).__name__
            report.warnings += name == "DeadlineWarned"
            report.breaches += name == "DeadlineBreached"
            report.resolutions += name == "DeadlineResolved"

    # --- what was recorded ------------------------------------------------------------

    def records(
        self,
        *,
        within: Callable[[str], bool] | None = None,
        kind: str | None = None,
        case_kind: str | None = None,
        state: str | None = None,
        from_: date | None = None,
        to: date | None = None,
    ) -> list[dict[str, Any]]:
        """Every recorded warning and breach, newest first, with its resolution if any.

        `kind`: a deadline type (domain.deadlines); `case_kind`: dispute, resettlement,
        correction.
        `state`: `warning` or `breached` (not resolved), `resolved`; `from_`/`to`: the
        day (CST) it was detected; `within(unit)`: whether a unit may be shown."""
        rows = self.db.query(
            f"SELECT position FROM {CHAIN_TABLE} WHERE event_type IN "
            f"({', '.join('?' for _ in RECORD_TYPES)}) ORDER BY position",
            list(RECORD_TYPES),
        )
        recorder: Any = self.app.recorder
        positions = [int(row["position"]) for row in rows]
        items: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
        resolutions: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for row in stored.read_stored_at(self.db, recorder.events_table_name, positions):
            event: Any = self.app.mapper.to_domain_event(stored.as_stored_event(row))
            data = event.data
            key = (data["case"], data["deadline"], data["ref"], data["due"])
            if isinstance(event, DeadlineLog.DeadlineResolved):
                resolutions[key] = {
                    "resolution": data["resolution"],
                    "resolved_at": event.timestamp.isoformat(),
                    "position": int(row.position),
                }
                continue
            what = WARNING if isinstance(event, DeadlineLog.DeadlineWarned) else BREACH
            items[(*key, what)] = {
                "case": data["case"],
                "case_kind": data["kind"],
                "unit": data["unit"],
                "kind": data["deadline"],
                "ref": data["ref"],
                "due": data["due"],
                "record": what,
                "detected_at": event.timestamp.isoformat(),
                "detected_on": data["detected_on"],
                "position": int(row.position),
            }
        result = []
        for (case, deadline_type, ref, due, _), item in items.items():
            resolved = resolutions.get((case, deadline_type, ref, due))
            item["resolution"] = resolved
            item["state"] = (
                "resolved" if resolved else ("warning" if item["record"] == WARNING else "breached")
            )
            if within is not None and not within(item["unit"]):
                continue
            if kind is not None and item["kind"] != kind:
                continue
            if case_kind is not None and item["case_kind"] != case_kind:
                continue
            if state is not None and item["state"] != state:
                continue
            if from_ is not None and item["detected_on"] < from_.isoformat():
                continue
            if to is not None and item["detected_on"] > to.isoformat():
                continue
            result.append(item)
        result.sort(key=lambda item: -int(item["position"]))
        return result


def sweeper_of(ct: Casetrail) -> DeadlineSweeper:
    """A sweeper over a built casetrail's store (warning leads from the environment)."""
    return DeadlineSweeper(ct.app, ct.db, ct.clock)
