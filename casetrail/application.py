"""The event-sourced application: cases on the `eventsourcing` library, with snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Protocol, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
)
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    EventStore,
    JSONTranscoder,
    Notification,
    Recording,
    StoredEvent,
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
)
from eventsourcing.utils import strtobool

from casetrail.personal import PersonalMapper
from domain.case import Case
from domain.errors import CaseNotFound
from domain.kinds import KINDS
from store.chain_links import ChainLink

SNAPSHOT_INTERVAL = 50
# Open cases a process keeps for commands (CaseRepository); AGGREGATE_CACHE_MAXSIZE=0: none.
CASE_CACHE_SIZE = 500


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
    """Loads cases with `replay_case`. Its cache of recent open cases (the library's LRU
    cache, fast-forwarded from the store on every use and deep-copied for each command)
    serves commands only: an append no longer reopens the sealed fields of up to 49
    events and a snapshot each time. Reads always load from the store, opening each
    field with a key that is still kept (an erased person's data is never served from
    memory); a closed case leaves the cache (only closed records are erased)."""

    def get(self, aggregate_id: UUID, **kwargs: Any) -> Any:
        kwargs.setdefault("projector_func", replay_case)
        if not kwargs.pop("for_command", False) and self.cache is not None:
            return self._reconstruct_aggregate(
                aggregate_id, kwargs.get("version"), kwargs["projector_func"]
            )
        return super().get(aggregate_id, **kwargs)

    def forget(self, aggregate_id: UUID) -> None:
        if self.cache is not None:
            with suppress(KeyError):
                self.cache.get(aggregate_id, evict=True)


class LinkingRecorder(Protocol):
    """The events' recorder of both stores (store): it writes each event's chain
    link in the events' transaction and returns the links it wrote, in order."""

    def insert_linked_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[ChainLink]: ...


@dataclass(frozen=True)
class LinkedRecording(Recording[UUID]):
    """A recorded event with the chain link written beside it."""

    link: ChainLink


class LinkedEventStore(EventStore[UUID]):
    """The library's event store, whose recordings carry their chain links (what a command
    answers with, instead of reading the row back)."""

    recorder: Any

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        keys = cast("PersonalMapper", self.mapper).keys
        if keys is None:
            stored_events = [self.mapper.to_stored_event(event) for event in domain_events]
            staged = None
        else:
            with keys.staging() as staged:
                stored_events = [self.mapper.to_stored_event(event) for event in domain_events]
            if staged:
                kwargs["also"] = staged.writer(kwargs.get("also"))
        recorder: LinkingRecorder = self.recorder
        try:
            links = recorder.insert_linked_events(stored_events, **kwargs)
        except BaseException:
            if keys is not None and staged:
                keys.forget(staged.key_ids())  # never stored: made again on a retry
            raise
        return [
            LinkedRecording(
                domain_event,
                Notification(
                    originator_id=stored.originator_id,
                    originator_version=stored.originator_version,
                    topic=stored.topic,
                    state=stored.state,
                    id=link.position,
                ),
                link,
            )
            for domain_event, stored, link in zip(domain_events, stored_events, links, strict=True)
        ]


class CaseApplication(Application[UUID]):
    """Every case is an aggregate; its events go to one notification log."""

    name = "casetrail"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        case_class: SNAPSHOT_INTERVAL for case_class in KINDS.values()
    }

    def construct_repository(self) -> CaseRepository:
        """The library's repository, configured from the same environment variables, with
        the faster default projector."""
        configured = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        cache_maxsize = CASE_CACHE_SIZE if configured in (None, "") else int(configured)
        return CaseRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=cache_maxsize or None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(
                self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")
            ),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    def construct_event_store(self) -> EventStore[UUID]:
        return LinkedEventStore(mapper=self.mapper, recorder=self.recorder)

    def get_case(
        self, case_id: str, version: int | None = None, *, for_command: bool = False
    ) -> Case:
        """The case `case_id` (at `version`), or CaseNotFound; `for_command`: a copy of
        the cached case brought up to date, if it is open (CaseRepository)."""
        try:
            uuid = UUID(str(case_id))
        except ValueError:
            raise CaseNotFound(f"There is no case {case_id}.") from None
        repository = cast("CaseRepository", self.repository)
        try:
            case: Any = repository.get(uuid, version=version, for_command=for_command)
        except AggregateNotFoundError:
            raise CaseNotFound(f"There is no case {case_id}.") from None
        if not isinstance(case, Case):
            repository.forget(uuid)
            raise CaseNotFound(f"There is no case {case_id}.")
        if for_command and not case.is_open:
            repository.forget(uuid)
        return case

    def keep_case(self, case: Case) -> None:
        """After a command saved `case` (and is done with it): the command cache keeps it
        as saved, so the next command need not read back and open what was just written;
        a case that has just closed leaves the cache."""
        repository = cast("CaseRepository", self.repository)
        if not case.is_open:
            repository.forget(case.id)
        elif repository.cache is not None:
            repository.cache.put(case.id, case)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's `save` (eventsourcing 9.5), collecting a case's events without the
        runtime `Protocol` checks of `ProcessingEvent.collect_events`: on Python 3.11 those
        two `isinstance` calls were 2 % of an HTTP append's CPU. Anything else is collected
        by the library."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Case):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # deprecated in the library, still called there
        return recordings

    def save_linked(self, case: Case, **kwargs: Any) -> list[LinkedRecording]:
        """`save`, with each recording's chain link."""
        return cast("list[LinkedRecording]", self.save(case, **kwargs))

    def construct_mapper(self) -> PersonalMapper:
        mapper = super().construct_mapper()
        return PersonalMapper(mapper.transcoder, mapper.compressor, mapper.cipher)

    def construct_transcoder(self) -> Transcoder:
        transcoder = CaseTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
