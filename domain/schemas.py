"""Building blocks of the event data schemas (marshmallow), shared by all kinds.

Every input schema refuses unknown fields, bounds every text and validates dates.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from domain import rules
from domain.errors import InvalidData
from domain.registers import ENTRY_ID

SHORT_TEXT = 200
LONG_TEXT = 4000
ID_NUMBER = r"^\d{17}[\dXx]$"  # 18-digit resident identity number (GB 11643)
PHONE = r"^\+?[\d\- ]{5,20}$"
UNIT_CODE = r"^(\d{6}|\d{9}|\d{12})$"


class StrictSchema(Schema):
    """Refuses unknown fields instead of dropping them."""

    class Meta:
        unknown = RAISE


class NoData(StrictSchema):
    """An event whose data is empty."""


def text(*, required: bool = True, max_length: int = SHORT_TEXT, **kwargs: Any) -> fields.String:
    return fields.String(
        required=required, validate=validate.Length(min=1, max=max_length), **kwargs
    )


def long_text(*, required: bool = True, **kwargs: Any) -> fields.String:
    return text(required=required, max_length=LONG_TEXT, **kwargs)


def one_of(choices: Any, *, required: bool = True, **kwargs: Any) -> fields.String:
    return fields.String(required=required, validate=validate.OneOf(list(choices)), **kwargs)


def unit_code(*, required: bool = True, **kwargs: Any) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Regexp(UNIT_CODE, error="Not an administrative division code."),
        **kwargs,
    )


def day(*, required: bool = True, **kwargs: Any) -> fields.Date:
    return fields.Date(required=required, **kwargs)


def register_id(*, required: bool = False) -> fields.String:
    """The id of a register entry (domain.registers)."""
    return fields.String(
        required=required,
        validate=validate.Regexp(ENTRY_ID, error="Not a register entry id."),
    )


def register_ids(*, required: bool = False) -> fields.List:
    return fields.List(
        register_id(required=True), required=required, validate=validate.Length(min=1, max=50)
    )


def names(*, min_count: int = 1, max_count: int = 50, required: bool = True) -> fields.List:
    return fields.List(
        text(),
        required=required,
        validate=validate.Length(min=min_count, max=max_count),
    )


class Party(StrictSchema):
    """A party to a dispute."""

    name = text(max_length=100)
    role = one_of(("applicant", "respondent"))
    id_number = fields.String(
        validate=validate.Regexp(ID_NUMBER, error="Not an 18-digit ID number.")
    )
    phone = fields.String(validate=validate.Regexp(PHONE, error="Not a phone number."))


class Person(StrictSchema):
    """The person a resettlement or correction case is about."""

    name = text(max_length=100)
    id_number = fields.String(
        required=True, validate=validate.Regexp(ID_NUMBER, error="Not an 18-digit ID number.")
    )
    gender = one_of(rules.GENDERS)
    birth_date = day()
    household_address = text(max_length=300)
    residence_address = text(max_length=300)
    phone = fields.String(validate=validate.Regexp(PHONE, error="Not a phone number."))


class DateRange(StrictSchema):
    """`from`/`to` dates, `to` not before `from`."""

    @validates_schema
    def _to_not_before_from(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end and end < start:
            raise ValidationError("'to' is before 'from'.", field_name="to")


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """Validates `data`; returns the loaded values or raises InvalidData naming each field."""
    if not isinstance(data, dict):
        raise InvalidData(
            "The event data must be a JSON object.", details={"data": ["Not an object."]}
        )
    try:
        return dict(schema.load(data))
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"data": error.messages}
        raise InvalidData(
            "The event data does not match its schema: " + ", ".join(sorted(map(str, messages))),
            details=messages,
        ) from None
