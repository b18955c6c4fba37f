"""Incremental deadline sweeps: sweep only the cases whose deadlines may have moved since the
last sweep, instead of reloading every case (workers.sweeps sweeps whatever it is given,
and records each warning and breach exactly once whatever it is given).

A deadline's state (domain.deadlines.state_on) changes for two reasons only:
1. an event of its case (met, extended, made moot, a new deadline): the cases with an event
   after the last sweep's position in the log;
2. the passage of days: a running deadline due on `due` with lead `L` turns `due_soon` on
   `due - L` and `overdue` on `due + 1`. Between the last sweep's day `D0` and today `D1`,
   those are the deadlines of the inbox read model (projections.inbox) with `due` in
   `(D0 + L, D1 + L]` or `[D0, D1 - 1]`.
The inbox may lag the log: the cases with events after the inbox's own position are swept
too (rule 1 from the older of the two positions), so a stale row never hides a case.

The cursor (position, day) is written after the sweep, only forward, so a sweep killed
halfway leaves it where it was and the next one covers the same ground again; the first
sweep (no cursor) and `full=True` sweep every case (the nightly safety net).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.clock import Clock, FixedClock, SystemClock, cst_date
from domain.deadlines import DEADLINE_TYPES, lead_days
from domain.kinds import KINDS
from projections import engine_for
from store.chain_links import CHAIN_TABLE
from workers.sweeps import DeadlineSweeper, SweepReport, sweeper_of

CURSOR_TABLE = "deadline_sweep_cursor"
# A full sweep of at least this many cases runs in `processes` processes (each a share of
# the cases, in the store's order); fewer are not worth the processes' start.
PARALLEL_FROM = 4000


@dataclass
class Cursor:
    position: int
    day: date


class IncrementalSweeps:
    """Sweeps what changed since the last sweep (`name`: whose cursor)."""

    def __init__(
        self, ct: Casetrail, sweeper: DeadlineSweeper | None = None, name: str = "default"
    ) -> None:
        self.ct = ct
        self.db = ct.db
        self.sweeper = sweeper if sweeper is not None else sweeper_of(ct)
        self.name = name
        self.db.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {CURSOR_TABLE} (name TEXT PRIMARY KEY, "
                "position BIGINT NOT NULL, day TEXT NOT NULL)"
            ]
        )

    def cursor(self) -> Cursor | None:
        row = self.db.query_one(
            f"SELECT position, day FROM {CURSOR_TABLE} WHERE name = ?", (self.name,)
        )
        if row is None:
            return None
        return Cursor(int(row["position"]), date.fromisoformat(str(row["day"])))

    def sweep(
        self, *, full: bool = False, universe: set[str] | None = None, processes: int = 1
    ) -> dict[str, Any]:
        """One sweep; `universe` limits it to some cases (tests sharing a store); a large
        sweep in `processes` processes (safe: two sweeps of a case record once)."""
        head_row = self.db.query_one(f"SELECT MAX(position) AS p FROM {CHAIN_TABLE}")
        head = int((head_row or {}).get("p") or 0)
        today = cst_date(self.sweeper.clock.now())
        cursor = None if full else self.cursor()
        if cursor is None:
            ids = self.sweeper.case_ids()
            mode = "full"
        else:
            ids = sorted(self.candidates(cursor, today))
            mode = "incremental"
        if universe is not None:
            ids = [case_id for case_id in ids if case_id in universe]
        if processes > 1 and len(ids) >= PARALLEL_FROM:
            report = sweep_in_processes(self.ct.settings, self.sweeper, ids, processes)
        else:
            report = self.sweeper.sweep(ids)
        if cursor is None or (head, today) != (cursor.position, cursor.day):
            self._advance(head, today)  # a commit (an fsync) only when there is news
        return {"mode": mode, **report.as_dict()}

    def candidates(self, cursor: Cursor, today: date) -> set[str]:
        engine = engine_for(self.ct)
        self.db.once("read models", engine.setup)  # their tables, once a process
        generation = engine.active_generation("inbox")
        inbox_position = engine.position("inbox", generation) if generation else 0
        found = self.changed_since(min(cursor.position, inbox_position))
        if generation and today > cursor.day:
            found |= self.crossing(
                engine.tables("inbox", generation)["deadlines"], cursor.day, today
            )
        return found

    def changed_since(self, position: int) -> set[str]:
        """The cases with an event after `position` (a case: a stream opened by a case's
        opening event; the deadline logs and other streams are not)."""
        openings = [case_class.opening_event.__name__ for case_class in KINDS.values()]
        marks = ", ".join("?" for _ in openings)
        rows = self.db.query(
            f"SELECT DISTINCT c.case_id FROM {CHAIN_TABLE} c WHERE c.position > ? AND EXISTS "
            f"(SELECT 1 FROM {CHAIN_TABLE} o WHERE o.case_id = c.case_id AND o.version = 1 "
            f"AND o.event_type IN ({marks}))",
            [position, *openings],
        )
        return {str(row["case_id"]) for row in rows}

    def crossing(self, table: str, since: date, today: date) -> set[str]:
        """The cases with a running deadline that turned due soon or overdue on a day in
        (since, today]."""
        windows, params = [], []
        for name in DEADLINE_TYPES:
            lead = lead_days(name, self.sweeper.leads)
            windows.append("(deadline = ? AND ((due > ? AND due <= ?) OR (due >= ? AND due < ?)))")
            params += [
                name,
                (since + timedelta(days=lead)).isoformat(),
                (today + timedelta(days=lead)).isoformat(),
                since.isoformat(),
                today.isoformat(),
            ]
        rows = self.db.query(
            f"SELECT DISTINCT case_id FROM {table} WHERE {' OR '.join(windows)}", params
        )
        return {str(row["case_id"]) for row in rows}

    def _advance(self, head: int, today: date) -> None:
        """Moves the cursor forward only (two sweeps may end in any order)."""
        day = today.isoformat()
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO {CURSOR_TABLE} (name, position, day) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (self.name, head, day),
            )
            cur.execute(
                f"UPDATE {CURSOR_TABLE} SET "
                "position = CASE WHEN position < ? THEN ? ELSE position END, "
                "day = CASE WHEN day < ? THEN ? ELSE day END WHERE name = ?",
                (head, head, day, day, self.name),
            )


def sweep_in_processes(
    settings: Settings, sweeper: DeadlineSweeper, ids: list[str], processes: int
) -> SweepReport:
    """`ids` swept in `processes` spawned processes, each over its own share; the reports
    added up. Each child opens the store itself, with this sweeper's leads and its clock
    (the system's, or a fixed one at this moment)."""
    fixed_at = None if isinstance(sweeper.clock, SystemClock) else sweeper.clock.now()
    size = -(-len(ids) // processes)
    shares = [ids[start : start + size] for start in range(0, len(ids), size)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(shares), mp_context=context) as pool:
        futures = [
            pool.submit(_sweep_share, settings, fixed_at, sweeper.leads, share) for share in shares
        ]
        parts = [future.result() for future in futures]
    total = SweepReport()
    for part in parts:
        total.cases += part.cases
        total.warnings += part.warnings
        total.breaches += part.breaches
        total.resolutions += part.resolutions
        total.conflicts += part.conflicts
        total.missing += part.missing
    return total


def _sweep_share(
    settings: Settings, fixed_at: datetime | None, leads: dict[str, int], ids: list[str]
) -> SweepReport:
    clock: Clock = SystemClock() if fixed_at is None else FixedClock(fixed_at)
    ct = bootstrap(settings, clock=clock)
    try:
        return DeadlineSweeper(ct.app, ct.db, clock, leads).sweep(ids)
    finally:
        ct.close()
