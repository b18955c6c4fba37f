"""The read-access record (閱覽記錄): one request's reads of cases' personal data."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain.case import RecordedEvent


class ReadRecord(Aggregate):
    """One request's reads of personal data: a stream of one event (a fresh id per
    request, so concurrent reads of the same cases never race for a version)."""

    class CasesRead(Aggregate.Created, RecordedEvent):
        """閱覽記錄: who read which cases (`data.cases`), when, through which endpoint,
        granted or refused (`data.refusal` says why), and a search's keyed hash and total
        (`data.search`). Ids only, never personal data."""

        def apply(self, aggregate: Any) -> None:
            """The record's state is its event."""

    def __init__(self, **_: Any) -> None:
        """Reconstructed from its event only."""
