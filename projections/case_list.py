"""The case list's page of a unit subtree (`ReadModels.list_cases`): the statements, built
apart so that their plans can be checked (tests/integration/test_case_list_units.py)."""

from __future__ import annotations

from typing import Any

from projections.cases import INDEXED_DEPTH, UNIT_COLUMNS
from projections.readmodel import Place, Tables

LIST_COLUMNS = (
    "case_id, kind, status, unit, category, opened_at, last_event_at, deadline, "
    "minor, version, position, display, transfer_to"
)
Statement = tuple[str, list[Any]]


def unit_page(
    t: Tables, place: Place, where: list[str], params: list[Any], page: int, per_page: int
) -> tuple[Statement, Statement]:
    """The statements of a page of the case list in a unit's subtree: how many cases
    there are, and the page's rows. Listed are the cases handled in the subtree, and
    those handed down or being transferred to a unit of it from outside (`reach`).
    `where` are the other filters ({p}: a table alias), with their `params`.

    Two walks, each on an index, merged: the subtree's cases come in list order from its
    unit column's index (the page is its first rows), the few reached from outside by
    the reach table's key. The walks are disjoint, so their counts add up. (One WHERE of
    `subtree OR case_id IN (reach)` has no index that gives the list order: SQLite
    sorted every case of the subtree, PostgreSQL scanned the table.)
    """
    cases, reach = t["list"], t["reach"]
    depth = len(place.chain) - 1
    subtree: list[str] = []
    subtree_params: list[Any] = []
    if depth >= INDEXED_DEPTH:
        # Below township level: the township's index, then the unit's own column.
        subtree.append(f"{{p}}{UNIT_COLUMNS[INDEXED_DEPTH - 1]} = ?")
        subtree_params.append(place.chain[INDEXED_DEPTH - 1])
    column = UNIT_COLUMNS[depth] if depth < len(UNIT_COLUMNS) else "unit"
    subtree.append(f"{{p}}{column} = ?")
    subtree_params.append(place.unit)
    handled = " AND ".join(w.format(p="") for w in [*subtree, *where])
    handled_params = [*subtree_params, *params]
    # Reached from outside the subtree (a NULL unit column is outside). The reach table
    # leads (CROSS JOIN keeps SQLite from starting at the list's indexes).
    inside = " AND ".join(w.format(p="l.") for w in subtree)
    reached = " AND ".join(
        [
            "r.unit = ?",
            "l.case_id = r.case_id",
            f"(CASE WHEN {inside} THEN 0 ELSE 1 END) = 1",
            *(w.format(p="l.") for w in where),
        ]
    )
    reached_from = f"{reach} r CROSS JOIN {cases} l"
    reached_params = [place.unit, *subtree_params, *params]
    count = (
        f"SELECT (SELECT COUNT(*) FROM {cases} WHERE {handled}) + "
        f"(SELECT COUNT(*) FROM {reached_from} WHERE {reached}) AS n",
        [*handled_params, *reached_params],
    )
    order = "ORDER BY opened_at DESC, case_id DESC"
    # Each walk's first `limit` rows hold the merged list's first `limit`.
    limit = page * per_page
    rows = (
        f"SELECT {LIST_COLUMNS} FROM {cases} WHERE case_id IN (SELECT case_id FROM ("
        "SELECT opened_at, case_id FROM ("
        f"SELECT opened_at, case_id FROM {cases} WHERE {handled} {order} LIMIT ?) h "
        "UNION ALL SELECT opened_at, case_id FROM ("
        f"SELECT l.opened_at, l.case_id FROM {reached_from} WHERE {reached} "
        f"ORDER BY l.opened_at DESC, l.case_id DESC LIMIT ?) x "
        f"{order} LIMIT ? OFFSET ?) p) {order}",
        [*handled_params, limit, *reached_params, limit, per_page, (page - 1) * per_page],
    )
    return count, rows
