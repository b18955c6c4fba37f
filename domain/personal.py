"""Which recorded fields are personal data, read off the event schemas (one place, no list
to keep in step): every free text (names, ID numbers, phones, addresses, notes, summaries,
evidence), every list of free texts, and birth dates. Codes chosen from a table (`OneOf`),
unit codes, numbers, flags and the other dates are not.

Minors' confidentiality (未成年人保護法 §103, 社區矯正法 §54) hides all of them from those
not entitled; per-person keys (casetrail.personal) encrypt all of them."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

from marshmallow import Schema, fields, validate

from domain.kinds import KINDS
from domain.schemas import UNIT_CODE

# A tree of a schema's personal fields: a field name maps to True (the value is personal)
# or to the tree of a nested object (or of each object of a list).
PersonalTree = dict[str, Any]

DATES_OF_BIRTH = frozenset({"birth_date"})
# The case's own person: a minor's case shows of it at most these (and an age band).
SHOWN_OF_A_MINOR = ("gender",)


def _is_personal_scalar(name: str, field: fields.Field) -> bool:
    if isinstance(field, fields.Date):
        return name in DATES_OF_BIRTH
    if not isinstance(field, fields.String):
        return False
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return False
        if isinstance(validator, validate.Regexp) and validator.regex.pattern == UNIT_CODE:
            return False
    return True


def personal_tree(schema: Schema) -> PersonalTree:
    """The personal fields of `schema`, nested objects and lists included."""
    tree: PersonalTree = {}
    for name, field in schema.fields.items():
        key = field.data_key or name
        if isinstance(field, fields.Nested):
            inner = personal_tree(field.schema)
            if inner:
                tree[key] = inner
        elif isinstance(field, fields.List):
            inner_field = field.inner
            if isinstance(inner_field, fields.Nested):
                inner = personal_tree(inner_field.schema)
                if inner:
                    tree[key] = inner
            elif _is_personal_scalar(key, inner_field):
                tree[key] = True
        elif _is_personal_scalar(key, field):
            tree[key] = True
    return tree


@cache
def personal_field_names() -> frozenset[str]:
    """Every name a personal field has in any event of any kind (a case's state keeps
    the names of the data it was given, so the same names find it there)."""
    found: set[str] = set()

    def collect(tree: PersonalTree) -> None:
        for name, sub in tree.items():
            if sub is True:
                found.add(name)
            else:
                collect(sub)

    for case_class in KINDS.values():
        for event_class in case_class.events:
            collect(personal_tree(event_class.schema_instance()))
    return frozenset(found)


def age_band(birth: date, today: date) -> str:
    """An age band that does not identify (刑法 §17's ages of criminal responsibility)."""
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    if age < 14:
        return "under 14"
    if age < 16:
        return "14-15"
    if age < 18:
        return "16-17"
    return "18 or over"
