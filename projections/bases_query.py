"""Transitional bases (過渡性安置基地) with their occupancy against capacity: each
registered base of a unit subtree with its capacity (casetrail.registers) and the people
there now (the read model projections.bases).

Over capacity is not refused (docs/domain.md, "Registers"): a base holding more people
than its registered capacity is listed with `over_capacity` for the supervisors.

A base id that an older event named before bases were registered still counts: it is
listed with `registered: false` until an admin registers a base under that id.
"""

from __future__ import annotations

from typing import Any

from domain.case import Actor
from projections.bases_totals import subtree_bases, totals
from projections.queries import ReadModels


def base_occupancy(
    models: ReadModels, actor: Actor, *, unit: str | None = None, include_retired: bool = False
) -> dict[str, Any]:
    """The registered bases of the reader's subtree (or of `unit`'s, inside it) with their
    capacity and the people at each now; then the base ids older events named that no
    register holds, counted over the subtree's cases."""
    top = models.jurisdiction_unit(actor, unit) or actor.unit
    occupants = models._tables("bases")["occupants"]
    with models.ct.db.transaction(commit=False) as cur:
        items = subtree_bases(
            models.ct, cur, occupants, models.engine.place(top), include_retired=include_retired
        )
    return {"unit": top, "bases": items, "totals": totals(items)}
