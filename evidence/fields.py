"""The fields of a stored row as the verifier reads them: each in the one form the stores
write, or None (an altered row), never an exception."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

_UUIDS: dict[Any, str | None] = {}
# The only spellings of a stream id the stores write: 32 hex digits (SQLite) or the
# dashed form (the chain table); `UUID()` alone would also take braces, "urn:" or "0x".
_UUID_TEXT = re.compile(
    r"^[0-9a-f]{32}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


def _uuid(value: Any) -> str | None:
    """The canonical form of a stream id, or None; memoised, as ids repeat per version."""
    if not isinstance(value, str | UUID):
        return None
    found = _UUIDS.get(value, "")
    if found != "":
        return found
    canonical: str | None = None
    if isinstance(value, UUID):
        canonical = str(value)
    elif _UUID_TEXT.match(value):
        canonical = str(UUID(value))
    if len(_UUIDS) > 50_000:  # bounded: the verifier streams
        _UUIDS.clear()
    _UUIDS[value] = canonical
    return canonical


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _hex32(value: Any) -> bytes | None:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None
