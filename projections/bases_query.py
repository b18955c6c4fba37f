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

from casetrail.registers import RegisterEntry
from domain.case import Actor
from domain.registers import BASE
from projections.queries import ReadModels
from projections.readmodel import subtree_range


def base_occupancy(
    models: ReadModels, actor: Actor, *, unit: str | None = None, include_retired: bool = False
) -> dict[str, Any]:
    """The registered bases of the reader's subtree (or of `unit`'s, inside it) with their
    capacity and the people at each now; then the base ids older events named that no
    register holds, counted over the subtree's cases."""
    top = models.jurisdiction_unit(actor, unit) or actor.unit
    registers = models.ct.registers
    directory = models.ct.directory
    bases = [
        entry
        for entry in registers.entries(BASE)
        if directory.may_act(top, entry.unit) and (include_retired or entry.active)
    ]
    occupants = models._tables("bases")["occupants"]
    low, high = subtree_range(models.engine.place(top).path)
    with models.ct.db.transaction(commit=False) as cur:
        everyone = {
            str(row["base_id"]): int(row["n"])
            for row in cur.execute(
                f"SELECT base_id, COUNT(*) AS n FROM {occupants} "
                "WHERE base_id IS NOT NULL GROUP BY base_id"
            ).fetchall()
        }
        of_subtree = {
            str(row["base_id"]): int(row["n"])
            for row in cur.execute(
                f"SELECT base_id, COUNT(*) AS n FROM {occupants} "
                "WHERE base_id IS NOT NULL AND path >= ? AND path < ? GROUP BY base_id",
                (low, high),
            ).fetchall()
        }
    items = [_registered(entry, everyone.get(entry.id, 0)) for entry in bases]
    known = {entry.id for entry in registers.entries(BASE)}
    items.extend(
        _unregistered(base_id, n)
        for base_id, n in sorted(of_subtree.items())
        if base_id not in known
    )
    registered = [item for item in items if item["registered"]]
    return {
        "unit": top,
        "bases": items,
        "totals": {
            "bases": len(registered),
            "capacity": sum(int(item["capacity"]) for item in registered),
            "occupancy": sum(int(item["occupancy"]) for item in items),
            "over_capacity": sum(1 for item in registered if item["over_capacity"]),
            "unregistered": len(items) - len(registered),
        },
    }


def _registered(entry: RegisterEntry, occupancy: int) -> dict[str, Any]:
    capacity = int(entry.capacity or 0)
    return {
        "base_id": entry.id,
        "name": entry.name,
        "unit": entry.unit,
        "registered": True,
        "active": entry.active,
        "capacity": capacity,
        "occupancy": occupancy,
        "free": max(capacity - occupancy, 0),
        "over_capacity": occupancy > capacity,
    }


def _unregistered(base_id: str, occupancy: int) -> dict[str, Any]:
    return {
        "base_id": base_id,
        "name": None,
        "unit": None,
        "registered": False,
        "active": None,
        "capacity": None,
        "occupancy": occupancy,
        "free": None,
        "over_capacity": None,
    }
