"""Every request and response schema of the HTTP API, in one place.

Request bodies refuse unknown fields, bound every text and validate dates; the event
`data` inside a command is validated by the domain with its event type's own schema.
Response schemas document what the service answers (and what schemathesis checks).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from domain.kinds import KINDS
from domain.roles import ROLES
from domain.schemas import SHORT_TEXT, StrictSchema, long_text, text, unit_code

IDEMPOTENCY_KEY_MAX = 200
EVENT_TYPE_MAX = 100
MAX_PER_PAGE = 100
MAX_FEED_LIMIT = 1000
POSITION_MAX = 2**62


def position(**kwargs: Any) -> fields.Integer:
    """A position in the global log, as a query parameter."""
    return fields.Integer(validate=validate.Range(min=0, max=POSITION_MAX), **kwargs)


def canonical_case_id(case_id: str) -> str:
    """A case id as the store spells it (lower case, hyphenated), whichever way a client
    spelled the same UUID; anything else as given (it names no case)."""
    try:
        return str(UUID(case_id))
    except ValueError:
        return case_id


# --- requests: commands -------------------------------------------------------------


class OpenCaseRequest(StrictSchema):
    """`POST /cases`: opens a case of `kind` at `unit` with its opening event `type`."""

    kind = fields.String(required=True, validate=validate.OneOf(list(KINDS)))
    unit = unit_code()
    type = text(max_length=EVENT_TYPE_MAX)
    data = fields.Dict(keys=fields.String(), required=True)
    reason = long_text(required=False)
    note = long_text(required=False)


class AppendEventRequest(StrictSchema):
    """`POST /cases/{id}/events`: appends an event; `expected_version` guards against races."""

    type = text(max_length=EVENT_TYPE_MAX)
    data = fields.Dict(keys=fields.String(), required=True)
    expected_version = fields.Integer(strict=True, validate=validate.Range(min=1, max=POSITION_MAX))
    reason = long_text(required=False)
    note = long_text(required=False)


class IdempotencyHeader(Schema):
    """The optional `Idempotency-Key` header of the commands."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(min=1, max=IDEMPOTENCY_KEY_MAX),
        metadata={"description": "Retrying with the same key and body returns the first answer."},
    )


# --- requests: queries and audit reads ------------------------------------------------


class ReadYourWrites(StrictSchema):
    min_position = position(
        metadata={"description": "Wait briefly until the read models include this position."}
    )


class CaseListQuery(ReadYourWrites):
    kind = fields.String(validate=validate.OneOf(list(KINDS)))
    unit = unit_code(required=False)
    status = fields.String(validate=validate.Length(min=1, max=50))
    overdue = fields.Boolean()
    category = fields.String(validate=validate.Length(min=1, max=50))
    q = fields.String(validate=validate.Length(min=1, max=SHORT_TEXT))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class IndicatorsQuery(ReadYourWrites):
    kind = fields.String(required=True, validate=validate.OneOf(list(KINDS)))
    unit = unit_code(required=False)
    from_ = fields.Date(data_key="from")
    to = fields.Date()

    @validates_schema
    def _to_not_before_from(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end and end < start:
            raise ValidationError("'to' is before 'from'.", field_name="to")


class CaseStateQuery(StrictSchema):
    as_of_version = fields.Integer(validate=validate.Range(min=1, max=POSITION_MAX))
    as_of = fields.AwareDateTime(
        metadata={"description": "ISO 8601 with a timezone, e.g. 2026-03-02T09:00:00+08:00"}
    )


class FeedQuery(StrictSchema):
    after = position(load_default=0)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_FEED_LIMIT))


# --- requests: administration -----------------------------------------------------------


class UnitRequest(StrictSchema):
    code = unit_code()
    name = text(max_length=100)
    parent = unit_code(required=False)


class UserRequest(StrictSchema):
    name = text(max_length=100)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    unit = unit_code()


class UserChangeRequest(StrictSchema):
    """`PATCH /users/{id}`: a new unit, a new role, or both."""

    role = fields.String(validate=validate.OneOf(ROLES))
    unit = unit_code(required=False)

    @validates_schema
    def _something_to_change(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("Give a new 'unit', 'role' or both.", field_name="_schema")


class UserListQuery(StrictSchema):
    unit = unit_code(required=False)
    role = fields.String(validate=validate.OneOf(ROLES))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


# --- responses ---------------------------------------------------------------------------


class OpenSchema(Schema):
    """A response object that may carry more fields than it names."""

    class Meta:
        unknown = INCLUDE


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"description": "Stable machine code"})
    message = fields.String(required=True, metadata={"description": "Readable by a person"})
    details = fields.Dict(required=True)


class ErrorResponse(Schema):
    """The one error shape: `{"error": {"code", "message", "details"}}`."""

    error = fields.Nested(ErrorBody, required=True)


class EventResponse(Schema):
    """An event of a case's stream with the fields DOMAIN.md lists, its position and hash."""

    type = fields.String(required=True)
    id = fields.String(required=True)
    kind = fields.String(required=True)
    version = fields.Integer(required=True)
    position = fields.Integer(required=True, allow_none=True)
    recorded_at = fields.String(required=True)
    actor = fields.String(required=True)
    actor_role = fields.String(required=True)
    actor_unit = fields.String(required=True)
    reason = fields.String(required=True, allow_none=True)
    note = fields.String(required=True, allow_none=True)
    idempotency_key = fields.String(required=True, allow_none=True)
    data = fields.Dict(required=True)
    unit = fields.String(required=True, allow_none=True)
    hash = fields.String(required=True, allow_none=True)
    prev_hash = fields.String(required=True, allow_none=True)


class AppendedResponse(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    version = fields.Integer(required=True)
    position = fields.Integer(required=True)
    event = fields.Nested(EventResponse, required=True)


class CaseStateResponse(OpenSchema):
    """The case's state from its stream; each kind adds its own fields."""

    id = fields.String(required=True)
    kind = fields.String(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True)
    unit = fields.String(required=True)


class HistoryResponse(Schema):
    events = fields.List(fields.Nested(EventResponse), required=True)


class Links(Schema):
    self = fields.String(required=True)
    next = fields.String(allow_none=True)
    prev = fields.String(allow_none=True)


class Paged(Schema):
    """What every paged answer holds beside its items."""

    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    links = fields.Nested(Links, required=True)


class FeedResponse(Schema):
    events = fields.List(fields.Nested(EventResponse), required=True)
    after = fields.Integer(required=True)
    next_after = fields.Integer(required=True)
    head = fields.Integer(required=True)
    links = fields.Nested(Links, required=True)


class CaseListResponse(Paged):
    items = fields.List(fields.Dict(), required=True)


class ProjectionStatus(OpenSchema):
    name = fields.String(required=True)
    position = fields.Integer(required=True)
    head = fields.Integer(required=True)
    lag = fields.Integer(required=True)
    generation = fields.Integer(metadata={"description": "The active generation of its tables"})
    stale = fields.Boolean(
        metadata={"description": "Present when its tables are of an older layout (rebuilt next)"}
    )
    parked = fields.Integer(
        metadata={
            "description": "Present when events are parked: how many this read model could "
            "not decode or apply (`casetrail projections parked list`)"
        }
    )
    stopped_at = fields.Integer(
        metadata={
            "description": "Present when the read model stopped at a parked event it cannot "
            "isolate by case: that event's position"
        }
    )
    rebuilding = fields.Dict(
        metadata={
            "description": "A new generation being filled: `generation`, `position` (the "
            "least advanced share's while the case list is filled in shares) and `shares` "
            "(each share of cases, `lo-hi` of 1,000 buckets, with its position)"
        }
    )


class ProjectionsResponse(Schema):
    head = fields.Integer(required=True)
    projections = fields.List(fields.Nested(ProjectionStatus), required=True)


class EventTypesResponse(Schema):
    kinds = fields.Dict(required=True)
    rules = fields.Dict(required=True)


class UnitResponse(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    parent = fields.String(required=True, allow_none=True)
    level = fields.String(required=True)


class UnitListResponse(Schema):
    units = fields.List(fields.Nested(UnitResponse), required=True)


class UserResponse(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    unit = fields.String(required=True)
    active = fields.Boolean(required=True)


class NewUserResponse(UserResponse):
    token = fields.String(
        required=True, metadata={"description": "The bearer token, shown this once only."}
    )


class UserListResponse(Paged):
    users = fields.List(fields.Nested(UserResponse), required=True)


class HealthResponse(Schema):
    status = fields.String(required=True)
    head_position = fields.Integer(required=True)


# --- the audit trail (web/audit.py) ---------------------------------------------


class VerifyQuery(StrictSchema):
    case = fields.String(validate=validate.Length(max=64), metadata={"description": "A case id"})


class ProblemResponse(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "Readable by an auditor"})
    case = fields.String(required=True, allow_none=True)
    version = fields.Integer(required=True, allow_none=True)
    position = fields.Integer(required=True, allow_none=True)


class LatestCheckpoint(Schema):
    number = fields.Integer(required=True, allow_none=True)
    tree_size = fields.Integer(required=True)
    root_hash = fields.String(required=True)
    time = fields.String(required=True)


class VerifyResponse(Schema):
    ok = fields.Boolean(required=True)
    checked_events = fields.Integer(required=True)
    log_size = fields.Integer(required=True)
    latest_checkpoint = fields.Nested(LatestCheckpoint, required=True, allow_none=True)
    after_checkpoint = fields.Integer(
        required=True,
        metadata={
            "description": "Checked events appended after the latest checkpoint: their chains "
            "verified, no signed checkpoint covers them yet"
        },
    )
    problems = fields.List(fields.Nested(ProblemResponse), required=True)


class CheckpointResponse(Schema):
    number = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    root_hash = fields.String(required=True)
    note = fields.String(required=True, metadata={"description": "C2SP signed note"})
    time = fields.String()
    consistency_from = fields.Integer(allow_none=True)
    consistency_proof = fields.List(fields.String(), required=True, allow_none=True)
    cosignatures = fields.List(
        fields.String(), metadata={"description": "C2SP tlog-cosignature lines of witnesses"}
    )
    timestamp = fields.String(
        allow_none=True, metadata={"description": "RFC 3161 timestamp token, base64 DER"}
    )


class CheckpointsResponse(Schema):
    public_key = fields.String(required=True)
    checkpoints = fields.List(fields.Nested(CheckpointResponse), required=True)


class PublicKeyResponse(Schema):
    public_key = fields.String(required=True, metadata={"description": "C2SP note verifier key"})
    key_name = fields.String(required=True)
    key_id = fields.String(required=True)
    algorithm = fields.String(required=True)


class ProofQuery(StrictSchema):
    position = position(required=True)
    checkpoint = fields.Integer(validate=validate.Range(min=1, max=POSITION_MAX))


class ProofCheckpoint(Schema):
    number = fields.Integer(required=True)
    note = fields.String(required=True)


class ProofResponse(Schema):
    position = fields.Integer(required=True)
    hash = fields.String(required=True)
    leaf_index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    checkpoint = fields.Nested(ProofCheckpoint, required=True)
    inclusion_proof = fields.List(fields.String(), required=True)


class AccessQuery(StrictSchema):
    case = fields.String(validate=validate.Length(max=64))
    user = fields.String(validate=validate.Length(max=100))
    from_ = fields.AwareDateTime(data_key="from")
    to = fields.AwareDateTime()
    after = fields.String(
        validate=validate.Length(max=100),
        metadata={"description": "The cursor of the page before (its `next`)."},
    )
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=1000))


class AccessSearch(Schema):
    query = fields.Integer(
        required=True, metadata={"description": "The search's keyed hash (never its text)."}
    )
    total = fields.Integer(required=True, metadata={"description": "How many cases it found."})


class AccessOpening(Schema):
    approved_version = fields.Integer(
        required=True, metadata={"description": "The SealOpeningApproved in the case's stream."}
    )
    legal_ground = fields.String(required=True)
    until = fields.String(required=True, metadata={"description": "When the opening ends."})


class AccessItem(Schema):
    position = fields.Integer(required=True)
    at = fields.String(required=True)
    user = fields.String(required=True)
    role = fields.String(required=True)
    unit = fields.String(required=True)
    case = fields.String(required=True, allow_none=True)
    endpoint = fields.String(required=True, allow_none=True)
    granted = fields.Boolean(required=True, allow_none=True)
    refusal = fields.String(required=True, allow_none=True)
    search = fields.Nested(AccessSearch)
    opening = fields.Nested(
        AccessOpening,
        metadata={"description": "A read of a sealed record: the opening it was made under."},
    )


class AccessLinks(Schema):
    next = fields.String(required=True, allow_none=True)


class AccessResponse(Schema):
    items = fields.List(fields.Nested(AccessItem), required=True)
    next = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The next page's cursor (`after`); null: no more records."},
    )
    links = fields.Nested(AccessLinks, required=True)
