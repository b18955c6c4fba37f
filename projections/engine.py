"""The projection engine: catches read models up from the notification log, exactly once.

Each read model lives in tables of a *generation* (`rm_<name>_<table>_<gen>`) with its own
tracking record (`rm:<name>:<gen>`) in the `eventsourcing` tracking table of the same
datastore. One batch is one database transaction that

1. claims the batch with a compare-and-set on the tracking record (it must still hold the
   position the batch was read after; a concurrent worker that got there first makes this
   one start over, on PostgreSQL after waiting for the row lock, on SQLite behind the write
   lock),
2. applies the batch's events to the read-model rows,
3. advances the tracking record with the tracking recorder's own `_insert_tracking`,
   which refuses a position that does not advance.

So a tracked event can never be applied twice, and a crash loses nothing but a rolled-back
batch. `rebuild()` fills a fresh generation while queries keep reading the active one and
switches the `rm_active` pointer in the transaction of the final batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError, Notification, Tracking
from eventsourcing.utils import get_topic

from casetrail.audit.access import ACCESS_TOPICS
from casetrail.personal import PersonalMapper
from domain.case import CaseEvent
from domain.errors import UnknownUnit
from projections.generations import SQLITE_CACHE_KIB
from projections.parked import WAITING, Parked, apply_error, decode_error
from projections.readmodel import Batch, Place, Projection, kind_by_event_class
from projections.rebuild import REBUILD_BATCH_SIZE, Rebuilds
from projections.tracking import Conflict, bucket, share_tracking_name, tracking_name

# One event of a batch: position, the decoded event (None: it could not be decoded), its
# case kind, its case, and why it could not be decoded.
Item = tuple[int, CaseEvent | None, str, Any, str | None]

if TYPE_CHECKING:
    from casetrail.bootstrap import Casetrail

log = logging.getLogger("casetrail.projections")

BATCH_SIZE = 500
# A backlog this long (and over twice what was applied) is rebuilt, not caught up.
FAR_BEHIND_EVENTS = 50_000
# A catch-up that applied this many events refreshes PostgreSQL's planner statistics.
ANALYZE_AFTER_EVENTS = 10_000


class Engine(Rebuilds):
    """Runs projections against one casetrail's datastore."""

    def __init__(
        self,
        ct: Casetrail,
        projections: Iterable[Projection],
        *,
        batch_size: int = BATCH_SIZE,
        rebuild_batch_size: int = REBUILD_BATCH_SIZE,
    ) -> None:
        super().__init__(ct, projections)
        self.batch_size = batch_size
        self.rebuild_batch_size = max(rebuild_batch_size, batch_size)
        self._places: dict[str, Place] = {}
        self._kinds = kind_by_event_class()
        self.parked = Parked(self.db)

    def setup(self) -> None:
        super().setup()
        self.parked.setup()

    def stopped(self, name: str, generation: int) -> bool:
        return self.parked.stopped_at(name, generation) is not None

    # --- positions ----------------------------------------------------------------------

    def far_behind(self, names: Iterable[str]) -> list[str]:
        """Read models whose backlog is at least FAR_BEHIND_EVENTS and more than twice
        what their active generation has applied: cheaper to rebuild than to catch up."""
        head = self.head()
        active = self.active_generations()
        behind = []
        for name in names:
            generation = active.get(name)
            if generation is None:
                continue
            position = self.position(name, generation)
            lag = head - position
            if lag >= FAR_BEHIND_EVENTS and lag > 2 * position:
                behind.append(name)
        return behind

    def head(self) -> int:
        return int(self.ct.app.recorder.max_notification_id() or 0)

    # --- catching up -----------------------------------------------------------------

    def catch_up(
        self, names: Iterable[str] | None = None, *, max_seconds: float | None = None
    ) -> int:
        """Processes every projection up to the head; returns the number of events applied.

        All read models go in one batch at a time; after a conflict with another worker,
        one at a time in a random order, so that concurrent workers spread out.
        """
        self.setup()
        chosen = list(names) if names is not None else list(self.projections)
        stale = self.stale(chosen)
        if stale:
            # Tables of an older layout (after an upgrade): built anew, in the new layout.
            log.warning(
                "read models %s have an older layout or search-term key; rebuilding",
                ", ".join(stale),
            )
        far_behind = self.far_behind([name for name in chosen if name not in stale])
        if far_behind:
            # A backlog much larger than what was built (a first start on an imported
            # store): a rebuild builds the indexes once, where batches would update them.
            log.info("read models %s are far behind; rebuilding", ", ".join(far_behind))
        rebuilding = [*stale, *far_behind]
        if rebuilding and not self.rebuild_many(rebuilding, max_seconds=max_seconds):
            return 0  # unfinished: the next catch-up resumes it
        started = time.monotonic()
        generations = {
            name: generation
            for name in chosen
            if (generation := self.active_generation(name)) is not None
        }
        # Every read model in one batch: the log read and decoded once, one transaction
        # (a batch a read model cost a job's few dozen events a decode and a commit per
        # read model: 0.72 CPU ms an event in `casetrail up` against 0.13 in bulk).
        applied = 0
        applied_by: dict[str, int] = {}
        while generations:
            done, count = self.run_batches(
                generations, limit=self.batch_size, applied_by=applied_by
            )
            if count is None:
                # Another worker moved a read model meanwhile: one at a time from here,
                # in a random order, so that concurrent workers spread out.
                return applied + self._catch_up_each(list(generations), started, max_seconds)
            applied += count
            if done:
                break
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                return applied
        for name, generation in generations.items():
            if applied_by.get(name, 0) >= ANALYZE_AFTER_EVENTS:
                self.analyze(name, generation)
        return applied

    def _catch_up_each(self, chosen: list[str], started: float, max_seconds: float | None) -> int:
        random.shuffle(chosen)
        applied = 0
        for name in chosen:
            # Only the active generation is caught up here; a building one is rebuild()'s.
            generation = self.active_generation(name)
            if generation is None:
                continue
            applied_here = 0
            while True:
                done, count = self.run_batch(name, generation)
                applied_here += count or 0
                if done or (max_seconds is not None and time.monotonic() - started > max_seconds):
                    break
            applied += applied_here
            if applied_here >= ANALYZE_AFTER_EVENTS:
                self.analyze(name, generation)
            if not done:
                return applied
        return applied

    def run_batch(
        self, name: str, generation: int, *, switch: bool = False
    ) -> tuple[bool, int | None]:
        """One batch after the tracked position. Returns (caught_up, events_applied).

        With `switch`, the transaction that reaches the head also makes this generation
        the active one.
        """
        return self.run_batches({name: generation}, switch=switch, limit=self.batch_size)

    def run_batches(
        self,
        generations: dict[str, int],
        *,
        switch: bool = False,
        limit: int | None = None,
        shares: dict[str, tuple[int, int]] | None = None,
        stop: int | None = None,
        applied_by: dict[str, int] | None = None,
    ) -> tuple[bool, int | None]:
        """One batch for several read models at once: the log is read and decoded once,
        and every read model's rows and tracking record are written in one transaction.
        Returns (caught_up, events_applied summed over the read models).

        With `shares` ({name: (lo, hi)}), those read models apply only the events of
        cases in buckets [lo, hi), under the share's own tracking record (a process of a
        rebuild); a share whose record is gone (merged meanwhile) is done. With `stop`,
        no event after that position is read. None for the events applied: a claim
        failed (another process moved a tracking record since it was read; nothing was
        written). With `applied_by`, each read model's events applied are added to it.
        """
        limit = limit or self.batch_size
        shares = shares or {}
        positions: dict[str, int] = {}
        for name, g in generations.items():
            if name in shares:
                found = self._share_position(name, g, shares[name])
                if found is None:
                    continue
                positions[name] = found
            elif not self.stopped(name, g):
                positions[name] = self.position(name, g)
        if not positions:
            return True, 0
        notifications = self.ct.app.recorder.select_notifications(
            start=min(positions.values()), limit=limit, stop=stop, inclusive_of_start=False
        )
        if not notifications and not switch:
            return True, 0
        applied = self._apply(
            {name: (generations[name], position) for name, position in positions.items()},
            notifications,
            switch=switch and len(notifications) < limit,
            shares=shares,
            applied_by=applied_by,
        )
        if applied is None:
            return False, None
        return len(notifications) < limit, applied

    def apply_after(
        self,
        name: str,
        generation: int,
        before: int,
        notifications: Sequence[Notification],
        *,
        switch: bool = False,
    ) -> int | None:
        """Applies notifications read after position `before`, in one transaction, if the
        tracking record still holds `before`; None if another worker got there first."""
        return self._apply(
            {name: (generation, before)},
            notifications,
            switch=switch and len(notifications) < self.batch_size,
        )

    def _apply(
        self,
        claims: dict[str, tuple[int, int]],
        notifications: Sequence[Notification],
        *,
        switch: bool,
        shares: dict[str, tuple[int, int]] | None = None,
        applied_by: dict[str, int] | None = None,
    ) -> int | None:
        """One transaction: per read model, claim its tracking record at the position the
        batch was read after, apply the events past it, advance the record; and switch
        the generations to active if `switch`. None if any claim fails (nothing written).
        A read model in `shares` applies only its share's cases, under the share's record;
        one that is not may not be applied while shares of its generation exist."""
        shares = {name: share for name, share in (shares or {}).items() if name in claims}
        events = self._decode_all(notifications, self._wanted(claims, shares))
        counts: dict[str, int] = {}
        # The events are applied in memory first, reading rows from a read-only snapshot,
        # so the write lock (all of SQLite's) is held only to write. Safe because every
        # write to a generation's tables advances its tracking record: if the claim below
        # still finds `before`, nothing read here has changed since.
        batches: dict[str, Batch] = {}
        parks: dict[str, tuple[list[tuple[int, str, str, str]], int | None]] = {}
        with self.db.transaction(commit=False) as reader:
            for name, (generation, before) in sorted(claims.items()):
                batch, count, parked, stop = self._apply_in_memory(
                    reader, name, generation, before, events, shares.get(name)
                )
                counts[name] = count
                batches[name] = batch
                parks[name] = (parked, stop)
        try:
            with self.db.writer(), self.db.derived_transaction() as cur:
                # Read models outgrow SQLite's default 2 MB page cache quickly.
                self.db.use_cache(cur, SQLITE_CACHE_KIB)
                for name, (generation, before) in sorted(claims.items()):
                    share = shares.get(name)
                    tname = (
                        tracking_name(name, generation)
                        if share is None
                        else share_tracking_name(name, generation, share)
                    )
                    claimed = cur.execute(
                        f"UPDATE {self.tracking_table} SET notification_id = notification_id "
                        "WHERE application_name = ? AND notification_id = ? "
                        "RETURNING notification_id",
                        (tname, before),
                    ).fetchone()
                    if claimed is None:
                        raise Conflict(tname)
                    if (
                        share is None
                        and self.projections[name].partitionable
                        and self._shares(name, generation, cur)
                    ):
                        # Shares are filling this generation: whole batches would apply
                        # their cases twice. They are merged first (_merge_shares).
                        raise Conflict(tname)
                    batch = batches[name]
                    batch.cur = cur
                    self.projections[name].finish(batch)
                    batch.flush()
                    parked, stop = parks[name]
                    self.parked.add(cur, name, generation, parked, stops=stop is not None)
                    # A read model that stopped is tracked up to the event before it.
                    end = notifications[-1].id if notifications else before
                    if stop is not None:
                        end = stop - 1
                    if end > before:
                        self.recorder._insert_tracking(cur.raw, Tracking(tname, end))
                    if switch:
                        self._switch(cur, name, generation)
        except (Conflict, IntegrityError):
            return None
        if applied_by is not None:
            for name, count in counts.items():
                applied_by[name] = applied_by.get(name, 0) + count
        return sum(counts.values())

    def _apply_in_memory(
        self,
        reader: Any,
        name: str,
        generation: int,
        before: int,
        events: list[Item],
        share: tuple[int, int] | None,
        parked_cases: set[str] | None = None,
    ) -> tuple[Batch, int, list[tuple[int, str, str, str]], int | None]:
        """Applies a batch's events past `before` to one read model, in memory. Returns
        the batch, the events applied, the events parked (position, case, event type,
        error) and the position it stopped at (None: it did not stop).

        An event that cannot be decoded or applied is parked. A partitionable read model
        parks it with every later event of its case and goes on with the other cases
        (the batch is applied again without that case: a handler may have half-changed
        its rows); any other stops before it."""
        projection = self.projections[name]
        kinds = projection.kinds
        isolate = projection.partitionable
        # Each isolated case parks its events from this position on.
        blocked_from = dict.fromkeys(
            parked_cases
            if parked_cases is not None
            else (self.parked.cases(name, generation, reader) if isolate else ()),
            0,
        )
        failures: dict[int, str] = {}
        while True:
            batch = Batch(reader, self.tables(name, generation), self)
            applied = 0
            parked: list[tuple[int, str, str, str]] = []
            stop = None
            again = False
            for position, event, kind, case_id, error in events:
                if position <= before:
                    continue
                if share is None:
                    if kinds is not None and kind not in kinds:
                        continue
                elif not share[0] <= bucket(case_id) < share[1]:
                    continue
                case = str(case_id)
                event_type = type(event).__name__ if event is not None else "unknown"
                error = error or failures.get(position)
                start = blocked_from.get(case)
                if start is not None and position >= start:
                    parked.append((position, case, event_type, error or WAITING))
                    continue
                if error is None:
                    assert event is not None
                    try:
                        projection.apply(batch, event, kind, position)
                        applied += 1
                        continue
                    except Exception as exc:
                        failures[position] = apply_error(exc, event_type)
                        log.warning(
                            "read model %s parks event %s: %s", name, position, failures[position]
                        )
                        if isolate:
                            blocked_from[case] = position
                        again = True  # a handler may have half-changed the batch's rows
                        break
                parked.append((position, case, event_type, error))
                if isolate:
                    blocked_from[case] = position
                    continue
                stop = position
                break
            if not again:
                return batch, applied, parked, stop

    def _wanted(
        self, claims: dict[str, Any], shares: dict[str, tuple[int, int]]
    ) -> tuple[set[str], set[int]] | None:
        """What a batch for these claims must decode: None for every event, else events
        of these case kinds (by topic) and any event of a case in these buckets."""
        kinds: set[str] = set()
        buckets: set[int] = set()
        for name in claims:
            share = shares.get(name)
            if share is not None:
                buckets.update(range(*share))
                continue
            needed = self.projections[name].kinds
            if needed is None:
                return None
            kinds |= needed
        return kinds, buckets

    def _decode_all(
        self,
        notifications: Sequence[Notification],
        wanted: tuple[set[str], set[int]] | None = None,
    ) -> list[Item]:
        """The batch's case events with their positions and kinds, decoded once (with
        `wanted`, only events of those kinds or of cases in those buckets)."""
        events: list[Item] = []
        topic_kinds = self._topic_kinds
        chosen = [
            notification
            for notification in notifications
            # Read-access records are not decoded.
            if notification.topic not in ACCESS_TOPICS
            and (
                wanted is None
                or topic_kinds.get(notification.topic) in wanted[0]
                or bucket(notification.originator_id) in wanted[1]
            )
        ]
        mapper = self.ct.app.mapper
        if isinstance(mapper, PersonalMapper):
            mapper.prefetch_keys(chosen)
        for notification in chosen:
            try:
                event = self._decode(notification)
            except Exception as exc:
                # A case event this build knows but cannot decode: parked, not skipped.
                events.append(
                    (
                        notification.id,
                        None,
                        topic_kinds[notification.topic],
                        notification.originator_id,
                        decode_error(exc),
                    )
                )
                continue
            if event is None:
                continue
            kind = self._kinds.get(type(event))
            if kind is not None:
                events.append((notification.id, event, kind, event.originator_id, None))
        return events

    @cached_property
    def _topic_kinds(self) -> dict[str, str]:
        """The case kind of each case event's topic (skipping needs no decoding)."""
        return {get_topic(event_class): kind for event_class, kind in self._kinds.items()}

    def _decode(self, notification: Notification) -> CaseEvent | None:
        """The domain event, or None for what this read model does not know (other
        aggregates, kinds this build lacks); those are skipped but still tracked. A case
        event of a known type that cannot be decoded raises (it is parked)."""
        try:
            event = self.ct.app.mapper.to_domain_event(notification)
        except Exception:
            if notification.topic in self._topic_kinds:
                raise
            log.warning(
                "skipping notification %s (%s): cannot decode",
                notification.id,
                notification.topic.split(":")[0],
            )
            return None
        return event if isinstance(event, CaseEvent) else None

    def place(self, unit: str) -> Place:
        place = self._places.get(unit)
        if place is None:
            try:
                chain = self.ct.directory.chain(unit)
            except UnknownUnit:
                # Appends name existing units only; never let one event stop a projection.
                log.warning("unit %s is not in the unit tree; counted on its own", unit)
                return Place(unit, (unit,))
            place = Place(unit, tuple(reversed(chain)))
            self._places[unit] = place
        return place

    # --- inspection -------------------------------------------------------------------

    def lagging(self) -> bool:
        """Whether any read model's active generation is behind the head: what `status`
        says of the lags, without its other queries (a catch-up job asks after each run)."""
        self.setup()
        head = self.head()
        active = self.active_generations()
        return any(self.position(name, active.get(name, 1)) < head for name in self.projections)

    def status(self) -> list[dict[str, Any]]:
        self.setup()
        head = self.head()
        active = self.active_generations()
        stale = self.stale()
        parked_counts = self.parked.counts()
        result = []
        for name in self.projections:
            generation = active.get(name, 1)
            position = self.position(name, generation)
            entry: dict[str, Any] = {
                "name": name,
                "position": position,
                "head": head,
                "lag": max(head - position, 0),
                "generation": generation,
            }
            if name in stale:
                entry["stale"] = True
            parked = parked_counts.get((name, generation), 0)
            if parked:
                entry["parked"] = parked
                stopped = self.parked.stopped_at(name, generation)
                if stopped is not None:
                    entry["stopped_at"] = stopped
            building = self._building_generation(name)
            if building is not None:
                shares = self._shares(name, building)
                entry["rebuilding"] = {
                    "generation": building,
                    # Filled in shares of cases (by several processes): the least advanced.
                    "position": min(shares.values()) if shares else self.position(name, building),
                }
                if shares:
                    entry["rebuilding"]["shares"] = {
                        f"{lo}-{hi}": position for (lo, hi), position in sorted(shares.items())
                    }
            result.append(entry)
        return result

    def digest(self, name: str, generation: int | None = None) -> str:
        """SHA-256 over every row of a generation's tables (decrypting what is encrypted,
        which is randomised), in a canonical order."""
        self.setup()
        generation = generation or self.active_generation(name)
        assert generation is not None
        tables = self.tables(name, generation)
        digest = hashlib.sha256()
        for table in self.projections[name].tables:
            rows = self.db.query(f"SELECT * FROM {tables[table]}")
            canonical = sorted(
                json.dumps(self.privacy.canonical_row(row), sort_keys=True, default=str)
                for row in rows
            )
            digest.update(f"{table}\n".encode())
            for line in canonical:
                digest.update(line.encode() + b"\n")
        return digest.hexdigest()
