"""Sealing of minors' records — 犯罪記錄封存 (刑事訴訟法 §286, 預防未成年人犯罪法 §59).

A minor's record, once sealed, is provided to no one: it leaves every list, search and
lookup, and its stream is read by no one, its own unit's staff included. It is opened only
for a ground the law names (rules.SEAL_OPENING_GROUNDS): an auditor asks, a supervisor — a
different person — approves, each an event of the case; the opening lets those two read,
until it expires by itself (Context.seal_opening after the approval) or is closed earlier.

A kind that seals says when (`Sealable.seals_after`, e.g. a correction on its completion);
the seal is recorded by the case itself, in the same transaction as the event that brings
it, and nothing but the opening events is recorded on a sealed case afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from marshmallow import fields

from domain import rules
from domain.case import Case, CaseEvent, Context, rule
from domain.errors import InvalidData, NotPermitted, RuleViolation
from domain.roles import AUDITOR, SUPERVISOR
from domain.schemas import StrictSchema, long_text, one_of, text


class RecordSealedData(StrictSchema):
    # The event that brought the seal, and the law that seals.
    trigger = text(max_length=100)
    legal_basis = text(max_length=300)


class SealOpeningRequestedData(StrictSchema):
    legal_ground = one_of(rules.SEAL_OPENING_GROUNDS)
    # Who asks for the record (e.g. 某某市人民法院), and why: never the minor's identity.
    requesting_body = text(max_length=200)
    purpose = long_text()


class SealOpeningApprovedData(StrictSchema):
    # Named again by the approver: an approval of that ground, not another.
    legal_ground = one_of(rules.SEAL_OPENING_GROUNDS)
    # Set by the case from the configured period, never by the client (Sealable.record).
    until = fields.AwareDateTime(
        metadata={
            "description": "Set by casetrail: the approval's time plus "
            "CASETRAIL_SEAL_OPENING_HOURS; a client does not send it."
        }
    )


class SealOpeningDeclinedData(StrictSchema):
    legal_ground = one_of(rules.SEAL_OPENING_GROUNDS)
    reason = long_text()


class SealOpeningClosedData(StrictSchema):
    reason = long_text(required=False)


class SealEvent(CaseEvent):
    """An event of a record's seal: the only kind recorded on a sealed case."""


class RecordSealed(SealEvent):
    """犯罪記錄封存: the record is sealed, by the case itself when the law says."""

    schema = RecordSealedData
    recorded_by: ClassVar[tuple[str, ...] | None] = ()

    def apply(self, case: Any) -> None:
        case.sealed = True
        case.sealed_at = self.timestamp
        case.seal_request = None
        case.seal_opening = None


class SealOpeningRequested(SealEvent):
    """查詢封存記錄申請: an auditor asks to open the sealed record, on a legal ground."""

    schema = SealOpeningRequestedData
    recorded_by: ClassVar[tuple[str, ...] | None] = (AUDITOR,)

    def apply(self, case: Any) -> None:
        case.seal_request = {
            "requested_by": self.actor,
            "requested_at": self.timestamp,
            "legal_ground": self.data["legal_ground"],
            "requesting_body": self.data["requesting_body"],
        }


class SealOpeningApproved(SealEvent):
    """查詢封存記錄批准: a supervisor, not the one who asked, approves; the record is open
    to the two of them until `data.until`."""

    schema = SealOpeningApprovedData
    recorded_by: ClassVar[tuple[str, ...] | None] = (SUPERVISOR,)

    def apply(self, case: Any) -> None:
        request = case.seal_request
        case.seal_opening = {
            "requested_by": request["requested_by"],
            "approved_by": self.actor,
            "legal_ground": self.data["legal_ground"],
            "requesting_body": request["requesting_body"],
            "approved_version": self.originator_version,
            "opened_at": self.timestamp,
            "until": datetime.fromisoformat(self.data["until"]),
        }
        case.seal_request = None


class SealOpeningDeclined(SealEvent):
    """查詢封存記錄不予批准: a supervisor declines the request; the record stays sealed."""

    schema = SealOpeningDeclinedData
    recorded_by: ClassVar[tuple[str, ...] | None] = (SUPERVISOR,)

    def apply(self, case: Any) -> None:
        case.seal_request = None


class SealOpeningClosed(SealEvent):
    """查詢結束: an opening is closed before it expires; the record is sealed again."""

    schema = SealOpeningClosedData
    recorded_by: ClassVar[tuple[str, ...] | None] = (AUDITOR, SUPERVISOR)

    def apply(self, case: Any) -> None:
        case.seal_opening = None


SEAL_EVENTS: tuple[type[SealEvent], ...] = (
    RecordSealed,
    SealOpeningRequested,
    SealOpeningApproved,
    SealOpeningDeclined,
    SealOpeningClosed,
)


class Sealable(Case):
    """A kind whose records of minors are sealed: it names when (`seals_after`)."""

    # The events after which a minor's record is sealed (the kind's decision, docs/domain.md).
    seals_after: ClassVar[tuple[type[CaseEvent], ...]] = ()
    sealed: ClassVar[bool] = False
    seal_request: ClassVar[dict[str, Any] | None] = None
    seal_opening: ClassVar[dict[str, Any] | None] = None

    def is_sealable(self) -> bool:
        """Is this record one the law seals (a minor's)? Kinds say."""
        return False

    def record(self, type_name: str, data: Any, ctx: Context) -> CaseEvent:
        event_class = self.event_class(type_name)
        if self.sealed and not issubclass(event_class, SealEvent):
            raise RuleViolation(
                "This record is sealed (犯罪記錄封存): nothing more is recorded on it.",
                code="sealed",
            )
        if event_class is SealOpeningApproved and isinstance(data, dict):
            if "until" in data:
                raise InvalidData(
                    "An opening lasts the configured period; 'until' is not given.",
                    details={"until": ["Unknown field."]},
                )
            data = {**data, "until": (ctx.now + ctx.seal_opening).isoformat()}
        event = super().record(type_name, data, ctx)
        if isinstance(event, self.seals_after) and self.is_sealable():
            self.trigger_event(
                RecordSealed,
                data={"trigger": type(event).__name__, "legal_basis": rules.SEAL_LEGAL_BASIS},
                timestamp=ctx.now,
                **ctx.metadata(),
            )
        return event

    # --- reading a sealed record ------------------------------------------------------

    def opening_for(self, user_id: str, now: datetime) -> dict[str, Any] | None:
        """The opening that lets `user_id` read this sealed record now (None: none)."""
        opening = self.seal_opening
        if opening is None or now >= opening["until"]:
            return None
        if user_id not in (opening["requested_by"], opening["approved_by"]):
            return None
        return opening

    # --- rules ----------------------------------------------------------------------------

    @rule(SealOpeningRequested)
    def _request_for_a_sealed_record(self, data: dict[str, Any], ctx: Context) -> None:
        self._require_sealed()
        if self._request_pending(ctx):
            raise RuleViolation(
                "A request to open this record awaits its answer.", code="opening_pending"
            )
        if self._opening_running(ctx.now):
            raise RuleViolation("This record is open already.", code="opening_already_open")

    @rule(SealOpeningApproved, SealOpeningDeclined)
    def _answer_to_the_pending_request(self, data: dict[str, Any], ctx: Context) -> None:
        self._require_sealed()
        request = self.seal_request
        if request is None:
            raise RuleViolation(
                "No request to open this record awaits an answer.", code="no_opening_request"
            )
        if request["requested_by"] == ctx.actor.user_id:
            raise NotPermitted(
                "An opening is approved by another person than the one who asked.",
                code="approval_by_same_person",
            )
        if not self._request_pending(ctx):
            raise RuleViolation(
                "The request lapsed unanswered; a new request is needed.",
                code="opening_expired",
            )
        if data["legal_ground"] != request["legal_ground"]:
            raise RuleViolation(
                f"The request names the ground '{request['legal_ground']}'.",
                code="legal_ground_mismatch",
                details={"legal_ground": request["legal_ground"]},
            )

    @rule(SealOpeningClosed)
    def _close_a_running_opening(self, data: dict[str, Any], ctx: Context) -> None:
        self._require_sealed()
        if self.seal_opening is None:
            raise RuleViolation("This record is not open.", code="not_open")
        if not self._opening_running(ctx.now):
            raise RuleViolation(
                "The opening has expired already; the record is sealed again.",
                code="opening_expired",
            )

    def _require_sealed(self) -> None:
        if not self.sealed:
            raise RuleViolation(
                "This record is not sealed: it is read as any other.", code="not_sealed"
            )

    def _request_pending(self, ctx: Context) -> bool:
        request = self.seal_request
        # A request lapses unanswered after as long as an opening would last.
        return request is not None and ctx.now < request["requested_at"] + ctx.seal_opening

    def _opening_running(self, now: datetime) -> bool:
        return self.seal_opening is not None and now < self.seal_opening["until"]
