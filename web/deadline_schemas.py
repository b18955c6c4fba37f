"""The request and response schemas of the deadline endpoints (`/inbox`, `/deadlines`,
`/notifications`)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from domain.deadlines import DEADLINE_TYPES, DUE_SOON, OVERDUE
from domain.kinds import KINDS
from domain.schemas import StrictSchema, unit_code
from web.schemas import MAX_PER_PAGE, Paged, ReadYourWrites

RECORD_STATES = ("warning", "breached", "resolved")
MAX_RECORDS_PER_PAGE = 500
NOTIFICATION_STATES = ("pending", "delivered", "failed")


def paging(max_per_page: int = MAX_PER_PAGE) -> dict[str, fields.Integer]:
    return {
        "page": fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000)),
        "per_page": fields.Integer(
            load_default=20, validate=validate.Range(min=1, max=max_per_page)
        ),
    }


class InboxQuery(ReadYourWrites):
    unit = unit_code(required=False)
    kind = fields.String(
        validate=validate.OneOf(list(DEADLINE_TYPES)),
        metadata={"description": "A kind of deadline (`GET /event-types` lists them)."},
    )
    state = fields.String(validate=validate.OneOf([DUE_SOON, OVERDUE]))
    page = paging()["page"]
    per_page = paging()["per_page"]


class InboxItem(Schema):
    case = fields.String(required=True)
    case_kind = fields.String(required=True, validate=validate.OneOf(list(KINDS)))
    unit = fields.String(required=True)
    kind = fields.String(required=True)
    ref = fields.String(
        required=True, metadata={"description": "Which one of its kind, when a case has several"}
    )
    due = fields.Date(required=True)
    state = fields.String(required=True, validate=validate.OneOf([DUE_SOON, OVERDUE]))
    must_act = fields.String(required=True)


class InboxCounts(Schema):
    due_soon = fields.Integer(required=True)
    overdue = fields.Integer(required=True)


class InboxResponse(Paged):
    items = fields.List(fields.Nested(InboxItem), required=True)
    counts = fields.Nested(InboxCounts, required=True)
    today = fields.Date(required=True, metadata={"description": "Today in China Standard Time"})


class DeadlinesQuery(StrictSchema):
    unit = unit_code(required=False)
    kind = fields.String(validate=validate.OneOf(list(DEADLINE_TYPES)))
    state = fields.String(validate=validate.OneOf(list(RECORD_STATES)))
    from_ = fields.Date(data_key="from", metadata={"description": "Detected on or after (CST)"})
    to = fields.Date(metadata={"description": "Detected on or before (CST)"})
    page = paging()["page"]
    per_page = paging(MAX_RECORDS_PER_PAGE)["per_page"]

    @validates_schema
    def _to_not_before_from(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end and end < start:
            raise ValidationError("'to' is before 'from'.", field_name="to")


class Resolution(Schema):
    resolution = fields.String(
        required=True, validate=validate.OneOf(["met", "met_late", "extended", "moot"])
    )
    resolved_at = fields.DateTime(required=True)
    position = fields.Integer(required=True)


class DeadlineRecord(Schema):
    case = fields.String(required=True)
    case_kind = fields.String(required=True, validate=validate.OneOf(list(KINDS)))
    unit = fields.String(required=True)
    kind = fields.String(required=True)
    ref = fields.String(required=True)
    due = fields.Date(required=True)
    record = fields.String(required=True, validate=validate.OneOf(["warning", "breach"]))
    state = fields.String(required=True, validate=validate.OneOf(list(RECORD_STATES)))
    detected_at = fields.DateTime(required=True)
    detected_on = fields.Date(required=True)
    position = fields.Integer(required=True)
    resolution = fields.Nested(Resolution, allow_none=True, required=True)


class DeadlinesResponse(Paged):
    items = fields.List(fields.Nested(DeadlineRecord), required=True)


class NotificationsQuery(StrictSchema):
    state = fields.String(validate=validate.OneOf(list(NOTIFICATION_STATES)))
    page = paging()["page"]
    per_page = paging(MAX_RECORDS_PER_PAGE)["per_page"]


class Notification(Schema):
    delivery_id = fields.String(required=True)
    position = fields.Integer(required=True, metadata={"description": "The record's position"})
    case = fields.String(required=True)
    unit = fields.String(required=True)
    kind = fields.String(required=True)
    due = fields.Date(required=True)
    record = fields.String(required=True, validate=validate.OneOf(["warning", "breach"]))
    detected_at = fields.DateTime(required=True)
    state = fields.String(required=True, validate=validate.OneOf(list(NOTIFICATION_STATES)))
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(allow_none=True, required=True)
    delivered_at = fields.DateTime(allow_none=True, required=True)
    last_error = fields.String(allow_none=True, required=True)


class NotificationCounts(Schema):
    pending = fields.Integer(required=True)
    delivered = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class NotificationsResponse(Paged):
    items = fields.List(fields.Nested(Notification), required=True)
    counts = fields.Nested(NotificationCounts, required=True)
