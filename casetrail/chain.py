"""The per-case hash chain: each event's hash covers its identity, its stored type, its
metadata and the SHA-256 of its data bytes as stored, chained to the previous event of
the same case (or stream).

The encoding is documented, with golden vectors, in docs/hash-chain.md; keep the two in
step (tests/domain/test_audit_chain_vectors.py recomputes the vectors).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

GENESIS = "0" * 64
DOMAIN_TAG = b"casetrail/event/v1\n"


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
    document = {
        "case": case_id,
        "version": version,
        "topic": topic,
        "type": entry.event_type,
        "recorded_at": entry.recorded_at,
        "actor": entry.actor,
        "actor_role": entry.actor_role,
        "actor_unit": entry.actor_unit,
        "data_sha256": stored_data_hash,
        "prev": prev_hash,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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
