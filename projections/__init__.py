"""Read models built from the notification log: the case list and the indicators of each kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.cases import CaseList
from projections.correction import CorrectionIndicators
from projections.disputes import DisputeIndicators
from projections.engine import Engine, Projection
from projections.inbox import Inbox
from projections.resettlement import ResettlementIndicators

if TYPE_CHECKING:
    from casetrail.bootstrap import Casetrail


def all_projections() -> list[Projection]:
    return [
        CaseList(),
        DisputeIndicators(),
        ResettlementIndicators(),
        CorrectionIndicators(),
        Inbox(),
    ]


def engine_for(ct: Casetrail) -> Engine:
    """The one engine of a casetrail (it holds the tracking recorder and unit chains)."""
    engine = ct.extras.get("projections.engine")
    if engine is None:
        engine = Engine(ct, all_projections(), batch_size=ct.settings.projection_batch)
        ct.extras["projections.engine"] = engine
    assert isinstance(engine, Engine)
    return engine
