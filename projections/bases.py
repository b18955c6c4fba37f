"""Who is at which transitional base (過渡性安置基地) now: a read model of placements, one
row a resettlement case (projections.bases_query lists the bases against capacity)."""

from __future__ import annotations

from typing import Any, ClassVar

from domain import rules
from domain.resettlement import (
    AssistanceDelegated,
    AssistanceEnded,
    PersonPlaced,
    PlacementEnded,
    ReleaseNotified,
    TransferAccepted,
)
from projections.readmodel import Batch, Projection, Tables, on


class BaseOccupancy(Projection):
    """One row a resettlement case: its handling unit's path and the base it is at now."""

    name: ClassVar[str] = "bases"
    tables: ClassVar[tuple[str, ...]] = ("occupants",)
    weight: ClassVar[float] = 0.05
    partitionable: ClassVar[bool] = True  # every row is one case's

    def create_statements(self, t: Tables) -> list[str]:
        occupants = t["occupants"]
        return [
            f"CREATE TABLE IF NOT EXISTS {occupants} (case_id TEXT PRIMARY KEY, "
            "path TEXT NOT NULL, base_id TEXT, placed_on TEXT)",
            f"CREATE INDEX IF NOT EXISTS {occupants}_base ON {occupants} (base_id)",
        ]

    @on(ReleaseNotified)
    def notified(self, b: Batch, event: Any) -> None:
        place = b.place(str(getattr(event, "unit", "")))
        b.insert(
            "occupants",
            "case_id",
            {
                "case_id": str(event.originator_id),
                "path": place.path,
                "base_id": None,
                "placed_on": None,
            },
        )

    @on(AssistanceDelegated, TransferAccepted)
    def moved(self, b: Batch, event: Any) -> None:
        to_unit = event.data.get("to_unit")
        if to_unit and self._row(b, event) is not None:
            b.update("occupants", str(event.originator_id), path=b.place(str(to_unit)).path)

    @on(PersonPlaced)
    def placed(self, b: Batch, event: Any) -> None:
        if self._row(b, event) is None:
            return
        base_id = event.data.get("base_id")
        at_base = bool(base_id) and event.data.get("placement") in rules.PLACEMENTS_WITH_BASE
        b.update(
            "occupants",
            str(event.originator_id),
            base_id=str(base_id) if at_base else None,
            placed_on=str(event.data.get("placed_on"))[:10] if at_base else None,
        )

    @on(PlacementEnded, AssistanceEnded)
    def left(self, b: Batch, event: Any) -> None:
        if self._row(b, event) is not None:
            b.update("occupants", str(event.originator_id), base_id=None, placed_on=None)

    @staticmethod
    def _row(b: Batch, event: Any) -> dict[str, Any] | None:
        return b.row("occupants", "case_id", str(event.originator_id))
