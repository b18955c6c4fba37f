"""The event-sourced application: cases on the `eventsourcing` library, with snapshots."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.kinds import KINDS

SNAPSHOT_INTERVAL = 50


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class CaseApplication(Application[UUID]):
    """Every case is an aggregate; its events go to one notification log."""

    name = "casetrail"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        case_class: SNAPSHOT_INTERVAL for case_class in KINDS.values()
    }

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
