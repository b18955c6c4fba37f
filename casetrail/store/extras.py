"""What the recorders write beside the events, in the events' own transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import ProgrammingError, StoredEvent

from casetrail.chain import GENESIS, ChainEntry, data_hash, event_hash

CHAIN_TABLE = "case_event_chain"
IDEMPOTENCY_TABLE = "idempotency_keys"
# Chain rows per INSERT statement (11 parameters each; SQLite allows 32,766).
ROWS_PER_INSERT = 500
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
class IdempotencyRecord:
    """A command's idempotency key (scoped to its user) and the hash of its request."""

    scope: str
    request_hash: str
    created_at: str


@dataclass(frozen=True)
class ChainLink:
    """What `write_extras` wrote to the chain for one event: the service answers with it
    instead of reading the row back."""

    case_id: str
    version: int
    position: int
    hash: str
    prev_hash: str


class Executor(Protocol):
    def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


def create_statements(*, blob: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
        "case_id TEXT NOT NULL, version BIGINT NOT NULL, position BIGINT NOT NULL, "
        "event_type TEXT NOT NULL, recorded_at TEXT NOT NULL, actor TEXT NOT NULL, "
        "actor_role TEXT NOT NULL, actor_unit TEXT NOT NULL, data_sha256 TEXT NOT NULL, "
        "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (case_id, version))",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {CHAIN_TABLE}_position ON {CHAIN_TABLE} (position)",
        f"CREATE TABLE IF NOT EXISTS {IDEMPOTENCY_TABLE} ("
        "scope TEXT PRIMARY KEY, request_hash TEXT NOT NULL, case_id TEXT NOT NULL, "
        "version BIGINT NOT NULL, position BIGINT NOT NULL, created_at TEXT NOT NULL)",
    ]


def write_extras(
    execute: Executor,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    *,
    chain: Sequence[ChainEntry] | None = None,
    idempotency: IdempotencyRecord | None = None,
    previous: Mapping[str, tuple[int, str]] | None = None,
    dialect: str = "sqlite",
    insert_rows: Callable[[str, Sequence[Sequence[Any]]], None] | None = None,
    **_: Any,
) -> list[ChainLink]:
    """Links each new event into its case's chain and records the idempotency key; the
    links written, in order (valid only once the transaction commits).

    Runs inside the insert transaction, after the event rows took the write lock, so
    the previous link read here cannot change before commit.

    `previous` (case id -> (version, hash)) are links the caller read before: a case's
    entry is used, instead of reading it here, when its version is the one just before
    the case's first new event. That is safe outside the transaction: a link never
    changes once written, and if another append took the next version meanwhile, the
    event insert has already failed on its unique key.

    `insert_rows` (PostgreSQL: `casetrail.db.Cursor.executemany`, one statement over
    column arrays) writes the new links; without it, multi-row VALUES statements.
    """
    if not stored_events:
        return []
    if chain is None or len(chain) != len(stored_events) or len(positions) != len(stored_events):
        raise ProgrammingError("every stored case event needs its chain entry and position")
    # One statement for the previous links of the cases that already have events, one
    # for the new links: a page of the case list appends an access event per case shown,
    # and a round trip per event was most of such a request's time on PostgreSQL.
    last_hash = _previous_links(execute, stored_events, dialect, previous or {})
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
    _insert_links(execute, rows, insert_rows)
    if idempotency is not None:
        last = stored_events[-1]
        execute(
            f"INSERT INTO {IDEMPOTENCY_TABLE} (scope, request_hash, case_id, version, position, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                idempotency.scope,
                idempotency.request_hash,
                str(last.originator_id),
                last.originator_version,
                positions[-1],
                idempotency.created_at,
            ),
        )
    return links


# PostgreSQL: the previous links over column arrays, a statement text that does not
# depend on the number of rows, so that psycopg and the server parse and plan it once
# (prepared), where an OR list of a new length each time was parsed anew (the links'
# INSERT likewise, through `insert_rows`): 7 of the 24 ms of recording a case-list page's
# 20 reads went to the chain's two statements.
PG_PREVIOUS_LINKS = (
    f"SELECT c.case_id, c.version, c.hash FROM {CHAIN_TABLE} c "
    "JOIN unnest(?::text[], ?::bigint[]) AS w(case_id, version) "
    "ON c.case_id = w.case_id AND c.version = w.version"
)
INSERT_LINK = (
    f"INSERT INTO {CHAIN_TABLE} ({', '.join(CHAIN_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in CHAIN_COLUMNS)})"
)


def _insert_links(
    execute: Executor,
    rows: list[tuple[Any, ...]],
    insert_rows: Callable[[str, Sequence[Sequence[Any]]], None] | None,
) -> None:
    if insert_rows is not None:
        insert_rows(INSERT_LINK, rows)
        return
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        values = ", ".join([f"({', '.join('?' for _ in CHAIN_COLUMNS)})"] * len(chunk))
        execute(
            f"INSERT INTO {CHAIN_TABLE} ({', '.join(CHAIN_COLUMNS)}) VALUES {values}",
            [value for row in chunk for value in row],
        )


def _previous_links(
    execute: Executor,
    stored_events: Sequence[StoredEvent],
    dialect: str,
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
    if dialect == "postgres" and pairs:
        case_ids, versions = zip(*pairs, strict=True)
        for row in execute(PG_PREVIOUS_LINKS, [list(case_ids), list(versions)]):
            found[str(row["case_id"])] = str(row["hash"])
        return found
    for start in range(0, len(pairs), ROWS_PER_INSERT):
        chunk = pairs[start : start + ROWS_PER_INSERT]
        condition = " OR ".join(["(case_id = ? AND version = ?)"] * len(chunk))
        for row in execute(
            f"SELECT case_id, version, hash FROM {CHAIN_TABLE} WHERE {condition}",
            [value for pair in chunk for value in pair],
        ):
            found[str(row["case_id"])] = str(row["hash"])
    return found
