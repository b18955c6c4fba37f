"""Events planned out of order (by day), then laid down in order on a case plan."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from demo.plan import CasePlan

# Event types that move the case to the unit named in their data's `to_unit` (the two
# direct moves only in stores written before transfers).
MOVES = ("AssistanceDelegated", "ResidenceChanged", "TransferAccepted")


@dataclass
class Timeline:
    plan: CasePlan
    todo: list[tuple[date, int, int, str, dict[str, Any], str, str | None]] = field(
        default_factory=list
    )

    def at(
        self,
        day: date,
        type_: str,
        data: dict[str, Any],
        *,
        order: int = 50,
        role: str = "caseworker",
        unit: str | None = None,
    ) -> None:
        """Plans `type_` on `day`; `order` sorts events of one day; `unit` fixes the actor's
        unit (default: the case's handling unit at that moment)."""
        self.todo.append((day, order, len(self.todo), type_, data, role, unit))

    def lay_down(self, rng: random.Random, *, until: date | None = None) -> CasePlan:
        current = self.plan.unit
        for day, _, _, type_, data, role, unit in sorted(self.todo, key=lambda t: t[:3]):
            if until is not None and day > until:
                break
            self.plan.add(rng, day, type_, data, unit or current, role)
            if type_ in MOVES:
                current = data["to_unit"]
        return self.plan
