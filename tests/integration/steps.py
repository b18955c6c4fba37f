"""Shared steps for the service-level lifecycle tests of each case kind."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import CST
from domain.errors import CasetrailError, RuleViolation


def at(day: str) -> datetime:
    """09:00 China Standard Time on `day`."""
    return datetime.combine(date.fromisoformat(day), time(9), tzinfo=CST)


class Steps:
    """Appends to one case; a refusal must leave the store as it was."""

    def __init__(self, casetrail: Casetrail, auditor: Actor, case_id: str) -> None:
        self.service = casetrail.service
        self.reads = casetrail.reads
        self.auditor = auditor
        self.case_id = case_id

    def history(self) -> list[dict[str, Any]]:
        return self.reads.history(self.auditor, self.case_id)

    def state(self) -> dict[str, Any]:
        return self.reads.case_state(self.auditor, self.case_id)

    def append(self, actor: Actor, type_name: str, **data: Any) -> int:
        return self.service.append(actor, self.case_id, type_name, data).version

    def refused(
        self,
        actor: Actor,
        type_name: str,
        code: str,
        error: type[CasetrailError] = RuleViolation,
        **data: Any,
    ) -> None:
        history = self.history()
        # The head is taken right around the refusal: nothing but the refusal happens between.
        head = self.reads.head_position()
        with pytest.raises(error) as raised:
            self.service.append(actor, self.case_id, type_name, data)
        assert self.reads.head_position() == head
        assert raised.value.code == code
        assert self.history() == history


# An admin of the province: keeps every unit's registers.
REGISTRAR = Actor(user_id="u_registrar", role="admin", unit="320000")


def register_base(ct: Casetrail, base_id: str, unit: str, capacity: int = 10) -> None:
    """Registers a transitional base (過渡性安置基地): a placement must name a registered one."""
    ct.registers.add(
        "base", unit, f"基地 {base_id}", by=REGISTRAR, entry_id=base_id, capacity=capacity
    )
