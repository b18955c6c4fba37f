"""Read models built from the notification log: the case list and the indicators of each kind."""

from __future__ import annotations

from threading import Lock

from casetrail.bootstrap import Casetrail
from projections.bases import BaseOccupancy
from projections.cases import CaseList
from projections.correction import CorrectionIndicators
from projections.disputes import DisputeIndicators
from projections.engine import Engine, Projection
from projections.inbox import Inbox
from projections.resettlement import ResettlementIndicators


def all_projections() -> list[Projection]:
    return [
        CaseList(),
        DisputeIndicators(),
        ResettlementIndicators(),
        CorrectionIndicators(),
        Inbox(),
        BaseOccupancy(),
    ]


_BUILDING = Lock()


def engine_for(ct: Casetrail) -> Engine:
    """The one engine of a casetrail (it holds the tracking recorder and unit chains),
    built on first use and kept as the casetrail's `read_models`."""
    with _BUILDING:
        engine = ct.read_models
        if not isinstance(engine, Engine):
            engine = Engine(ct, all_projections(), batch_size=ct.settings.projection_batch)
            ct.read_models = engine
        return engine
