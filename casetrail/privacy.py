"""Minors' identity is confidential (社區矯正法 §54, 未成年人保護法 §103): only the staff of
the case's own unit and auditors see who a minor is; everyone else sees no personal field of
the case (domain.personal), of the person at most the gender and an age band. The web and
the CLI both read here."""

from __future__ import annotations

from contextlib import suppress
from datetime import date
from typing import Any

from domain.case import Actor
from domain.personal import SHOWN_OF_A_MINOR, age_band, personal_field_names

REDACTED = "[redacted]"
IDENTITY_FIELDS = ("name", "id_number")
# An event's own free text beside its data.
EVENT_TEXT = frozenset({"note", "reason"})


def sees_minor_identity(actor: Actor, case_unit: str | None) -> bool:
    return actor.role == "auditor" or actor.unit == case_unit


def redact_minor(
    actor: Actor, state: dict[str, Any], *, unit: str | None = None, today: date | None = None
) -> dict[str, Any]:
    """A case's state (or read-model row) with a minor's identity hidden from those not entitled."""
    if not state.get("minor") or sees_minor_identity(actor, unit or state.get("unit")):
        return state
    return redact_identity(state, today=today)


def redact_identity(value: Any, *, today: date | None = None) -> Any:
    """`value` with every personal field in it replaced, and each `person` reduced to what
    does not identify (its gender and, given `today`, an age band)."""
    hidden = personal_field_names() | EVENT_TEXT
    if isinstance(value, list):
        return [redact_identity(item, today=today) for item in value]
    if not isinstance(value, dict):
        return value
    redacted: dict[str, Any] = {}
    for key, item in value.items():
        if key == "person" and isinstance(item, dict):
            redacted[key] = _person_shown(item, today)
        elif key in hidden or key == "names":  # `names`: a read-model row's display names
            redacted[key] = _hidden(item)
        else:
            redacted[key] = redact_identity(item, today=today)
    return redacted


def _hidden(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_hidden(item) for item in value]
    return REDACTED


def _person_shown(person: dict[str, Any], today: date | None) -> dict[str, Any]:
    shown = {key: person[key] for key in SHOWN_OF_A_MINOR if key in person}
    birth = person.get("birth_date")
    if today is not None and isinstance(birth, str):
        with suppress(ValueError):  # an erased or sealed date has no band
            shown["age_band"] = age_band(date.fromisoformat(birth), today)
    return shown
