"""The case kinds casetrail knows, by their `kind` name."""

from __future__ import annotations

from domain.case import Case
from domain.correction import Correction
from domain.dispute import Dispute
from domain.resettlement import Resettlement

KINDS: dict[str, type[Case]] = {
    Dispute.kind: Dispute,
    Correction.kind: Correction,
    Resettlement.kind: Resettlement,
}


def opening_event_types() -> dict[str, str]:
    return {kind: case_class.opening_event.__name__ for kind, case_class in KINDS.items()}
