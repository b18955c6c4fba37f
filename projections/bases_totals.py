"""The bases register's bases of a subtree (registered bases and their capacity,
casetrail.registers) with the people at each now (the read model projections.bases): the
base occupancy list (projections.bases_query) and the resettlement indicators'
`transitional_bases`, `transitional_base_capacity` and `transitional_base_occupancy`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from casetrail.registers import RegisterEntry
from domain.registers import BASE
from projections.readmodel import Place, subtree_range

if TYPE_CHECKING:
    from casetrail.bootstrap import Casetrail
    from store.db import Cursor


def subtree_bases(
    ct: Casetrail, cur: Cursor, occupants: str, top: Place, *, include_retired: bool = False
) -> list[dict[str, Any]]:
    """The registered bases of `top`'s subtree with the people at each now (from any unit),
    then the unregistered base ids the subtree's cases name."""
    registers, directory = ct.registers, ct.directory
    bases = [
        entry
        for entry in registers.entries(BASE)
        if directory.may_act(top.unit, entry.unit) and (include_retired or entry.active)
    ]
    low, high = subtree_range(top.path)
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
    return items


def totals(items: list[dict[str, Any]]) -> dict[str, int]:
    registered = [item for item in items if item["registered"]]
    return {
        "bases": len(registered),
        "capacity": sum(int(item["capacity"]) for item in registered),
        "occupancy": sum(int(item["occupancy"]) for item in items),
        "over_capacity": sum(1 for item in registered if item["over_capacity"]),
        "unregistered": len(items) - len(registered),
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
