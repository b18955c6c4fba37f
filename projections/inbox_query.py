"""The inbox query: what the current user's unit must act on, most urgent first.

A caseworker sees the deadlines a caseworker acts on at their own unit; a supervisor every
deadline of their unit's subtree. A deadline is in the inbox from its warning lead on
(`due_soon`) and stays there once past due (`overdue`) until the act it waits for is
recorded. Jurisdiction is the case list's (`ReadModels.jurisdiction_unit`), and the cases
shown are recorded in the read-access log like every read.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from casetrail.config import leads_from_env
from domain.case import Actor
from domain.deadlines import DEADLINE_TYPES, DUE_SOON, OVERDUE, lead_days
from domain.errors import NotPermitted
from domain.roles import CASEWORKER, SUPERVISOR
from projections.kept import kept_for, stamp
from projections.queries import ReadModels
from projections.readmodel import subtree_range

INBOX_ROLES = (CASEWORKER, SUPERVISOR)
# Rows in scope from which the page is read in `due` order (an index) rather than sorted.
WIDE_SCOPE = 1000


def inbox_for(
    models: ReadModels,
    actor: Actor,
    *,
    unit: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    page: int = 1,
    per_page: int = 20,
    leads: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A page of the inbox with the counts by state (of every page, whatever `state`)."""
    if actor.role not in INBOX_ROLES:
        raise NotPermitted(
            f"A user with the role '{actor.role}' has no inbox.", code="role_not_permitted"
        )
    scope = models.jurisdiction_unit(actor, unit)
    assert scope is not None
    leads = leads if leads is not None else leads_from_env()
    today = models.today()
    where: list[str] = []
    params: list[Any] = []
    if actor.role == SUPERVISOR:
        low, high = subtree_range(models.engine.place(scope).path)
        where.append("path >= ? AND path < ?")
        params += [low, high]
    else:
        if scope != actor.unit:
            raise NotPermitted(
                "A caseworker's inbox is their own unit's.", code="outside_jurisdiction"
            )
        where.append("unit = ? AND must_act = ?")
        params += [actor.unit, CASEWORKER]
    # In the inbox from the warning lead on: due <= today + lead, per deadline type.
    types = [kind] if kind is not None else list(DEADLINE_TYPES)
    windows = []
    for name in types:
        windows.append("(deadline = ? AND due <= ?)")
        params += [name, (today + timedelta(days=lead_days(name, leads))).isoformat()]
    where.append("(" + " OR ".join(windows) + ")")
    generation = _active(models)
    table = models.engine.tables("inbox", generation)["deadlines"]
    condition = " AND ".join(where)
    day = today.isoformat()
    with models.ct.db.transaction(commit=False) as cur:
        key = (
            table,
            condition,
            day,
            *params,
            stamp(cur, models.engine.tracking_table, "inbox", generation),
        )

        def count() -> tuple[int, int]:
            counted = cur.execute(
                f"SELECT SUM(CASE WHEN due < ? THEN 1 ELSE 0 END) AS overdue, COUNT(*) AS n "
                f"FROM {table} WHERE {condition}",
                [day, *params],
            ).fetchone()
            return int((counted or {}).get("overdue") or 0), int((counted or {}).get("n") or 0)

        known: tuple[int, int] = kept_for(models.ct.db, "inbox counts").get(key, count)
        overdue, in_scope = known
        counts = {DUE_SOON: in_scope - overdue, OVERDUE: overdue}
        if in_scope >= WIDE_SCOPE and models.ct.db.dialect == "sqlite":
            # Many rows in scope: walk the `due` index, which is the page's order, instead
            # of sorting them all (`+path` keeps SQLite off the path index; PostgreSQL's
            # planner weighs this by its statistics).
            condition = condition.replace("path >= ? AND path < ?", "+path >= ? AND +path < ?")
        if state == OVERDUE:
            condition += " AND due < ?"
            params.append(day)
        elif state == DUE_SOON:
            condition += " AND due >= ?"
            params.append(day)
        rows = cur.execute(
            f"SELECT case_id, deadline, ref, case_kind, unit, due, must_act FROM {table} "
            f"WHERE {condition} ORDER BY due, case_id, deadline, ref LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        ).fetchall()
    items = [
        {
            "case": row["case_id"],
            "case_kind": row["case_kind"],
            "unit": row["unit"],
            "kind": row["deadline"],
            "ref": row["ref"],
            "due": row["due"],
            "state": OVERDUE if row["due"] < day else DUE_SOON,
            "must_act": row["must_act"],
        }
        for row in rows
    ]
    models.ct.reads.record_reads(actor, [item["case"] for item in items], "inbox")
    total = counts[state] if state in counts else sum(counts.values())
    return {"items": items, "total": total, "page": page, "counts": counts, "today": day}


def _active(models: ReadModels) -> int:
    generation = models.engine.active_generation("inbox")
    assert generation is not None
    return generation


def upcoming_deadlines(
    models: ReadModels,
    unit: str | None,
    days: int,
    kind: str | None = None,
    case_kind: str | None = None,
) -> list[dict[str, Any]]:
    """The running deadlines of a unit subtree (every root without one) due from today to
    today + `days`, soonest first: the inbox's rows, whoever must act (the operator's list;
    the HTTP inbox is a user's)."""
    if unit is not None:
        models.ct.directory.require_unit(unit)
    today = models.today()
    where = ["due >= ?", "due <= ?", "path >= ?", "path < ?"]
    base: list[Any] = [today.isoformat(), (today + timedelta(days=days)).isoformat()]
    for column, value in (("deadline", kind), ("case_kind", case_kind)):
        if value is not None:
            where.append(f"{column} = ?")
            base.append(value)
    generation = models.engine.active_generation("inbox")
    if generation is None:
        return []
    table = models.engine.tables("inbox", generation)["deadlines"]
    found: list[dict[str, Any]] = []
    with models.ct.db.transaction(commit=False) as cur:
        for place in models._places(unit):
            low, high = subtree_range(place.path)
            params = [*base[:2], low, high, *base[2:]]
            found += cur.execute(
                f"SELECT case_id, deadline, ref, case_kind, unit, due, must_act FROM {table} "
                f"WHERE {' AND '.join(where)} ORDER BY due, case_id, deadline, ref",
                params,
            ).fetchall()
    return [
        {
            "case": row["case_id"],
            "case_kind": row["case_kind"],
            "unit": row["unit"],
            "kind": row["deadline"],
            "ref": row["ref"],
            "due": row["due"],
            "must_act": row["must_act"],
        }
        for row in sorted(found, key=lambda r: (r["due"], r["case_id"], r["deadline"], r["ref"]))
    ]
