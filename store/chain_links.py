"""The hash chain's table: one link per case event (its hash over the event and the link
before it), written in the event's own transaction by the event recorders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ProgrammingError, StoredEvent

from evidence.chain import GENESIS, ChainEntry, data_hash, event_hash
from store.db import Cursor

CHAIN_TABLE = "case_event_chain"
CHAIN_COLUMNS = (
    "case_id",
    "version",
    "position",
    "event_type",
    "recorded_at",
    "actor",
    "actor_role",
    "actor_unit",
    "data_sha256",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class ChainLink:
    """What `write_links` wrote to the chain for one event: the service answers with it
    instead of reading the row back."""

    case_id: str
    version: int
    position: int
    hash: str
    prev_hash: str


def create_statements() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
        "case_id TEXT NOT NULL, version BIGINT NOT NULL, position BIGINT NOT NULL, "
        "event_type TEXT NOT NULL, recorded_at TEXT NOT NULL, actor TEXT NOT NULL, "
        "actor_role TEXT NOT NULL, actor_unit TEXT NOT NULL, data_sha256 TEXT NOT NULL, "
        "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (case_id, version))",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {CHAIN_TABLE}_position ON {CHAIN_TABLE} (position)",
    ]


def write_links(
    cur: Cursor,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    *,
    chain: Sequence[ChainEntry] | None = None,
    previous: Mapping[str, tuple[int, str]] | None = None,
    **_: Any,  # the other keywords of `Application.save` (the idempotency key)
) -> list[ChainLink]:
    """Links each new event into its case's chain; the links written, in order (valid only
    once the transaction commits).

    Runs inside the insert transaction, after the event rows took the write lock, so
    the previous link read here cannot change before commit.

    `previous` (case id -> (version, hash)) are links the caller read before: a case's
    entry is used, instead of reading it here, when its version is the one just before
    the case's first new event. That is safe outside the transaction: a link never
    changes once written, and if another append took the next version meanwhile, the
    event insert has already failed on its unique key.
    """
    if not stored_events:
        return []
    if chain is None or len(chain) != len(stored_events) or len(positions) != len(stored_events):
        raise ProgrammingError("every stored case event needs its chain entry and position")
    # One statement for the previous links of the cases that already have events, one
    # for the new links: a page of the case list appends an access event per case shown,
    # and a round trip per event was most of such a request's time on PostgreSQL.
    last_hash = _previous_links(cur, stored_events, previous or {})
    rows: list[tuple[Any, ...]] = []
    links: list[ChainLink] = []
    for stored, entry, position in zip(stored_events, chain, positions, strict=True):
        case_id = str(stored.originator_id)
        version = stored.originator_version
        prev = GENESIS if version == 1 else last_hash.get(case_id)
        if prev is None:
            raise ProgrammingError(f"no chain link for case {case_id} v{version - 1}")
        digest = data_hash(stored.state)
        link = event_hash(case_id, version, entry, digest, prev, topic=stored.topic)
        rows.append(
            (
                case_id,
                version,
                position,
                entry.event_type,
                entry.recorded_at,
                entry.actor,
                entry.actor_role,
                entry.actor_unit,
                digest,
                prev,
                link,
            )
        )
        last_hash[case_id] = link
        links.append(ChainLink(case_id, version, position, link, prev))
    cur.insert_many(CHAIN_TABLE, CHAIN_COLUMNS, rows)
    return links


def _previous_links(
    cur: Cursor,
    stored_events: Sequence[StoredEvent],
    previous: Mapping[str, tuple[int, str]],
) -> dict[str, str]:
    """The stored hash of the link before each case's first new event (cases whose first
    new event is not their first event), from `previous` or in one query; a link missing
    from the chain is missing from the result."""
    wanted: dict[str, int] = {}
    for stored in stored_events:
        case_id = str(stored.originator_id)
        if case_id not in wanted:
            wanted[case_id] = stored.originator_version - 1
    found: dict[str, str] = {}
    pairs = []
    for case_id, version in wanted.items():
        if version < 1:
            continue
        known = previous.get(case_id)
        if known is not None and known[0] == version:
            found[case_id] = known[1]
        else:
            pairs.append((case_id, version))
    if pairs:
        for row in cur.select_by_keys(
            CHAIN_TABLE, ("case_id", "version", "hash"), ("case_id", "version"), pairs
        ):
            found[str(row["case_id"])] = str(row["hash"])
    return found
