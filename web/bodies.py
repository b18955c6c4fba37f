"""Request bodies: JSON only, parsed with bounds, so that no body can become a 500.

Python's `json` accepts what the rest of the stack cannot carry: nesting deep enough to
raise `RecursionError` (in the parser, or later in the schemas, the hash, the store), lone
surrogates (`"\\ud800"`, which no UTF-8 store can encode), integers longer than Python's
int-string limit (`ValueError`) or wider than the 64 bits an event store keeps, and
`NaN`/`Infinity`. Each is refused here with 400 `malformed_request`, before any schema
runs; a body that is not JSON at all (by its Content-Type) with 415. Every blueprint that
reads a JSON body uses this module's `Blueprint`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser

from web.errors import ApiError

# The deepest command body is a few levels (an event's data holding a list of persons).
MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# Longer than any 64-bit integer, shorter than Python's int-string limit (4,300 digits).
MAX_INT_DIGITS = 20
SURROGATE = re.compile("[\ud800-\udfff]")


class BadBody(ValueError):
    """Why a body that is valid JSON to Python is refused all the same."""


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadBody("a number has too many digits")
    number = int(text)
    if not INT_MIN <= number <= INT_MAX:
        raise BadBody("a number is outside the 64-bit range")
    return number


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise BadBody("a number is too large")
    return number


def _constant(name: str) -> float:
    raise BadBody(f"{name} is not a number JSON allows")


def loads(raw: bytes) -> Any:
    """The body as JSON, or `ApiError(400)` saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_int=_integer, parse_float=_finite, parse_constant=_constant)
    except BadBody as error:
        raise malformed(str(error)) from None
    except RecursionError:
        raise malformed("it is nested too deeply") from None
    except (UnicodeDecodeError, ValueError):
        raise malformed("it is not valid JSON") from None
    check_strings_and_depth(value)
    return value


def check_strings_and_depth(value: Any) -> None:
    """Walks the parsed body without recursion: depth, and no lone surrogate anywhere."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                raise malformed("a string holds a lone surrogate (not valid Unicode)")
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise malformed(f"it is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)


def malformed(reason: str) -> ApiError:
    return ApiError(
        400,
        f"The request body is not acceptable JSON: {reason}.",
        details={"json": [reason]},
    )


class JsonBodyParser(FlaskParser):  # type: ignore[misc]
    """webargs' Flask parser, reading a body only as bounded JSON (`loads`)."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not core.is_json(req.mimetype):
            raise ApiError(
                415,
                "The request body must be JSON, sent with 'Content-Type: application/json'.",
                details={"content_type": [req.mimetype or "missing"]},
            )
        raw = req.get_data(cache=True)
        return loads(raw) if raw else core.missing  # no body: the schema names what is missing


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = JsonBodyParser()
