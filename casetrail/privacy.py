"""Minors' identity is confidential (社區矯正法): names and ID numbers are shown only to
the staff of the case's own unit and to auditors; the web and the CLI both read here."""

from __future__ import annotations

from typing import Any

from domain.case import Actor

REDACTED = "[redacted]"
IDENTITY_FIELDS = ("name", "id_number")


def sees_minor_identity(actor: Actor, case_unit: str | None) -> bool:
    return actor.role == "auditor" or actor.unit == case_unit


def redact_minor(actor: Actor, state: dict[str, Any], *, unit: str | None = None) -> dict[str, Any]:
    """A case's state (or read-model row) with a minor's identity hidden from those not entitled."""
    if not state.get("minor") or sees_minor_identity(actor, unit or state.get("unit")):
        return state
    return redact_identity(state)


def redact_identity(value: Any) -> Any:
    """`value` with the identity fields of every `person` in it (and `names`) replaced."""
    if isinstance(value, list):
        return [redact_identity(item) for item in value]
    if not isinstance(value, dict):
        return value
    redacted = {key: redact_identity(item) for key, item in value.items()}
    person = redacted.get("person")
    if isinstance(person, dict):
        redacted["person"] = {
            key: REDACTED if key in IDENTITY_FIELDS else item for key, item in person.items()
        }
    if isinstance(redacted.get("names"), list):  # a read-model row's display names
        redacted["names"] = [REDACTED for _ in redacted["names"]]
    return redacted
