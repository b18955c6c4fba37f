"""The event-sourced application: cases on the `eventsourcing` library, with snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application, Repository
from eventsourcing.persistence import (
    JSONTranscoder,
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
)

from domain.kinds import KINDS

SNAPSHOT_INTERVAL = 50


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class CaseTranscoder(JSONTranscoder):
    """The library's JSON transcoder, decoding faster (every catch-up and rebuild decodes
    each event): the C scanner is called directly, without `JSONDecoder.decode`'s two
    whitespace regex matches, and the object hook tells a `{"_type_", "_data_"}` pair from
    a plain two-key dict without raising and catching a KeyError. Same results."""

    def __init__(self) -> None:
        super().__init__()
        self._scan = self.decoder.scan_once  # type: ignore[attr-defined]

    def decode(self, data: bytes) -> Any:
        text = data.decode("utf8")
        try:
            obj, end = self._scan(text, 0)
        except StopIteration:
            return self.decoder.decode(text)  # raises the library's JSONDecodeError
        if end != len(text):
            return self.decoder.decode(text)  # whitespace or trailing data: the full check
        return obj

    def _decode_obj(self, d: dict[str, Any]) -> Any:
        if len(d) == 2:
            name = d.get("_type_")
            if name is not None and "_data_" in d:
                try:
                    transcoding = self.names[name]
                except KeyError as e:
                    msg = f"Data serialized with name '{name}' is not deserializable."
                    raise TranscodingNotRegisteredError(msg) from e
                return transcoding.decode(d["_data_"])
        return d


def replay_case(aggregate: Any, domain_events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its per-event `assert isinstance(event,
    CanMutateProtocol)`: on Python 3.11 a runtime-checkable Protocol check walks the
    protocol's members on every call, and every append loads its case (docs/profiling.md)."""
    for domain_event in domain_events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class CaseRepository(Repository[UUID]):
    """Loads cases with `replay_case`."""

    def get(self, aggregate_id: UUID, **kwargs: Any) -> Any:
        kwargs.setdefault("projector_func", replay_case)
        return super().get(aggregate_id, **kwargs)


class CaseApplication(Application[UUID]):
    """Every case is an aggregate; its events go to one notification log."""

    name = "casetrail"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        case_class: SNAPSHOT_INTERVAL for case_class in KINDS.values()
    }

    def construct_repository(self) -> Repository[UUID]:
        repository = super().construct_repository()
        repository.__class__ = CaseRepository  # same state, the faster default projector
        return repository

    def construct_transcoder(self) -> Transcoder:
        transcoder = CaseTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
