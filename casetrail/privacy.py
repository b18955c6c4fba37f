"""Minors' identity is confidential (社區矯正法 §54, 未成年人保護法 §103): only the staff of
the case's own unit and auditors see who a minor is; everyone else sees no personal field of
the case (domain.personal), of the person at most the gender and an age band. The web and
the CLI both read here."""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.case import Actor
from domain.personal import redact_personal
from domain.roles import AUDITOR

REDACTED = "[redacted]"


def sees_minor_identity(actor: Actor, case_unit: str | None) -> bool:
    return actor.role == AUDITOR or actor.unit == case_unit


def redact_minor(
    actor: Actor, state: dict[str, Any], *, unit: str | None = None, today: date | None = None
) -> dict[str, Any]:
    """A case's state (or read-model row) with a minor's identity hidden from those not entitled."""
    if not state.get("minor") or sees_minor_identity(actor, unit or state.get("unit")):
        return state
    return redact_identity(state, today=today)


def redact_identity(value: Any, *, today: date | None = None) -> Any:
    return redact_personal(value, REDACTED, today=today)
