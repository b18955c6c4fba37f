"""Which recorded fields are personal data, read off the event schemas (one place, no list
to keep in step): every free text (names, ID numbers, phones, addresses, notes, summaries,
evidence), every list of free texts, and birth dates. Codes chosen from a table (`OneOf`),
unit codes, numbers, flags and the other dates are not.

Minors' confidentiality (未成年人保護法 §103, 社區矯正法 §54) hides all of them from those
not entitled; per-person keys (casetrail.personal) encrypt all of them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
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
def tree_of(event_class: Any) -> PersonalTree:
    """The personal fields of an event class's data."""
    return personal_tree(event_class.schema_instance())


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


# --- mapping a function over the personal values of event data ----------------------------


def map_personal(data: Any, tree: PersonalTree, change: Callable[[Any], Any]) -> Any:
    """`data` with `change` applied to each (non-null) value `tree` marks as personal."""
    if isinstance(data, list):
        return [map_personal(item, tree, change) for item in data]
    if not isinstance(data, dict):
        return data
    changed = {}
    for name, value in data.items():
        sub = tree.get(name)
        if sub is True and value is not None:
            value = change(value)
        elif isinstance(sub, dict):
            value = map_personal(value, sub, change)
        changed[name] = value
    return changed


def map_named(data: Any, change: Callable[[Any], Any]) -> Any:
    """`data` with `change` applied to each value under a personal field's name, at any
    depth (a case's state, whose shape is its kind's, not a schema's)."""
    names = personal_field_names()
    if isinstance(data, list):
        return [map_named(item, change) for item in data]
    if not isinstance(data, dict):
        return data
    return {
        name: change(value) if name in names and value is not None else map_named(value, change)
        for name, value in data.items()
    }


def id_numbers(data: Any) -> list[str]:
    """Every ID number in `data` (a case's person, a dispute's parties)."""
    if isinstance(data, list):
        return [number for item in data for number in id_numbers(item)]
    if not isinstance(data, dict):
        return []
    found = []
    for name, value in data.items():
        if name == "id_number" and isinstance(value, str):
            found.append(value)
        else:
            found.extend(id_numbers(value))
    return found


# --- what a reader without the right sees of a minor's case -----------------------------

# An event's own free text beside its data.
EVENT_TEXT = frozenset({"note", "reason"})


def redact_personal(value: Any, mark: str, *, today: date | None = None) -> Any:
    """`value` with every personal field in it replaced by `mark`, and each `person`
    reduced to what does not identify (its gender and, given `today`, an age band)."""
    hidden = personal_field_names() | EVENT_TEXT
    if isinstance(value, list):
        return [redact_personal(item, mark, today=today) for item in value]
    if not isinstance(value, dict):
        return value
    redacted: dict[str, Any] = {}
    for key, item in value.items():
        if key == "person" and isinstance(item, dict):
            redacted[key] = _person_shown(item, today)
        elif key in hidden or key == "names":  # `names`: a read-model row's display names
            redacted[key] = _hidden(item, mark)
        else:
            redacted[key] = redact_personal(item, mark, today=today)
    return redacted


def _hidden(value: Any, mark: str) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_hidden(item, mark) for item in value]
    return mark


def _person_shown(person: dict[str, Any], today: date | None) -> dict[str, Any]:
    shown = {key: person[key] for key in SHOWN_OF_A_MINOR if key in person}
    birth = person.get("birth_date")
    if today is not None and isinstance(birth, str):
        with suppress(ValueError):  # an erased date has no band
            shown["age_band"] = age_band(date.fromisoformat(birth), today)
    return shown
