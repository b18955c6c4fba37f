"""The people a re-offending rate is over (issue 15, gap 18): each person once across their
cases, by the keyed hash of their ID number (`Privacy.person_key`; a case without one, or
erased, is a person of its own).

A case's **stays** say where it was under assistance (or correction) and when: one from its
reception at the receiving unit (a correction subject's from the decision taking effect, if
earlier), a new one at each move (委托幫教, 遷居, an accepted transfer) while it is, each
ended by the next move or the case's end. From them, for a unit subtree and a period, the
sets of people:

- under it at the period's start: a stay in the subtree begun before the first day and not
  ended before it (received or moved in on the first day is not yet "at the start"; ended
  on it, still is);
- received in the period: a reception in the subtree on a day of the period;
- moved in during the period: a stay begun by a move on a day of the period, in the subtree,
  from a unit outside it;
- received up to a day: receptions in the subtree on or before it.

The rate's population is the union of the first three: a person in two of them (under
assistance at the start in one case, received again in another) counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.readmodel import Batch, Place, Tables, subtree_range
from store.db import Cursor


def stays_statements(t: Tables) -> list[str]:
    stays = t["stays"]
    return [
        # `who`: the person (their keyed hash, else 'case:' and the case id); `came_from`:
        # the previous stay's path when a move began this one (NULL: a reception).
        f"CREATE TABLE IF NOT EXISTS {stays} (stay_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, "
        "who TEXT NOT NULL, path TEXT NOT NULL, from_day TEXT NOT NULL, to_day TEXT, "
        "came_from TEXT)",
        # A subtree's stays answered from the index alone (no row, no join).
        f"CREATE INDEX IF NOT EXISTS {stays}_subtree ON {stays} "
        "(path, from_day, to_day, came_from, who)",
    ]


def person_of(row: dict[str, Any]) -> str:
    """Who a case's person is: their keyed hash, else (no ID number, or erased) the case."""
    return str(row.get("person") or f"case:{row['case_id']}")


def stay_begun(b: Batch, row: dict[str, Any], place: Place, day: str, came_from: str | None) -> int:
    """A new stay of the case of `row` at `place` from `day`; returns its number."""
    number = int(row["stay"] or 0) + 1
    b.insert(
        "stays",
        "stay_id",
        {
            "stay_id": f"{row['case_id']}/{number}",
            "case_id": row["case_id"],
            "who": person_of(row),
            "path": place.path,
            "from_day": day,
            "to_day": None,
            "came_from": came_from,
        },
    )
    return number


def stay_ended(b: Batch, row: dict[str, Any], day: str) -> None:
    """The current stay of the case of `row` (if any) ends on `day`."""
    if not row["stay"]:
        return
    key = f"{row['case_id']}/{row['stay']}"
    if b.row("stays", "stay_id", key) is not None:
        b.update("stays", key, to_day=day)


def stay_moved(b: Batch, row: dict[str, Any], old: Place, new: Place, day: str) -> int:
    """The case moves from `old` to `new` on `day`: its stay there ends, one here begins."""
    stay_ended(b, row, day)
    return stay_begun(b, row, new, day, old.path)


def forget_person(cur: Cursor, stays: str, case_id: str) -> None:
    """Erasure (projections.erasure): the case's stays are no longer joined to the person."""
    cur.execute(
        f"UPDATE {stays} SET who = ? WHERE stay_id >= ? AND stay_id < ?",
        (f"case:{case_id}", f"{case_id}/", f"{case_id}0"),
    )


@dataclass(frozen=True)
class Population:
    """The people of a subtree and period (each a count of people, not cases)."""

    at_start: int
    received: int
    moved_in: int
    # |at_start ∪ received ∪ moved_in|: the rate's denominator.
    total: int


def population(
    cur: Cursor, t: Tables, cases: str, places: list[Place], start: str, end: str
) -> Population:
    """The people under assistance (or correction) in `places`' subtrees at some time of
    [start, end]; `cases` is the read model's table of cases (with `person`, `received_on`,
    `received_path`). Counted by the database from covering indexes (COUNT(DISTINCT ...)):
    no row comes back to Python."""
    stays = t["stays"]
    ranges = [subtree_range(place.path) for place in places]
    at_start = _each(
        ranges,
        f"SELECT who FROM {stays} WHERE path >= ? AND path < ? AND from_day < ? "
        "AND (to_day IS NULL OR to_day >= ?)",
        lambda low, high: [low, high, start, start],
    )
    received = _received(cases, ranges, start, end)
    moved_in = _each(
        ranges,
        f"SELECT who FROM {stays} WHERE path >= ? AND path < ? AND from_day >= ? "
        "AND from_day <= ? AND came_from IS NOT NULL AND (came_from < ? OR came_from >= ?)",
        lambda low, high: [low, high, start, end, low, high],
    )
    counts = [_people(cur, *term) for term in (at_start, received, moved_in)]
    if sum(1 for n in counts if n) <= 1:
        total = sum(counts)  # one term (or none): nobody to count twice
    else:
        total = _people(
            cur,
            " UNION ALL ".join(sql for sql, _ in (at_start, received, moved_in)),
            [value for _, params in (at_start, received, moved_in) for value in params],
        )
    return Population(at_start=counts[0], received=counts[1], moved_in=counts[2], total=total)


def received_up_to(cur: Cursor, cases: str, places: list[Place], end: str) -> int:
    """The people received in the subtrees on or before `end` (cumulative)."""
    ranges = [subtree_range(place.path) for place in places]
    return _people(cur, *_received(cases, ranges, "0001-01-01", end))


def received_statements(cases: str) -> list[str]:
    """The index the receptions of a subtree and period are counted from alone."""
    return [
        f"CREATE INDEX IF NOT EXISTS {cases}_received ON {cases} "
        "(received_on, received_path, person, case_id)"
    ]


Term = tuple[str, list[Any]]


def _each(ranges: list[tuple[str, str]], sql: str, params: Any) -> Term:
    """`sql` for every subtree range, one after the other (UNION ALL)."""
    return (
        " UNION ALL ".join(sql for _ in ranges),
        [value for low, high in ranges for value in params(low, high)],
    )


def _received(cases: str, ranges: list[tuple[str, str]], start: str, end: str) -> Term:
    return _each(
        ranges,
        f"SELECT COALESCE(person, 'case:' || case_id) AS who FROM {cases} "
        "WHERE received_on >= ? AND received_on <= ? AND received_path >= ? "
        "AND received_path < ?",
        lambda low, high: [start, end, low, high],
    )


def _people(cur: Cursor, sql: str, params: list[Any]) -> int:
    """The distinct people (`who`) of the rows of `sql`."""
    found = cur.execute(f"SELECT COUNT(DISTINCT who) AS n FROM ({sql}) people", params).scalar()
    return int(found or 0)
