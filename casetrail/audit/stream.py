"""Reading the store for the streaming verifier (`evidence.stream`): the event rows of a
range of the log in position order, chunk by chunk, the hash-chain rows beside them, and
the look-ups by key the checker asks for. Memory: one chunk at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from casetrail.audit.records import LINK_COLUMNS
from evidence.fields import _uuid
from evidence.stream import Key, Partial, RangeChecker
from evidence.verifier import Decoder, LinkRow, StoredRow
from store import log_tree
from store.chain_links import CHAIN_TABLE
from store.db import Database

CHUNK = 2000
# (first position, position after the last or None for the end, index of the first leaf)
Bounds = tuple[int | None, int | None, int]
Progress = Callable[[int], None]


def count_events(db: Database, events_table: str) -> int:
    row = db.query_one(f"SELECT COUNT(*) AS n FROM {events_table}")
    return int(row["n"]) if row else 0


def plan(db: Database, events_table: str, count: int, size: int) -> list[Bounds]:
    """Ranges of `size` leaves (the last one shorter), by the positions where they start."""
    position = db.position_column
    starts: list[int | None] = [None]
    for offset in range(size, count, size):
        row = db.query_one(
            f"SELECT {position} AS p FROM {events_table} ORDER BY {position} "
            f"LIMIT 1 OFFSET {int(offset)}"
        )
        if row is None:
            break
        starts.append(int(row["p"]))
    ends = [*starts[1:], None]
    return [(lo, hi, index * size) for index, (lo, hi) in enumerate(zip(starts, ends, strict=True))]


def _where(column: str, low: int | None, high: int | None, *, inclusive_high: bool) -> str:
    terms = []
    if low is not None:
        terms.append(f"{column} > {int(low)}")
    if high is not None:
        terms.append(f"{column} {'<=' if inclusive_high else '<'} {int(high)}")
    return ("WHERE " + " AND ".join(terms)) if terms else ""


def _tuples(db: Database, sql: str) -> list[tuple[Any, ...]]:
    with db.transaction(commit=False) as cur:
        return cur.tuples(sql)


def check_range(
    db: Database,
    events_table: str,
    bounds: Bounds,
    sizes: Sequence[int],
    decode: Decoder | None = None,
    case: str | None = None,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> Partial:
    """Checks the events of one range (or only `case`'s, reading no other bytes), `chunk`
    rows at a time."""
    low, high, offset = bounds
    checker = RangeChecker(
        offset,
        sizes,
        lambda keys: lookup_events(db, events_table, keys),
        lambda keys: lookup_links(db, keys),
        decode=decode,
        case=case,
        kept=(lambda low, high: log_tree.kept_roots(db, low, high)) if case is None else None,
    )
    position = db.position_column
    state = "state"
    if case is not None:  # a canonical UUID (hex digits and dashes only) in the SQL
        state = f"CASE WHEN originator_id = '{db.stored_id(str(UUID(case)))}' THEN state END"
    after = None if low is None else low - 1
    while True:
        where = _where(position, after, high, inclusive_high=False)
        # Plain tuples, in the order of `StoredRow` and `LinkRow` (the checker takes them).
        rows = _tuples(
            db,
            f"SELECT {position}, originator_id, originator_version, topic, {state} "
            f"FROM {events_table} {where} ORDER BY {position} LIMIT {int(chunk)}",
        )
        last = len(rows) < chunk
        upto = high if last else int(rows[-1][0])
        links = _tuples(
            db,
            f"SELECT {LINK_COLUMNS} FROM {CHAIN_TABLE} "
            + _where("position", after, upto, inclusive_high=not last)
            + " ORDER BY position",
        )
        checker.feed(rows, links)
        if progress is not None:
            progress(len(rows))
        if last:
            return checker.result()
        after = int(rows[-1][0])


def _padded(db: Database, keys: list[tuple[Any, int]], blank: Any) -> list[tuple[Any, int]]:
    """`keys` padded to a few lengths on SQLite (each a big statement in the driver's cache)."""
    if db.dialect != "sqlite" or not keys:
        return keys
    size = next((b for b in (8, 64) if len(keys) <= b), -(-len(keys) // 500) * 500)
    return keys + [(blank, -1)] * (size - len(keys))


def lookup_events(db: Database, events_table: str, keys: Sequence[Key]) -> dict[Key, list[int]]:
    found: dict[Key, list[int]] = {}
    position = db.position_column
    with db.transaction(commit=False) as cur:
        rows = cur.select_by_keys(
            events_table,
            [position, "originator_id", "originator_version"],
            ["originator_id", "originator_version"],
            _padded(db, sorted({(db.stored_id(c), v) for c, v in keys}, key=str), ""),
        )
    for row in rows:
        at, case, version = row.values()  # the position column's name varies with the store
        case = _uuid(case)
        if case is not None:
            found.setdefault((case, version), []).append(at)
    return found


def lookup_links(db: Database, keys: Sequence[Key]) -> dict[Key, LinkRow]:
    columns = [c.strip() for c in LINK_COLUMNS.split(",")]
    with db.transaction(commit=False) as cur:
        rows = cur.select_by_keys(
            CHAIN_TABLE, columns, ["case_id", "version"], _padded(db, sorted(set(keys)), "")
        )
    return {(str(_uuid(row["case_id"])), row["version"]): LinkRow(**row) for row in rows}


def duplicated(db: Database, events_table: str) -> set[str]:
    """The cases with a version stored twice in either table (whatever the unique keys)."""
    cases = set()
    for table, case, version in (
        (events_table, "originator_id", "originator_version"),
        (CHAIN_TABLE, "case_id", "version"),
    ):
        for row in db.query(
            f"SELECT {case} AS c FROM {table} GROUP BY {case}, {version} HAVING COUNT(*) > 1"
        ):
            canonical = _uuid(row["c"])
            if canonical is not None:
                cases.add(canonical)
    return cases


def case_rows(
    db: Database, events_table: str, case_id: str
) -> tuple[list[StoredRow], list[LinkRow]]:
    """All rows of one case: its events (without their bytes) and its hash-chain rows."""
    position = db.position_column
    events = [
        StoredRow(r["p"], r["originator_id"], r["originator_version"], r["topic"], None)
        for r in db.query(
            f"SELECT {position} AS p, originator_id, originator_version, topic "
            f"FROM {events_table} WHERE originator_id = ? ORDER BY {position}",
            (db.stored_id(case_id),),
        )
    ]
    links = [
        LinkRow(**r)
        for r in db.query(f"SELECT {LINK_COLUMNS} FROM {CHAIN_TABLE} WHERE case_id = ?", (case_id,))
    ]
    return events, links
