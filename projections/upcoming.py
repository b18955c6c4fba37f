"""The lists of what falls due soon for supervisors: correction terms ending, report-in
windows closing, and released people's handover windows closing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from projections.queries import UPCOMING_LIMIT, ReadModels
from projections.readmodel import subtree_range
from store.db import Cursor


def upcoming(models: ReadModels, unit: str | None, days: int = 30) -> dict[str, Any]:
    """Correction terms ending and report-in windows closing, and handover windows of
    released people closing, within `days` from today."""
    today = models.today()
    first, last = today.isoformat(), (today + timedelta(days=days)).isoformat()
    places = models._places(unit)
    subjects = models._tables("correction")["subjects"]
    people = models._tables("resettlement")["people"]

    def select(cur: Cursor, table: str, column: str, extra: str = "") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for place in places:
            low, high = subtree_range(place.path)
            found.extend(
                cur.execute(
                    f"SELECT case_id, unit, {column} AS due{extra} FROM {table} "
                    f"WHERE {column} >= ? AND {column} <= ? AND path >= ? AND path < ? "
                    f"ORDER BY {column}, case_id LIMIT {UPCOMING_LIMIT}",
                    (first, last, low, high),
                ).fetchall()
            )
        return found

    with models.ct.db.transaction(commit=False) as cur:
        terms = select(cur, subjects, "active_term_end", ", minor")
        reports = select(cur, subjects, "report_due", ", minor")
        handovers = select(cur, people, "handover_due")
    return {
        "from": first,
        "to": last,
        "term_ends": [
            {
                "id": r["case_id"],
                "unit": r["unit"],
                "term_end": r["due"],
                "minor": bool(r["minor"]),
            }
            for r in terms
        ],
        "report_in_windows": [
            {
                "id": r["case_id"],
                "unit": r["unit"],
                "report_due": r["due"],
                "minor": bool(r["minor"]),
            }
            for r in reports
        ],
        "handover_windows": [
            {"id": r["case_id"], "unit": r["unit"], "handover_due": r["due"]} for r in handovers
        ],
    }
