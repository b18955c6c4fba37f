"""The case list of a unit subtree against a reference computed from the cases themselves:
handled in the subtree, or handed down or being transferred to a unit of it (`reach`), with
the filters and paging, on SQLite and PostgreSQL; and the plans of those statements on a
list of 20,000 rows: the subtree's page from its unit index in list order, never a scan of
the list or a sort of the whole subtree (issue 13: the province's page 3 had become a sort
of every case, 270 ms at 1,000,000 events, and a county's overdue list a scan of the table
on PostgreSQL)."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor, Context, units_up_from
from domain.clock import FixedClock, cst_date
from domain.dispute import Dispute
from projections import engine_for
from projections.case_list import Statement, unit_page
from projections.cases import COLUMNS, UNIT_COLUMNS
from projections.queries import ReadModels
from tests.dispute_builders import event_data, registration
from tests.integration.projection_support import load_units, save_with_chain

WORKER = Actor(user_id="u_prov", role="caseworker", unit="320000")
SUPERVISOR = Actor(user_id="u_prov_super", role="supervisor", unit="320000")
RECEIVER = Actor(user_id="u_prov_receiver", role="supervisor", unit="320000")
UNITS = ("320100", "320102", "320102001", "320102001001", "320104", "320104002")
LISTED_UNITS = (None, "320000", *UNITS)
FILTERS: list[dict[str, Any]] = [
    {},
    {"kind": "dispute", "status": "closed"},
    {"status": "registered"},
    {"status": "assigned"},
    {"overdue": True},
    {"overdue": False},
    {"category": "labour"},
    {"category": "labour", "overdue": True},
]


def course(rng: random.Random, unit: str) -> list[tuple[Actor, str, dict[str, Any]]]:
    """What happens to a dispute after its registration: handed down (inside or outside
    its unit's subtree), a transfer proposed (left pending, accepted or declined), closed."""
    # Handed down anywhere, transferred to a unit not above it (domain.case's rule).
    handed = rng.choice(UNITS)
    other = rng.choice([u for u in UNITS if u not in units_up_from(unit)])
    steps: dict[str, list[tuple[Actor, str, dict[str, Any]]]] = {
        "open": [],
        "handed down": [
            (WORKER, "DisputeTriaged", {"responsible_unit": unit}),
            (WORKER, "DisputeAssigned", {"assigned_unit": handed}),
        ],
        "handed down, closed": [
            (WORKER, "DisputeTriaged", {"responsible_unit": unit}),
            (WORKER, "DisputeAssigned", {"assigned_unit": handed}),
            (WORKER, "MediationRefused", {}),
            (WORKER, "DisputeClosed", {}),
        ],
        "closed": [(WORKER, "MediationRefused", {}), (WORKER, "DisputeClosed", {})],
        "transfer pending": [(SUPERVISOR, "TransferProposed", {"to_unit": other})],
        "transfer accepted": [
            (SUPERVISOR, "TransferProposed", {"to_unit": other}),
            (RECEIVER, "TransferAccepted", {"to_unit": other}),
        ],
        "transfer declined": [
            (SUPERVISOR, "TransferProposed", {"to_unit": other}),
            (RECEIVER, "TransferDeclined", {"to_unit": other}),
        ],
    }
    return steps[rng.choice(sorted(steps))]


@pytest.fixture
def listed(casetrail: Casetrail, clock: FixedClock) -> tuple[ReadModels, list[dict[str, Any]]]:
    """70 disputes in six units over about 40 days, each on a course of `course`; read
    models caught up in small batches; the clock then 20 days on (some are overdue).
    Returns the read models and, per case, what the domain says of it."""
    load_units(casetrail)
    rng = random.Random(20261205)
    cases: list[dict[str, Any]] = []
    batch = []
    for number in range(70):
        clock.advance(timedelta(minutes=rng.choice((1, 7, 180, 60 * 24))))
        unit = UNITS[number % len(UNITS)]
        category = rng.choice(("neighbourhood", "labour"))
        ctx = Context(actor=WORKER, now=clock.now())
        case = Dispute.open(unit, registration(center_unit=unit, category=category), ctx)
        opened_at = clock.now().isoformat()
        for actor, event_type, changes in course(rng, unit):
            ctx = Context(actor=actor, now=clock.now())
            case.record(event_type, event_data(event_type, cst_date(clock.now()), **changes), ctx)
        batch.append(case)
        cases.append({"case": case, "opened_at": opened_at, "category": category})
        if len(batch) == 9:
            save_with_chain(casetrail, batch)
            batch = []
    save_with_chain(casetrail, batch)
    engine = engine_for(casetrail)
    engine.batch_size = 11
    engine.catch_up()
    clock.advance(timedelta(days=20))
    today = cst_date(clock.now())
    known = []
    for entry in cases:
        case = entry["case"]
        handled = set(casetrail.directory.chain(case.unit))
        units = set(handled)
        if case.assigned_unit:
            units |= set(casetrail.directory.chain(case.assigned_unit))
        if case.pending_transfer:
            units |= set(casetrail.directory.chain(case.pending_transfer["to_unit"]))
        known.append(
            {
                "id": str(case.id),
                "opened_at": entry["opened_at"],
                "units": units,
                "reached": bool(units - handled),
                "status": case.status,
                "category": entry["category"],
                "overdue": case.status != "closed" and case.deadline < today,
            }
        )
    return ReadModels(casetrail), known


def reference(cases: list[dict[str, Any]], unit: str | None, **filters: Any) -> list[str]:
    chosen = [
        c
        for c in cases
        if (unit is None or unit in c["units"])
        and filters.get("kind", "dispute") == "dispute"
        and all(c[name] == value for name, value in filters.items() if name != "kind")
    ]
    chosen.sort(key=lambda c: (c["opened_at"], c["id"]), reverse=True)
    return [c["id"] for c in chosen]


def test_a_units_list_is_its_subtree_and_what_reaches_it_in_list_order(
    listed: tuple[ReadModels, list[dict[str, Any]]],
) -> None:
    models, cases = listed
    # Some cases are listed where they are not handled, some are overdue, some not.
    assert 5 <= sum(c["reached"] for c in cases) <= 60
    assert any(c["overdue"] for c in cases) and not all(c["overdue"] for c in cases)
    for unit in LISTED_UNITS:
        for filters in FILTERS:
            expected = reference(cases, unit, **filters)
            for page in range(1, len(expected) // 4 + 3):
                got = models.list_cases(unit=unit, page=page, per_page=4, **filters)
                assert got["total"] == len(expected), (unit, filters)
                window = expected[(page - 1) * 4 : page * 4]
                assert [item["id"] for item in got["items"]] == window, (unit, filters, page)


# --- plans ------------------------------------------------------------------------------

ROWS = 20_000
COUNTIES = ("320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115")


def fill_list(casetrail: Casetrail) -> ReadModels:
    """An empty store's case list filled with ROWS rows over eight counties of one city
    (a tenth of them closed, a fifth overdue) and a few cases reaching 320102 from
    outside; planner statistics refreshed."""
    models = ReadModels(casetrail)
    t = models._tables("cases")
    rows = []
    for i in range(ROWS):
        county = COUNTIES[i % len(COUNTIES)]
        columns = dict(
            zip(UNIT_COLUMNS, ["320000", "320100", county, None, None, None], strict=True)
        )
        rows.append(
            {
                "case_id": f"c{i:06d}",
                "kind": "dispute",
                "status": "closed" if i % 10 == 0 else "registered",
                "unit": county,
                **columns,
                "category": "labour",
                "opened_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00",
                "last_event_at": "2025-12-31T00:00:00",
                "deadline": "2025-01-01" if i % 5 == 2 else "2099-01-01",
                "minor": 0,
                "version": 1,
                "position": i + 1,
                "state": "{}",
                "display": json.dumps({"names": []}),
                "transfer_to": None,
            }
        )
    with casetrail.db.transaction() as cur:
        cur.insert_many(t["list"], COLUMNS, [[row[c] for c in COLUMNS] for row in rows])
        cur.insert_many(t["reach"], ("unit", "case_id"), [("320102", f"c{i:06d}") for i in (7, 17)])
    casetrail.db.refresh_statistics([t["list"], t["reach"]])
    return models


def sqlite_plan(casetrail: Casetrail, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return casetrail.db.query(f"EXPLAIN QUERY PLAN {sql}", params)


def postgres_nodes(casetrail: Casetrail, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    row = casetrail.db.query_one(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
    assert row is not None
    plan = next(iter(row.values()))
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes, todo = [], [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    return nodes


@pytest.mark.parametrize(
    "unit, filters",
    [
        ("320000", {"kind": "dispute", "status": "closed"}),  # the bench's province, page 3
        ("320102", {"overdue": True}),  # the bench's county, overdue
    ],
)
def test_a_units_page_walks_its_index_in_list_order(
    casetrail: Casetrail, unit: str, filters: dict[str, Any]
) -> None:
    models = fill_list(casetrail)
    t = models._tables("cases")
    where = [f"{{p}}{column} = ?" for column in filters if column != "overdue"]
    params: list[Any] = [value for column, value in filters.items() if column != "overdue"]
    if filters.get("overdue"):
        where.append("{p}deadline < ?")
        params.append("2025-06-01")
    count, rows = unit_page(t, models.engine.place(unit), where, params, 3, 20)
    # The statements answer as the list does (the cases reaching 320102 included).
    got = models.list_cases(unit=unit, page=3, per_page=20, **filters)
    assert [r["case_id"] for r in casetrail.db.query(*rows)] == [i["id"] for i in got["items"]]
    assert len(got["items"]) == 20
    # A province-wide count reads the province (all the list): only a county's is checked.
    assert_index_walks(casetrail, t["list"], rows, count if unit != "320000" else None)


def assert_index_walks(
    casetrail: Casetrail, cases: str, rows: Statement, count: Statement | None
) -> None:
    """The page's rows come from the unit index in list order, and no statement scans
    the list (a count of a whole subtree still reads the subtree)."""
    statements = [rows] if count is None else [count, rows]
    if casetrail.settings.backend == "sqlite":
        for sql, params in statements:
            details = [str(p["detail"]) for p in sqlite_plan(casetrail, sql, params)]
            assert not any("MULTI-INDEX OR" in d for d in details), details
            # No pass over the whole list: every visit to it is a SEARCH of an index.
            assert not any(
                d.startswith("SCAN") and (cases in d or d.startswith("SCAN l")) for d in details
            ), details
        plan = sqlite_plan(casetrail, *rows)
        walk = [p for p in plan if f"INDEX {cases}_u" in str(p["detail"])]
        assert len(walk) == 1, plan
        # The subtree's rows come in list order: nothing beside the walk sorts them.
        beside = [p for p in plan if p["parent"] == walk[0]["parent"]]
        assert not any("TEMP B-TREE" in str(p["detail"]) for p in beside), plan
        return
    for sql, params in statements:
        nodes = postgres_nodes(casetrail, sql, params)
        scans = [n for n in nodes if n.get("Relation Name") == cases]
        assert scans and not any(n["Node Type"] == "Seq Scan" for n in scans), nodes
    # The page reads the rows before it and its own, not the subtree.
    nodes = postgres_nodes(casetrail, *rows)
    read = sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"]
        for n in nodes
        if n.get("Relation Name") == cases
    )
    assert read <= 500, nodes
