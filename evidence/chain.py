"""The per-case hash chain: each event's hash covers its identity, its stored type, its
metadata and the SHA-256 of its data bytes as stored, chained to the previous event of
the same case (or stream).

The encoding is documented, with golden vectors, in docs/hash-chain.md; keep the two in
step (tests/domain/test_audit_vectors.py recomputes the vectors).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
DOMAIN_TAG = b"casetrail/event/v1\n"
# The C string encoder json.dumps(ensure_ascii=False) itself uses.
_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ChainEntry:
    """What the chain covers of one event besides its stored bytes and topic."""

    event_type: str
    recorded_at: str  # ISO 8601, UTC
    actor: str
    actor_role: str
    actor_unit: str


def data_hash(stored_state: bytes) -> str:
    return hashlib.sha256(stored_state).hexdigest()


def canonical_encoding(
    case_id: str,
    version: int,
    entry: ChainEntry,
    stored_data_hash: str,
    prev_hash: str,
    *,
    topic: str,
) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8 without escaping non-ASCII."""
    return link_document(
        case_id,
        version,
        topic,
        entry.event_type,
        entry.recorded_at,
        entry.actor,
        entry.actor_role,
        entry.actor_unit,
        stored_data_hash,
        prev_hash,
    )


def link_document(
    case_id: str,
    version: int,
    topic: str,
    event_type: str,
    recorded_at: str,
    actor: str,
    actor_role: str,
    actor_unit: str,
    stored_data_hash: str,
    prev_hash: str,
) -> bytes:
    """Equal to `json.dumps(document, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`, written out member by member (in sorted order) because the
    verifier runs it for every event of the store. Non-strings are refused."""
    if type(version) is not int:
        raise TypeError("version must be an integer")
    e = _encode_string  # raises TypeError for anything but a string
    return (
        f'{{"actor":{e(actor)},"actor_role":{e(actor_role)},"actor_unit":{e(actor_unit)},'
        f'"case":{e(case_id)},"data_sha256":{e(stored_data_hash)},"prev":{e(prev_hash)},'
        f'"recorded_at":{e(recorded_at)},"topic":{e(topic)},"type":{e(event_type)},'
        f'"version":{version}}}'
    ).encode()


def link_hash(*fields: Any) -> str:
    """The chain hash of `link_document(*fields)`."""
    return hashlib.sha256(DOMAIN_TAG + link_document(*fields)).hexdigest()


def event_hash(
    case_id: str,
    version: int,
    entry: ChainEntry,
    stored_data_hash: str,
    prev_hash: str,
    *,
    topic: str,
) -> str:
    """SHA-256 of the domain tag followed by the canonical encoding, as lowercase hex."""
    encoded = canonical_encoding(case_id, version, entry, stored_data_hash, prev_hash, topic=topic)
    return hashlib.sha256(DOMAIN_TAG + encoded).hexdigest()
