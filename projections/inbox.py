"""The inbox read model: every running deadline of every case, with its due day, its unit
and who must act, as the domain's table of deadlines (domain.deadlines) gives them.

The deadlines are the domain's, never recomputed here: a batch replays each case it touches
(from the case's state before the batch, read from the store at that version, then the
batch's own events) and asks `schedule_of(case)`. Where a deadline stands on a day
(`due_soon`, `overdue`) is left to the query, which knows today and the warning leads.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from domain.case import CaseEvent
from domain.deadlines import DEADLINE_TYPES, schedule_of
from projections.readmodel import Batch, Projection, Tables

SCRATCH = "inbox"


class Inbox(Projection):
    name = "inbox"
    tables = ("deadlines",)
    partitionable = True  # every row concerns one case
    kinds: ClassVar[frozenset[str] | None] = None  # every case event may move a deadline
    weight = 2.0  # a case is replayed once a batch

    def create_statements(self, t: Tables) -> list[str]:
        d = t["deadlines"]
        return [
            f"CREATE TABLE IF NOT EXISTS {d} (case_id TEXT NOT NULL, deadline TEXT NOT NULL, "
            "ref TEXT NOT NULL, case_kind TEXT NOT NULL, unit TEXT NOT NULL, "
            "path TEXT NOT NULL, due TEXT NOT NULL, must_act TEXT NOT NULL, "
            f"PRIMARY KEY (case_id, deadline, ref)){t.clustered}",
            f"CREATE INDEX IF NOT EXISTS {d}_path_due ON {d} (path, due)",
            f"CREATE INDEX IF NOT EXISTS {d}_unit_due ON {d} (unit, due)",
            # The inbox's page order, with the path to filter a wide scope in the index.
            f"CREATE INDEX IF NOT EXISTS {d}_due ON {d} (due, case_id, deadline, ref, path)",
        ]

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        cases: dict[UUID, Any] = b.scratch.setdefault(SCRATCH, {})
        case_id = event.originator_id
        case = cases.get(case_id)
        if case is None and event.originator_version > 1:
            case = self._load(b, case_id, event.originator_version - 1)
        cases[case_id] = event.mutate(case)

    def _load(self, b: Batch, case_id: UUID, version: int) -> Any:
        """The case as it was before this batch (the engine holds the casetrail)."""
        ct: Any = getattr(b.engine, "ct")  # noqa: B009 - not part of the Context protocol
        return ct.app.repository.get(case_id, version=version)

    def finish(self, b: Batch) -> None:
        cases: dict[UUID, Any] = b.scratch.pop(SCRATCH, {})
        if not cases:
            return
        d = b.t["deadlines"]
        ordered = sorted((str(case_id), case) for case_id, case in cases.items())
        # Each case's deadlines are written anew: one statement for all of them (a round
        # trip per case cost more than the rest of the batch on PostgreSQL).
        b.cur.delete_many(d, "case_id", [case_id for case_id, _ in ordered])
        rows = []
        for case_id, case in ordered:
            place = b.place(case.unit)
            for deadline in schedule_of(case):
                if deadline.stopped is not None:
                    continue
                rows.append(
                    (
                        case_id,
                        deadline.type,
                        deadline.ref,
                        case.kind,
                        case.unit,
                        place.path,
                        deadline.due.isoformat(),
                        DEADLINE_TYPES[deadline.type].must_act,
                    )
                )
        b.cur.insert_many(
            d, ("case_id", "deadline", "ref", "case_kind", "unit", "path", "due", "must_act"), rows
        )
