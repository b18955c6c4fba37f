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
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from eventsourcing.persistence import IntegrityError, Notification, PersistenceError, Tracking

from casetrail.db import Cursor
from domain.case import CaseEvent
from domain.clock import cst_date
from domain.errors import UnknownUnit
from domain.kinds import KINDS

if TYPE_CHECKING:
    from casetrail.bootstrap import Casetrail
    from projections.privacy import Privacy

log = logging.getLogger("casetrail.projections")

BATCH_SIZE = 500
# A rebuild fills a generation nobody reads yet: bigger transactions, fewer commits.
REBUILD_BATCH_SIZE = 5000
ACTIVE_TABLE = "rm_active"
GENERATIONS_TABLE = "rm_generations"
VERSIONS_TABLE = "rm_versions"
# Unit chains are stored root first in columns u0..u5 (province → village and one more).
UNIT_DEPTH = 6
# A retired generation is dropped only this long after the switch: a query that read the
# old pointer finishes long before.
RETIRED_GRACE_SECONDS = 600.0
SQLITE_CACHE_KIB = 65536
# A backlog this long (and over twice what was applied) is rebuilt, not caught up.
FAR_BEHIND_EVENTS = 50_000
# A catch-up that applied this many events refreshes PostgreSQL's planner statistics.
ANALYZE_AFTER_EVENTS = 10_000

META_TABLES = [
    f"CREATE TABLE IF NOT EXISTS {ACTIVE_TABLE} (name TEXT PRIMARY KEY, generation BIGINT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {GENERATIONS_TABLE} (name TEXT NOT NULL, generation BIGINT NOT NULL, "
    "state TEXT NOT NULL, created_at TEXT NOT NULL, retired_at DOUBLE PRECISION, "
    "PRIMARY KEY (name, generation))",
    # The layout version of each generation's tables (no row: version 1).
    f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (name TEXT NOT NULL, generation BIGINT NOT NULL, "
    "version BIGINT NOT NULL, PRIMARY KEY (name, generation))",
]


class Conflict(Exception):
    """Another worker advanced the projection since this batch was read."""


# A partitionable read model's rebuild may be split by case into shares of these buckets.
SHARE_BUCKETS = 1000


def tracking_name(name: str, generation: int) -> str:
    return f"rm:{name}:{generation}"


def share_tracking_name(name: str, generation: int, share: tuple[int, int]) -> str:
    """The tracking record of the cases of buckets [lo, hi) of a building generation."""
    return f"{tracking_name(name, generation)}:{share[0]}-{share[1]}"


def share_names(name: str, generation: int) -> tuple[str, str]:
    """Bounds (exclusive) of the tracking names of a generation's shares."""
    prefix = tracking_name(name, generation) + ":"
    return prefix, prefix[:-1] + ";"  # ';' sorts right after ':'


def share_label(share: tuple[str, tuple[int, int]]) -> str:
    name, (lo, hi) = share
    return f"{name}[{lo}:{hi}]"


def bucket(case_id: Any) -> int:
    """A case's bucket (0 to SHARE_BUCKETS - 1), from its UUID."""
    return int(case_id.int % SHARE_BUCKETS)


def plan_groups(
    weights: dict[str, float], partitionable: set[str], processes: int
) -> list[tuple[dict[str, float], dict[str, tuple[int, int]]]]:
    """Splits read models over `processes` groups of about equal weight: whole read models
    first (heaviest first, each to the lightest group), then the partitionable ones in
    shares of buckets that level the groups (water-filling). Returns, per non-empty
    group, its whole read models and its shares ({name: (lo, hi)})."""
    count = max(1, processes)
    loads = [0.0] * count
    whole: list[dict[str, float]] = [{} for _ in range(count)]
    for name in sorted(weights, key=lambda n: (-weights[n], n)):
        if name in partitionable:
            continue
        lightest = loads.index(min(loads))
        whole[lightest][name] = weights[name]
        loads[lightest] += weights[name]
    shares: list[dict[str, tuple[int, int]]] = [{} for _ in range(count)]
    for name in sorted(partitionable & set(weights)):
        weight = weights[name]
        ordered = sorted(range(count), key=lambda i: loads[i])
        level = 0.0
        for k in range(1, count + 1):
            level = (sum(loads[i] for i in ordered[:k]) + weight) / k
            if k == count or level <= loads[ordered[k]]:
                break
        lo = 0
        takers = [i for i in ordered if level - loads[i] > 0]
        for n, i in enumerate(takers):
            part = (level - loads[i]) / weight
            hi = (
                SHARE_BUCKETS
                if n == len(takers) - 1
                else min(SHARE_BUCKETS, lo + round(part * SHARE_BUCKETS))
            )
            if hi > lo:
                shares[i][name] = (lo, hi)
                loads[i] += weight * (hi - lo) / SHARE_BUCKETS
            lo = hi
        if len([i for i in range(count) if name in shares[i]]) == 1:
            # One share of everything: the read model is filled whole.
            for i in range(count):
                if shares[i].pop(name, None) is not None:
                    whole[i][name] = weight
    return [(whole[i], shares[i]) for i in range(count) if whole[i] or shares[i]]


def is_index(statement: str) -> bool:
    """Secondary indexes are created after a rebuild has filled its tables: one sort
    instead of a B-tree updated at random places by every batch."""
    return statement.lstrip().upper().startswith(("CREATE INDEX", "CREATE UNIQUE INDEX"))


class Tables:
    """The physical table names of one generation of a read model."""

    def __init__(self, name: str, generation: int, dialect: str = "sqlite") -> None:
        self.name = name
        self.generation = generation
        self.dialect = dialect

    @property
    def clustered(self) -> str:
        """Table option: rows stored in their primary key's B-tree (SQLite only)."""
        return " WITHOUT ROWID" if self.dialect == "sqlite" else ""

    def __getitem__(self, table: str) -> str:
        return f"rm_{self.name}_{table}_{self.generation}"


@dataclass(frozen=True)
class Place:
    """A handling unit and the chain above it, as read models store it."""

    unit: str
    chain: tuple[str, ...]  # root first

    @cached_property
    def path(self) -> str:
        """`320000/320100/320102/`: a unit's subtree is a prefix range."""
        return "".join(code + "/" for code in self.chain)

    def columns(self) -> list[str | None]:
        chain = list(self.chain[:UNIT_DEPTH])
        return chain + [None] * (UNIT_DEPTH - len(chain))


def subtree_range(path: str) -> tuple[str, str]:
    """Paths at or below `path` (which ends in '/') are in [path, upper)."""
    return path, path[:-1] + "0"  # '0' sorts right after '/'


class Batch:
    """What one transaction's worth of events may touch: rows, counters, unit chains."""

    def __init__(self, cur: Cursor, tables: Tables, engine: Engine) -> None:
        self.cur = cur
        self.t = tables
        self.engine = engine
        self.counters: dict[tuple[str, str, str, str], int] = defaultdict(int)
        # Rows a projection keeps in memory for the batch and writes in finish().
        self.scratch: dict[str, Any] = {}
        # Rows read through row(): written back once, at the end of the batch.
        self._rows: dict[str, dict[Any, dict[str, Any]]] = {}
        self._new: dict[str, set[Any]] = defaultdict(set)
        self._changed: dict[tuple[str, Any], set[str]] = defaultdict(set)
        self._keys: dict[str, str] = {}
        self._later: list[tuple[str, Sequence[Any]]] = []

    @property
    def privacy(self) -> Privacy:
        return self.engine.privacy

    def place(self, unit: str) -> Place:
        return self.engine.place(unit)

    def count(self, table: str, place: Place, day: date | str, metric: str, n: int = 1) -> None:
        """Adds `n` to a (unit, day, metric) counter of the unit and of every unit above it."""
        key_day = day if isinstance(day, str) else day.isoformat()
        for unit in place.chain:
            self.counters[(table, unit, key_day, metric)] += n

    def later(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A write, made in order when the batch is written (apply() only reads)."""
        self._later.append((sql, params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        return self.cur.execute(sql, params).fetchone()

    def row(self, table: str, key_column: str, key: Any) -> dict[str, Any] | None:
        """A row by its key, read once a batch; change it with `update()`."""
        rows = self._rows.setdefault(table, {})
        if key not in rows:
            found = self.one(f"SELECT * FROM {self.t[table]} WHERE {key_column} = ?", (key,))
            if found is None:
                return None
            rows[key] = dict(found)
            self._keys[table] = key_column
        return rows[key]

    def insert(self, table: str, key_column: str, row: dict[str, Any]) -> None:
        """A new row (every column), written at the end of the batch."""
        key = row[key_column]
        rows = self._rows.setdefault(table, {})
        if key in rows:
            return  # the opening event is applied once (tracking sees to that)
        rows[key] = dict(row)
        self._new[table].add(key)
        self._keys[table] = key_column

    def update(self, table: str, key: Any, **changes: Any) -> None:
        row = self._rows[table][key]
        for column, value in changes.items():
            if row[column] != value:
                row[column] = value
                self._changed[(table, key)].add(column)

    def _write_rows(self) -> None:
        for table, rows in self._rows.items():
            name, key_column = self.t[table], self._keys[table]
            new = [rows[key] for key in sorted(self._new[table], key=str)]
            if new:
                names = list(new[0])
                self.cur.insert_many(
                    name,
                    names,
                    [[row[c] for c in names] for row in new],
                    on_conflict=f"ON CONFLICT ({key_column}) DO NOTHING",
                )
            updates: dict[tuple[str, ...], list[list[Any]]] = defaultdict(list)
            for key in rows:
                changed = self._changed.get((table, key))
                if changed and key not in self._new[table]:
                    columns = tuple(sorted(changed))
                    updates[columns].append([*(rows[key][c] for c in columns), key])
            for columns, params in updates.items():
                self.cur.update_many(name, columns, key_column, params)
        self._rows.clear()
        self._new.clear()
        self._changed.clear()

    def flush(self) -> None:
        """Writes the rows kept for the batch and the counters; touched counter keys are
        written even at zero, so the rows do not depend on where batch boundaries fell."""
        self._write_rows()
        for sql, params in self._later:
            self.cur.execute(sql, params)
        self._later.clear()
        by_table: dict[str, list[tuple[str, str, str, int]]] = defaultdict(list)
        for (table, unit, day, metric), n in sorted(self.counters.items()):
            by_table[table].append((unit, day, metric, n))
        for table, rows in by_table.items():
            name = self.t[table]
            self.cur.insert_many(
                name,
                ("unit", "day", "metric", "n"),
                rows,
                on_conflict=f"ON CONFLICT (unit, day, metric) DO UPDATE SET n = {name}.n + excluded.n",
            )
        self.counters.clear()


def counter_table(t: Tables, table: str = "counts") -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {t[table]} (unit TEXT NOT NULL, day TEXT NOT NULL, "
        f"metric TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (unit, day, metric)){t.clustered}"
    ]


def event_day(event: CaseEvent, field: str | None = None) -> str:
    """The day an event counts on: a date its data names, else its recorded day (CST)."""
    if field:
        value = event.data.get(field)
        if isinstance(value, str) and value:
            return value[:10]
    return cst_date(event.timestamp).isoformat()


class Projection:
    """A read model: its tables and how each event changes them."""

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    # Relative cost per event, to balance a rebuild over processes.
    weight: ClassVar[float] = 1.0
    # Whether a rebuild may fill it in shares of cases, one process each: every row and
    # every write of apply()/finish() concerns one case, or adds to a counter.
    partitionable: ClassVar[bool] = False
    # The case kinds whose events it applies (None: all); a batch decodes only these.
    kinds: ClassVar[frozenset[str] | None] = None
    # The layout of the tables; a generation of an older layout is rebuilt by catch_up().
    version: ClassVar[int] = 1

    def create_statements(self, t: Tables) -> list[str]:
        raise NotImplementedError

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        raise NotImplementedError

    def finish(self, b: Batch) -> None:
        """Writes what the batch kept in memory; called once before the commit."""


def kind_by_event_class() -> dict[type, str]:
    return {
        event_class: kind for kind, case_class in KINDS.items() for event_class in case_class.events
    }


class Engine:
    """Runs projections against one casetrail's datastore."""

    def __init__(
        self,
        ct: Casetrail,
        projections: Iterable[Projection],
        *,
        batch_size: int = BATCH_SIZE,
        rebuild_batch_size: int = REBUILD_BATCH_SIZE,
    ) -> None:
        from projections.privacy import Privacy

        self.ct = ct
        self.db = ct.db
        self.projections = {p.name: p for p in projections}
        self.batch_size = batch_size
        self.rebuild_batch_size = max(rebuild_batch_size, batch_size)
        self.recorder: Any = ct.app.factory.tracking_recorder()
        self.tracking_table: str = getattr(self.recorder, "tracking_table_name", "tracking")
        self.privacy = Privacy(ct.settings.cipher_key)
        self._places: dict[str, Place] = {}
        self._kinds = kind_by_event_class()
        self._ready = False

    # --- set-up -----------------------------------------------------------------------

    def setup(self) -> None:
        """Creates the pointer tables and a first generation of every read model."""
        if self._ready:
            return
        self._retry(lambda: self.db.execute_script(META_TABLES))
        for name in self.projections:
            if self.active_generation(name) is None:
                self._retry(lambda name=name: self._create_generation(name, 1, activate=True))
        self._ready = True

    def tables(self, name: str, generation: int) -> Tables:
        return Tables(name, generation, self.db.dialect)

    def _create_generation(self, name: str, generation: int, *, activate: bool) -> None:
        tables = self.tables(name, generation)
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO {GENERATIONS_TABLE} (name, generation, state, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name, generation) DO NOTHING",
                (name, generation, "active" if activate else "building", _now()),
            )
            cur.execute(
                f"INSERT INTO {VERSIONS_TABLE} (name, generation, version) VALUES (?, ?, ?) "
                "ON CONFLICT (name, generation) DO NOTHING",
                (name, generation, self.projections[name].version),
            )
            for statement in self.projections[name].create_statements(tables):
                # A generation being built gets its indexes once it has caught up.
                if activate or not is_index(statement):
                    cur.execute(statement)
            cur.execute(
                f"INSERT INTO {self.tracking_table} (application_name, notification_id) "
                "VALUES (?, 0) ON CONFLICT (application_name) DO NOTHING",
                (tracking_name(name, generation),),
            )
            if activate:
                cur.execute(
                    f"INSERT INTO {ACTIVE_TABLE} (name, generation) VALUES (?, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, generation),
                )

    def _create_indexes(self, name: str, generation: int) -> None:
        tables = self.tables(name, generation)
        with self.db.transaction() as cur:
            if self.db.dialect == "sqlite":
                cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            for statement in self.projections[name].create_statements(tables):
                if is_index(statement):
                    cur.execute(statement)

    def _retry(self, action: Any, attempts: int = 5) -> None:
        # Two processes creating the same tables at once on PostgreSQL may collide.
        for attempt in range(attempts):
            try:
                action()
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    # --- positions ----------------------------------------------------------------------

    def active_generation(self, name: str) -> int | None:
        row = self.db.query_one(f"SELECT generation FROM {ACTIVE_TABLE} WHERE name = ?", (name,))
        return int(row["generation"]) if row else None

    def active_generations(self) -> dict[str, int]:
        rows = self.db.query(f"SELECT name, generation FROM {ACTIVE_TABLE}")
        return {row["name"]: int(row["generation"]) for row in rows}

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

    def stale(self, names: Iterable[str] | None = None) -> list[str]:
        """Read models whose active generation has an older layout than this build's."""
        versions = {
            (row["name"], int(row["generation"])): int(row["version"])
            for row in self.db.query(f"SELECT name, generation, version FROM {VERSIONS_TABLE}")
        }
        active = self.active_generations()
        return [
            name
            for name in (names if names is not None else self.projections)
            if name in active
            and versions.get((name, active[name]), 1) < self.projections[name].version
        ]

    def position(self, name: str, generation: int) -> int:
        return int(self.recorder.max_tracking_id(tracking_name(name, generation)) or 0)

    def head(self) -> int:
        return int(self.ct.app.recorder.max_notification_id() or 0)

    # --- catching up -----------------------------------------------------------------

    def catch_up(
        self, names: Iterable[str] | None = None, *, max_seconds: float | None = None
    ) -> int:
        """Processes every projection up to the head; returns the number of events applied.

        Projections are taken in a random order so that concurrent workers spread out.
        """
        self.setup()
        chosen = list(names) if names is not None else list(self.projections)
        stale = self.stale(chosen)
        if stale:
            # Tables of an older layout (after an upgrade): built anew, in the new layout.
            log.warning("read models %s have an older layout; rebuilding", ", ".join(stale))
        far_behind = self.far_behind([name for name in chosen if name not in stale])
        if far_behind:
            # A backlog much larger than what was built (a first start on an imported
            # store): a rebuild builds the indexes once, where batches would update them.
            log.info("read models %s are far behind; rebuilding", ", ".join(far_behind))
        rebuilding = [*stale, *far_behind]
        if rebuilding and not self.rebuild_many(rebuilding, max_seconds=max_seconds):
            return 0  # unfinished: the next catch-up resumes it
        random.shuffle(chosen)
        started = time.monotonic()
        applied = 0
        for name in chosen:
            # Only the active generation is caught up here; a building one is rebuild()'s.
            generation = self.active_generation(name)
            if generation is None:
                continue
            applied_here = 0
            while True:
                done, count = self.run_batch(name, generation)
                applied_here += count
                if done or (max_seconds is not None and time.monotonic() - started > max_seconds):
                    break
            applied += applied_here
            if applied_here >= ANALYZE_AFTER_EVENTS:
                self.analyze(name, generation)
            if not done:
                return applied
        return applied

    def run_batch(self, name: str, generation: int, *, switch: bool = False) -> tuple[bool, int]:
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
    ) -> tuple[bool, int]:
        """One batch for several read models at once: the log is read and decoded once,
        and every read model's rows and tracking record are written in one transaction.
        Returns (caught_up, events_applied summed over the read models).

        With `shares` ({name: (lo, hi)}), those read models apply only the events of
        cases in buckets [lo, hi), under the share's own tracking record (a process of a
        rebuild); a share whose record is gone (merged meanwhile) is done. With `stop`,
        no event after that position is read."""
        limit = limit or self.batch_size
        shares = shares or {}
        positions: dict[str, int] = {}
        for name, g in generations.items():
            if name in shares:
                found = self._share_position(name, g, shares[name])
                if found is None:
                    continue
                positions[name] = found
            else:
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
        )
        if applied is None:
            return False, 0
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
    ) -> int | None:
        """One transaction: per read model, claim its tracking record at the position the
        batch was read after, apply the events past it, advance the record; and switch
        the generations to active if `switch`. None if any claim fails (nothing written).
        A read model in `shares` applies only its share's cases, under the share's record;
        one that is not may not be applied while shares of its generation exist."""
        shares = {name: share for name, share in (shares or {}).items() if name in claims}
        events = self._decode_all(notifications, self._wanted(claims, shares))
        applied = 0
        # The events are applied in memory first, reading rows from a read-only snapshot,
        # so the write lock (all of SQLite's) is held only to write. Safe because every
        # write to a generation's tables advances its tracking record: if the claim below
        # still finds `before`, nothing read here has changed since.
        batches: dict[str, Batch] = {}
        with self.db.transaction(commit=False) as reader:
            for name, (generation, before) in sorted(claims.items()):
                projection = self.projections[name]
                batch = Batch(reader, self.tables(name, generation), self)
                share = shares.get(name)
                kinds = projection.kinds
                if share is None:
                    for position, event, kind in events:
                        if position > before and (kinds is None or kind in kinds):
                            projection.apply(batch, event, kind, position)
                            applied += 1
                else:
                    lo, hi = share
                    for position, event, kind in events:
                        if position > before and lo <= bucket(event.originator_id) < hi:
                            projection.apply(batch, event, kind, position)
                            applied += 1
                batches[name] = batch
        try:
            with self.db.writer(), self.db.derived_transaction() as cur:
                if self.db.dialect == "sqlite":
                    # Read models outgrow SQLite's default 2 MB page cache quickly.
                    cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
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
                    if notifications and notifications[-1].id > before:
                        self.recorder._insert_tracking(
                            cur.raw, Tracking(tname, notifications[-1].id)
                        )
                    if switch:
                        self._switch(cur, name, generation)
        except (Conflict, IntegrityError):
            return None
        return applied

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
    ) -> list[tuple[int, CaseEvent, str]]:
        """The batch's case events with their positions and kinds, decoded once (with
        `wanted`, only events of those kinds or of cases in those buckets)."""
        events = []
        topic_kinds = self._topic_kinds
        for notification in notifications:
            if wanted is not None and (
                topic_kinds.get(notification.topic) not in wanted[0]
                and bucket(notification.originator_id) not in wanted[1]
            ):
                continue
            event = self._decode(notification)
            if event is None:
                continue
            kind = self._kinds.get(type(event))
            if kind is not None:
                events.append((notification.id, event, kind))
        return events

    # --- shares of a rebuild ------------------------------------------------------------

    def _shares(
        self, name: str, generation: int, cur: Cursor | None = None
    ) -> dict[tuple[int, int], int]:
        """The shares filling a building generation, with their positions."""
        params = share_names(name, generation)
        sql = (
            f"SELECT application_name, notification_id FROM {self.tracking_table} "
            "WHERE application_name > ? AND application_name < ?"
        )
        rows = (
            cur.execute(sql, params).fetchall() if cur is not None else self.db.query(sql, params)
        )
        found = {}
        for row in rows:
            lo, _, hi = row["application_name"][len(params[0]) :].partition("-")
            found[(int(lo), int(hi))] = int(row["notification_id"])
        return found

    def _share_position(self, name: str, generation: int, share: tuple[int, int]) -> int | None:
        row = self.db.query_one(
            f"SELECT notification_id FROM {self.tracking_table} WHERE application_name = ?",
            (share_tracking_name(name, generation, share),),
        )
        return int(row["notification_id"]) if row else None

    def _open_shares(self, name: str, generation: int, shares: list[tuple[int, int]]) -> None:
        """Tracking records for shares of a building generation, each starting where the
        generation's own record is (shares of an interrupted rebuild are kept if they
        are these; others are merged first)."""
        existing = self._shares(name, generation)
        if existing and set(existing) != set(shares):
            self._merge_shares(name, generation)
            existing = {}
        if existing:
            return
        main = tracking_name(name, generation)
        with self.db.writer(), self.db.transaction() as cur:
            # Claims the generation's record (a whole batch of another process waits or
            # fails its claim), so that the shares start exactly where it stands.
            row = cur.execute(
                f"UPDATE {self.tracking_table} SET notification_id = notification_id "
                "WHERE application_name = ? RETURNING notification_id",
                (main,),
            ).fetchone()
            start = int(row["notification_id"]) if row else 0
            for share in shares:
                cur.execute(
                    f"INSERT INTO {self.tracking_table} (application_name, notification_id) "
                    "VALUES (?, ?) ON CONFLICT (application_name) DO NOTHING",
                    (share_tracking_name(name, generation, share), start),
                )

    def _merge_shares(self, name: str, generation: int) -> None:
        """Brings every share of a building generation to the same position and folds
        them into the generation's own tracking record, in one transaction. After it the
        generation is filled by whole batches again."""
        main = tracking_name(name, generation)
        while True:
            shares = self._shares(name, generation)
            if not shares:
                return
            target = max(shares.values())
            for share, position in shares.items():
                while position < target:
                    self.run_batches(
                        {name: generation},
                        shares={name: share},
                        stop=target,
                        limit=self.rebuild_batch_size,
                    )
                    found = self._share_position(name, generation, share)
                    if found is None:
                        break  # merged by another process
                    position = found
            try:
                with self.db.writer(), self.db.transaction() as cur:
                    for share in shares:
                        claimed = cur.execute(
                            f"UPDATE {self.tracking_table} SET notification_id = notification_id "
                            "WHERE application_name = ? AND notification_id = ? "
                            "RETURNING notification_id",
                            (share_tracking_name(name, generation, share), target),
                        ).fetchone()
                        if claimed is None:
                            raise Conflict(name)
                    if self._shares(name, generation, cur) != dict.fromkeys(shares, target):
                        raise Conflict(name)
                    cur.execute(
                        f"UPDATE {self.tracking_table} SET notification_id = ? "
                        "WHERE application_name = ? AND notification_id <= ?",
                        (target, main, target),
                    )
                    cur.execute(
                        f"DELETE FROM {self.tracking_table} "
                        "WHERE application_name > ? AND application_name < ?",
                        share_names(name, generation),
                    )
            except Conflict:
                continue  # another process moved a share or merged them; look again

    @cached_property
    def _topic_kinds(self) -> dict[str, str]:
        """The case kind of each case event's topic (skipping needs no decoding)."""
        from eventsourcing.utils import get_topic

        return {get_topic(event_class): kind for event_class, kind in self._kinds.items()}

    def _decode(self, notification: Notification) -> CaseEvent | None:
        """The domain event, or None for what this read model does not know (other
        aggregates, kinds this build lacks); those are skipped but still tracked."""
        try:
            event = self.ct.app.mapper.to_domain_event(notification)
        except Exception:
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

    # --- rebuild -------------------------------------------------------------------------

    def rebuild(self, name: str, *, on_batch: Any = None) -> int:
        """Builds a new generation of one read model; see `rebuild_many`."""
        if name not in self.projections:
            raise KeyError(name)
        return self.rebuild_many([name], on_batch=on_batch)[name]

    def rebuild_many(
        self,
        names: Iterable[str] | None = None,
        *,
        on_batch: Any = None,
        processes: int = 1,
        max_seconds: float | None = None,
    ) -> dict[str, int]:
        """Builds a new generation of each read model from event 1, in one pass over the
        log, and switches each to it once caught up. Returns the new generations.

        Queries keep reading the active generations meanwhile. A building generation left
        by an interrupted rebuild is resumed. The tables are filled in large batches with
        no secondary index; the indexes are built once the generation has caught up, then
        the last events are applied and the pointer switched in one transaction.

        With `processes` > 1, the read models are split into that many groups of about
        equal `weight` and each group is filled by a process of its own (each reads the
        log itself); a `partitionable` read model (the case list) is split by case into
        shares where that levels the groups. This process then merges the shares,
        applies what came after and switches.
        With `max_seconds`, stops filling after that long and returns {} (the next call
        resumes).
        """
        started = time.monotonic()
        self.setup()
        chosen = list(names) if names is not None else list(self.projections)
        for name in chosen:
            if name not in self.projections:
                raise KeyError(name)
        self.drop_retired()
        generations = {name: self._new_generation(name) for name in chosen}
        if processes > 1:
            self._fill_in_processes(generations, processes)
        for name, generation in generations.items():
            # Shares (of the processes above, or of an interrupted rebuild) become one.
            self._merge_shares(name, generation)
        while not self.run_batches(generations, limit=self.rebuild_batch_size)[0]:
            if on_batch is not None:
                on_batch(min(self.position(n, g) for n, g in generations.items()))
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                return {}
        for name, generation in generations.items():
            self._retry(lambda n=name, g=generation: self._create_indexes(n, g))
        pending = dict(generations)
        while pending:
            self.run_batches(pending, switch=True, limit=self.rebuild_batch_size)
            pending = {n: g for n, g in pending.items() if self.active_generation(n) != g}
        if on_batch is not None:
            on_batch(min(self.position(n, g) for n, g in generations.items()))
        for name, generation in generations.items():
            self.analyze(name, generation)
        return generations

    def _fill_in_processes(self, generations: dict[str, int], processes: int) -> None:
        """Fills the building generations up to the head, one group per child process."""
        import multiprocessing

        groups = plan_groups(
            {name: self.projections[name].weight for name in generations},
            {name for name in generations if self.projections[name].partitionable},
            processes,
        )
        if len(groups) < 2:
            return
        for name in generations:
            ranges = [shares[name] for _, shares in groups if name in shares]
            if ranges:
                self._open_shares(name, generations[name], ranges)
        context = multiprocessing.get_context("spawn")
        children = [
            context.Process(
                target=_fill_generations,
                args=(
                    self.ct.settings,
                    {name: generations[name] for name in [*whole, *shares]},
                    self.rebuild_batch_size,
                    shares,
                ),
                name="rebuild-" + "+".join([*whole, *map(share_label, shares.items())]),
            )
            for whole, shares in groups
        ]
        for child in children:
            child.start()
        for child in children:
            child.join()
        failed = [child.name for child in children if child.exitcode != 0]
        if failed:
            raise RuntimeError(f"rebuild processes failed: {', '.join(failed)}")

    def _new_generation(self, name: str) -> int:
        generation = self._building_generation(name)
        if generation is None:
            row = self.db.query_one(
                f"SELECT MAX(generation) AS g FROM {GENERATIONS_TABLE} WHERE name = ?", (name,)
            )
            generation = int(row["g"] or 0) + 1 if row else 1
            self._retry(lambda: self._create_generation(name, generation, activate=False))
        return generation

    def analyze(self, name: str, generation: int) -> None:
        """PostgreSQL: VACUUM (ANALYZE) of freshly filled tables, as autovacuum would do
        later. ANALYZE gives the planner its statistics; VACUUM sets the visibility map,
        without which an index-only scan (the overdue counts of the indicators, a search
        term's count) still visits the table for every entry. SQLite's plans are fixed
        by its indexes."""
        if self.db.dialect != "postgres":
            return
        tables = self.tables(name, generation)
        try:
            self.db.maintain(
                [f"VACUUM (ANALYZE) {tables[table]}" for table in self.projections[name].tables]
            )
        except PersistenceError:
            # Two workers analysing one table at once collide ("tuple concurrently
            # updated"); the statistics are only a hint, and the other worker's stand.
            log.warning("VACUUM (ANALYZE) of read model %s skipped", name, exc_info=True)

    def _building_generation(self, name: str) -> int | None:
        row = self.db.query_one(
            f"SELECT MAX(generation) AS g FROM {GENERATIONS_TABLE} WHERE name = ? AND state = 'building'",
            (name,),
        )
        return int(row["g"]) if row and row["g"] is not None else None

    def _switch(self, cur: Cursor, name: str, generation: int) -> None:
        """The atomic switch: one pointer row, in the final batch's transaction."""
        row = cur.execute(
            f"SELECT generation FROM {ACTIVE_TABLE} WHERE name = ?", (name,)
        ).fetchone()
        old = int(row["generation"]) if row else None
        cur.execute(f"UPDATE {ACTIVE_TABLE} SET generation = ? WHERE name = ?", (generation, name))
        cur.execute(
            f"UPDATE {GENERATIONS_TABLE} SET state = 'active' WHERE name = ? AND generation = ?",
            (name, generation),
        )
        if old is not None and old != generation:
            cur.execute(
                f"UPDATE {GENERATIONS_TABLE} SET state = 'retired', retired_at = ? "
                "WHERE name = ? AND generation = ?",
                (time.time(), name, old),
            )

    def drop_retired(self, grace_seconds: float = RETIRED_GRACE_SECONDS) -> list[tuple[str, int]]:
        """Drops generations retired longer ago than the grace period."""
        self.setup()
        rows = self.db.query(
            f"SELECT name, generation FROM {GENERATIONS_TABLE} "
            "WHERE state = 'retired' AND retired_at < ?",
            (time.time() - grace_seconds,),
        )
        dropped = []
        for row in rows:
            name, generation = row["name"], int(row["generation"])
            projection = self.projections.get(name)
            if projection is None:
                continue
            tables = self.tables(name, generation)
            with self.db.transaction() as cur:
                for table in projection.tables:
                    cur.execute(f"DROP TABLE IF EXISTS {tables[table]}")
                cur.execute(
                    f"DELETE FROM {self.tracking_table} WHERE application_name = ?",
                    (tracking_name(name, generation),),
                )
                for table in (GENERATIONS_TABLE, VERSIONS_TABLE):
                    cur.execute(
                        f"DELETE FROM {table} WHERE name = ? AND generation = ?",
                        (name, generation),
                    )
            dropped.append((name, generation))
        return dropped

    # --- inspection -------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        self.setup()
        head = self.head()
        active = self.active_generations()
        stale = self.stale()
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


def default_rebuild_processes() -> int:
    """Two processes where there are two cores: the read models and shares of the case
    list split between them by weight (plan_groups); each reads the log itself, and on
    SQLite they write in turn (Database.writer). More would only add log reads."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _fill_generations(
    settings: Any,
    generations: dict[str, int],
    batch_size: int,
    shares: dict[str, tuple[int, int]] | None = None,
) -> None:
    """A rebuild's child process: fills these building generations (of these shares)
    up to the head."""
    from casetrail.bootstrap import bootstrap
    from projections import engine_for

    ct = bootstrap(settings, seed_units=False)
    try:
        engine = engine_for(ct)
        while not engine.run_batches(generations, limit=batch_size, shares=shares)[0]:
            pass
    finally:
        ct.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()
