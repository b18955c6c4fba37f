"""What every case kind shares: the aggregate, its events, who recorded them and when.

A case is an immutable event stream. A kind's aggregate checks a rule in `record()`
(through the rules registered for the event type), then triggers the past-tense event,
whose `apply()` is only the state change. State is derived by replaying the stream.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from marshmallow import Schema

from domain import rules
from domain.clock import cst_date
from domain.errors import NotPermitted, RuleViolation, UnknownEventType
from domain.registers import RegisterField
from domain.roles import ROLES as ROLES  # still importable from here (casetrail.directory)
from domain.roles import SUPERVISOR, WRITING_ROLES
from domain.schemas import NoData, StrictSchema, load, long_text, unit_code
from domain.units import natural_parent


@dataclass(frozen=True)
class Actor:
    """Who records an event: a user, their role and their unit."""

    user_id: str
    role: str
    unit: str


@dataclass(frozen=True)
class Context:
    """The circumstances of one command: who, when (from the one clock), and why."""

    actor: Actor
    now: datetime
    reason: str | None = None
    note: str | None = None
    idempotency_key: str | None = None
    # How long an approved opening of a sealed record lasts (CASETRAIL_SEAL_OPENING_HOURS).
    seal_opening: timedelta = timedelta(hours=rules.SEAL_OPENING_HOURS)

    def metadata(self) -> dict[str, Any]:
        return {
            "actor": self.actor.user_id,
            "actor_role": self.actor.role,
            "actor_unit": self.actor.unit,
            "reason": self.reason,
            "note": self.note,
            "idempotency_key": self.idempotency_key,
        }


class RecordedEvent(Aggregate.Event):
    """What every stored event carries: its data, who recorded it and why.

    `timestamp` is `recorded_at` (server time, UTC, from the one clock).
    """

    data: dict[str, Any]
    actor: str
    actor_role: str
    actor_unit: str
    reason: str | None
    note: str | None
    idempotency_key: str | None


class CaseEvent(RecordedEvent):
    """An event of a case's stream, of a type its kind defines."""

    schema: ClassVar[type[Schema]] = NoData
    # Statuses the event may be recorded in; None: any status.
    allowed_in: ClassVar[frozenset[str] | None] = None
    supervisors_only: ClassVar[bool] = False
    # The roles that record it, when not the writers' (domain.roles.WRITING_ROLES); ():
    # no one by hand, the case records it itself as the consequence of another event.
    recorded_by: ClassVar[tuple[str, ...] | None] = None
    # Fields of `data` that name units; the service checks they exist.
    unit_fields: ClassVar[tuple[str, ...]] = ()
    # Fields of `data` that name register entries; the service checks each names an
    # active entry of that kind on the case's branch of the unit tree (domain.registers).
    register_fields: ClassVar[tuple[RegisterField, ...]] = ()
    # The status the event leaves its case in (None: unchanged); read models ask it too.
    leads_to: ClassVar[str | None] = None
    _schema_instance: ClassVar[Schema | None] = None

    @property
    def type(self) -> str:
        return type(self).__name__

    @property
    def recorded_at(self) -> datetime:
        return self.timestamp

    @classmethod
    def schema_instance(cls) -> Schema:
        if cls.__dict__.get("_schema_instance") is None:
            cls._schema_instance = cls.schema()
        assert cls._schema_instance is not None
        return cls._schema_instance

    @classmethod
    def load_data(cls, data: Any) -> dict[str, Any]:
        return load(cls.schema_instance(), data)

    @classmethod
    def dump_data(cls, values: dict[str, Any]) -> dict[str, Any]:
        dumped: dict[str, Any] = cls.schema_instance().dump(values)
        return dumped

    def mutate(self, aggregate: Any) -> Any:
        case: Any = super().mutate(aggregate)
        case.last_event_at = self.timestamp
        if self.leads_to is not None:
            case.status = self.leads_to
        return case

    def apply(self, aggregate: Any) -> None:
        """No state change beyond version and time unless a kind says so."""


class CaseOpened(Aggregate.Created, CaseEvent):
    """The first event of a case: names its kind's aggregate and its handling unit."""

    unit: str

    def mutate(self, aggregate: Any) -> Any:
        case: Any = super().mutate(aggregate)
        case.unit = self.unit
        case.pending_transfer = None
        case.transfers = []
        case.last_event_at = self.timestamp
        if self.leads_to is not None:
            case.status = self.leads_to
        return case


# --- transfers (移交): a case changes hands only when the receiving unit accepts ---------


class TransferProposedData(StrictSchema):
    to_unit = unit_code()
    reason = long_text()


class TransferAnswerData(StrictSchema):
    # The unit that answers, named again: an answer to the transfer pending, not another.
    to_unit = unit_code()
    reason = long_text(required=False)


class TransferProposedEvent(CaseEvent):
    """The sending side's supervisor proposes that another unit take the case over; the
    case stays where it is until a supervisor of that unit accepts. Each kind names it
    `TransferProposed` (遷居, 委託幫教, a dispute moved between centres)."""

    schema = TransferProposedData
    supervisors_only = True
    unit_fields = ("to_unit",)

    def apply(self, case: Any) -> None:
        case.pending_transfer = {
            "from_unit": case.unit,
            "to_unit": self.data["to_unit"],
            "proposed_by": self.actor,
            "proposed_on": cst_date(self.timestamp).isoformat(),
        }


class TransferAcceptedEvent(CaseEvent):
    """A supervisor of the receiving unit accepts: the case moves to that unit."""

    schema = TransferAnswerData
    supervisors_only = True
    unit_fields = ("to_unit",)

    def apply(self, case: Any) -> None:
        transfer = case.pending_transfer
        case.transfers = [
            *case.transfers,
            {**transfer, "accepted_by": self.actor, "on": cst_date(self.timestamp).isoformat()},
        ]
        case.pending_transfer = None
        case.unit = transfer["to_unit"]


class TransferDeclinedEvent(CaseEvent):
    """A supervisor of the receiving unit declines: the case stays where it is."""

    schema = TransferAnswerData
    supervisors_only = True
    unit_fields = ("to_unit",)

    def apply(self, case: Any) -> None:
        case.pending_transfer = None


TRANSFER_ANSWERS = (TransferAcceptedEvent, TransferDeclinedEvent)


TCase = TypeVar("TCase", bound="Case")
# The types of a case's values that are never changed in place (exact types: a subclass
# may hold mutable state).
IMMUTABLE = frozenset({str, int, float, bool, type(None), date, datetime, UUID})
RuleCheck = Callable[[Any, dict[str, Any], Context], None]


def rule(*event_classes: type[CaseEvent]) -> Callable[[RuleCheck], RuleCheck]:
    """Registers an aggregate method as a rule checked before these events are recorded."""

    def register(method: RuleCheck) -> RuleCheck:
        method._rule_for = event_classes  # type: ignore[attr-defined]
        return method

    return register


class Case(Aggregate):
    """Base of the case kinds. Subclasses name their `kind`, opening event and events."""

    kind: ClassVar[str]
    opening_event: ClassVar[type[CaseOpened]]
    events: ClassVar[tuple[type[CaseEvent], ...]]
    open_statuses: ClassVar[frozenset[str]]
    _rules: ClassVar[dict[type[CaseEvent], list[RuleCheck]]]
    _by_name: ClassVar[dict[str, type[CaseEvent]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        rules: dict[type[CaseEvent], list[RuleCheck]] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for event_class in getattr(attribute, "_rule_for", ()):
                    rules.setdefault(event_class, []).append(attribute)
        cls._rules = rules
        if "events" in cls.__dict__:
            cls._by_name = {event_class.__name__: event_class for event_class in cls.events}

    # Set by the opening event: the handling unit, the status, the time of the last event.
    unit: ClassVar[str]
    status: ClassVar[str]
    last_event_at: ClassVar[datetime]
    # A transfer proposed and not yet answered (None: none); the transfers accepted.
    pending_transfer: ClassVar[dict[str, Any] | None] = None
    transfers: ClassVar[list[dict[str, Any]]] = []

    # --- commands ---------------------------------------------------------------

    @classmethod
    def open(cls: type[TCase], unit: str, data: Any, ctx: Context) -> TCase:
        """Opens a case of this kind with its opening event."""
        event_class = cls.opening_event
        check_role(event_class, ctx)
        values = event_class.load_data(data)
        for check in cls._rules.get(event_class, ()):
            check(cls, values, ctx)
        case = cls._create(
            event_class,
            unit=unit,
            data=event_class.dump_data(values),
            timestamp=ctx.now,
            **ctx.metadata(),
        )
        return case

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """What `copy.deepcopy` makes (the repository copies a cached case for each command),
        without walking the values that cannot change: about a fifth of its cost."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update(
            {
                name: value if type(value) in IMMUTABLE else copy.deepcopy(value, memo)
                for name, value in self.__dict__.items()
            }
        )
        return clone

    def record(self, type_name: str, data: Any, ctx: Context) -> CaseEvent:
        """Checks the rules for an event of `type_name`, then records it."""
        event_class = self.event_class(type_name)
        if issubclass(event_class, CaseOpened):
            raise RuleViolation(
                f"{type_name} opens a case; this case is already open.", code="case_already_open"
            )
        check_role(event_class, ctx)
        values = event_class.load_data(data)
        if event_class.allowed_in is not None and self.status not in event_class.allowed_in:
            raise RuleViolation(
                f"{type_name} cannot be recorded while the case is '{self.status}' "
                f"(only while {', '.join(sorted(event_class.allowed_in))}).",
                code="not_allowed_in_status",
                details={"status": self.status, "allowed_in": sorted(event_class.allowed_in)},
            )
        # A rule for an event class holds for its subclasses too (the kinds' transfers).
        for klass in event_class.__mro__:
            for check in self._rules.get(klass, ()):  # type: ignore[call-overload]
                check(self, values, ctx)
        self.trigger_event(
            event_class, data=event_class.dump_data(values), timestamp=ctx.now, **ctx.metadata()
        )
        event = self.pending_events[-1]
        assert isinstance(event, CaseEvent)
        return event

    @classmethod
    def event_class(cls, type_name: str) -> type[CaseEvent]:
        try:
            return cls._by_name[type_name]
        except KeyError:
            raise UnknownEventType(
                f"'{type_name}' is not an event type of a {cls.kind} case.",
                details={"type": type_name, "known": sorted(cls._by_name)},
            ) from None

    # --- transfers ----------------------------------------------------------------

    @rule(TransferProposedEvent)
    def _one_transfer_to_another_unit(self, data: dict[str, Any], ctx: Context) -> None:
        if self.pending_transfer is not None:
            raise RuleViolation(
                f"A transfer to {self.pending_transfer['to_unit']} awaits its answer.",
                code="transfer_pending",
                details={"to_unit": self.pending_transfer["to_unit"]},
            )
        # A case is handed to another unit, not up its own chain: the units above already
        # reach it, and a move up would only unmask a minor to them (社區矯正法 §64).
        if data["to_unit"] in units_up_from(self.unit):
            raise RuleViolation(
                "A case is transferred to another unit, not to its own unit or one above it.",
                code="transfer_up_the_chain",
                details={"unit": self.unit},
            )

    @rule(*TRANSFER_ANSWERS)
    def _answer_to_the_pending_transfer(self, data: dict[str, Any], ctx: Context) -> None:
        pending = self.pending_transfer
        if pending is None:
            raise RuleViolation("No transfer awaits an answer.", code="no_pending_transfer")
        if data["to_unit"] != pending["to_unit"]:
            raise RuleViolation(
                f"The transfer pending is to {pending['to_unit']}, not {data['to_unit']}.",
                code="transfer_unit_mismatch",
                details={"to_unit": pending["to_unit"]},
            )

    @rule(TransferAcceptedEvent)
    def _accepted_by_another_supervisor(self, data: dict[str, Any], ctx: Context) -> None:
        assert self.pending_transfer is not None
        if self.pending_transfer["proposed_by"] == ctx.actor.user_id:
            raise NotPermitted(
                "A transfer is accepted by a supervisor of the receiving unit, not by the one "
                "who proposed it.",
                code="transfer_accepted_by_proposer",
            )

    # --- who acts, who reads ----------------------------------------------------------

    def acting_units(self, type_name: str) -> tuple[str, ...]:
        """The units whose staff (and the staff of the units above them) may record an
        event of `type_name`: the handling unit; for the answer to a transfer, the
        receiving unit only."""
        event_class = self._by_name.get(type_name)
        answer = event_class is not None and issubclass(event_class, TRANSFER_ANSWERS)
        if answer and self.pending_transfer is not None:
            return (self.pending_transfer["to_unit"],)
        return (self.unit,)

    def reach_units(self) -> tuple[str, ...]:
        """The units whose staff (and those above) may read the case: the handling unit
        and the unit a transfer is proposed to (to decide on it)."""
        units = [self.unit]
        if self.pending_transfer is not None:
            units.append(self.pending_transfer["to_unit"])
        return tuple(dict.fromkeys(units))

    # --- queries ------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in self.open_statuses

    def state(self, now: datetime) -> dict[str, Any]:
        """The case's current state as JSON-ready values; `now` decides derived flags."""
        fields = {name: value for name, value in vars(self).items() if not name.startswith("_")}
        result = {
            "id": str(self.id),
            "kind": self.kind,
            "version": self.version,
            "status": self.status,
            "unit": self.unit,
            "opened_at": self.created_on,
            "last_event_at": self.last_event_at,
        }
        result.update(fields)
        result.update(self.derived(now))
        return {key: to_json(value) for key, value in result.items()}

    def derived(self, now: datetime) -> dict[str, Any]:
        """Flags and figures that depend on `now`; kinds add theirs."""
        return {}


def require_writer(actor: Actor) -> None:
    """Only caseworkers and supervisors record case events."""
    if actor.role not in WRITING_ROLES:
        raise NotPermitted(
            f"A user with the role '{actor.role}' cannot record case events.",
            code="role_cannot_write",
        )


def check_role(event_class: type[CaseEvent], ctx: Context) -> None:
    role = ctx.actor.role
    if event_class.recorded_by is not None:
        if not event_class.recorded_by:
            raise NotPermitted(
                f"{event_class.__name__} is recorded by the case itself, when the law says.",
                code="recorded_by_the_case",
            )
        if role not in event_class.recorded_by:
            raise NotPermitted(
                f"{event_class.__name__} is recorded by "
                f"{' or '.join(event_class.recorded_by)}s only.",
                code="role_not_permitted",
            )
        return
    require_writer(ctx.actor)
    if event_class.supervisors_only and role != SUPERVISOR:
        raise NotPermitted(
            f"Only a supervisor may record {event_class.__name__}.", code="supervisor_only"
        )


def units_up_from(code: str) -> tuple[str, ...]:
    """A unit and the units its code implies above it."""
    chain: list[str] = []
    current: str | None = code
    while current is not None:
        chain.append(current)
        current = natural_parent(current)
    return tuple(chain)


def to_json(value: Any) -> Any:
    """Dates and times as ISO 8601, ids as strings, containers recursively."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return value


def parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def known_date(value: Any) -> date | None:
    """A recorded date, or None where it was erased (its person's key destroyed)."""
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def require_not_future(day_: date, ctx: Context, field: str) -> None:
    """A record of something that happened cannot be dated after today (CST)."""
    if day_ > cst_date(ctx.now):
        raise RuleViolation(
            f"'{field}' ({day_.isoformat()}) is in the future.",
            code="date_in_future",
            details={"field": field},
        )


def require_not_before(day_: date, earliest: date | None, field: str, what: str) -> None:
    """A date cannot precede the event it follows (when that event is on the case)."""
    if earliest is not None and day_ < earliest:
        raise RuleViolation(
            f"'{field}' ({day_.isoformat()}) is before {what} ({earliest.isoformat()}).",
            code="date_out_of_order",
            details={"field": field, "earliest": earliest.isoformat()},
        )


def statuses(*names: str) -> frozenset[str]:
    return frozenset(names)


def event_names(events: Iterable[type[CaseEvent]]) -> list[str]:
    return [event_class.__name__ for event_class in events]
