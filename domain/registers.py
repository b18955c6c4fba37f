"""Registers (名冊) that events name instead of free text: people's mediation committees
(人民調解委員會) and mediators (人民調解員) by unit, transitional placement bases
(過渡性安置基地) with their capacity, correction staff (社區矯正工作人員).

The entries themselves are kept by the application (casetrail.registers); this table says
what kinds there are, and each event class says which of its fields name an entry
(`CaseEvent.register_fields`), so that the service checks them on every append.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MEDIATION_COMMITTEE = "mediation_committee"
MEDIATOR = "mediator"
BASE = "base"
CORRECTION_STAFF = "correction_staff"

# kind → (Chinese term, the refusal code of an id that names no active entry of this kind)
REGISTER_KINDS: dict[str, tuple[str, str]] = {
    MEDIATION_COMMITTEE: ("人民調解委員會", "unknown_mediation_committee"),
    MEDIATOR: ("人民調解員", "unknown_mediator"),
    BASE: ("過渡性安置基地", "unknown_base"),
    CORRECTION_STAFF: ("社區矯正工作人員", "unknown_correction_staff"),
}

# The posts of correction staff on a correction team (社區矯正法 §10, §25): the officer
# (執法人員, 司法所) and the full-time social worker (專職社會工作者).
STAFF_POSTS = ("officer", "social_worker")

# A base holds at most this many people (a bound against typing errors, not a rule).
MAX_CAPACITY = 100_000
ENTRY_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


@dataclass(frozen=True)
class RegisterField:
    """A field of an event's data that names register entries: `path` is dotted for a
    nested object (`officer.staff_id`); its value is one id or a list of ids. `post`: the
    staff post the entry must hold."""

    path: str
    kind: str
    post: str | None = None

    def ids(self, data: dict[str, Any]) -> list[str]:
        value: Any = data
        for part in self.path.split("."):
            if not isinstance(value, dict):
                return []
            value = value.get(part)
        if value is None:
            return []
        return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def named_entries(
    fields: tuple[RegisterField, ...], data: dict[str, Any]
) -> Iterator[tuple[RegisterField, str]]:
    """Each (field, id) that these data name."""
    for field in fields:
        for entry_id in field.ids(data):
            yield field, entry_id
