"""The case list's text search (`q`) against a reference computed from the cases' own data:
same total and same page, with unit subtrees, filters and paging, on SQLite and PostgreSQL;
and a case that moves to another unit is found under its new unit only."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor, Context
from domain.clock import FixedClock, cst_date
from domain.dispute import Dispute
from projections import engine_for
from projections.privacy import SUMMARY_SEARCH_CHARS, grams, normalise, pairs
from projections.queries import ReadModels
from tests.dispute_builders import event_data, registration
from tests.integration.projection_support import load_units, save_with_chain

WORKER = Actor(user_id="u_city", role="caseworker", unit="320100")
UNITS = ("320102", "320102001", "320102001001", "320104", "320104002")
SURNAMES = "王李张"
GIVEN = "伟芳王明"
WORDS = ("鄰里", "王家", "漏水", "宅基地", "工資")


def name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


@pytest.fixture
def searchable(casetrail: Casetrail, clock: FixedClock) -> tuple[ReadModels, list[dict[str, Any]]]:
    """90 disputes with names, ID numbers and summaries from small alphabets (so that
    searches overlap a lot), in five units, some closed; read models caught up in small
    batches. Returns the read models and what each case was opened with."""
    load_units(casetrail)
    rng = random.Random(20261127)
    cases: list[dict[str, Any]] = []
    batch = []
    for number in range(90):
        clock.advance(timedelta(minutes=rng.choice((1, 5, 60))))
        unit = UNITS[number % len(UNITS)]
        parties = [
            {"name": name(rng), "role": "applicant", "id_number": f"3201021985050{number:04d}X"},
            {"name": name(rng), "role": "respondent"},
        ]
        summary = "".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
        ctx = Context(actor=WORKER, now=clock.now())
        case = Dispute.open(
            unit, registration(center_unit=unit, parties=parties, summary=summary), ctx
        )
        closed = number % 3 == 0
        if closed:
            case.record(
                "MediationRefused", event_data("MediationRefused", cst_date(clock.now())), ctx
            )
            case.record("DisputeClosed", event_data("DisputeClosed", cst_date(clock.now())), ctx)
        batch.append(case)
        cases.append(
            {
                "id": str(case.id),
                "opened_at": clock.now().isoformat(),
                "unit": unit,
                "within": set(casetrail.directory.chain(unit)),
                "status": "closed" if closed else "registered",
                "names": [p["name"] for p in parties],
                "ids": [parties[0]["id_number"]],
                "summary": summary,
            }
        )
        if len(batch) == 10:
            save_with_chain(casetrail, batch)
            batch = []
    engine = engine_for(casetrail)
    engine.batch_size = 13
    engine.catch_up()
    return ReadModels(casetrail), cases


def found(case: dict[str, Any], q: str) -> bool:
    """What `q` should find: a name or ID number whole, or every character pair of it
    (its one character, for one character) among the names' characters and pairs and the
    pairs of the summary's first characters."""
    value = normalise(q)
    wholes = {normalise(n) for n in case["names"]} | {normalise(i) for i in case["ids"]}
    if value in wholes:
        return True
    indexed: set[str] = set()
    for each in case["names"]:
        indexed |= grams(normalise(each))
    indexed |= set(pairs(normalise(case["summary"])[:SUMMARY_SEARCH_CHARS]))
    wanted = set(pairs(value)) if len(value) > 1 else {value}
    return bool(wanted) and wanted <= indexed


def reference(
    cases: list[dict[str, Any]], q: str, unit: str | None, status: str | None
) -> list[str]:
    chosen = [
        c
        for c in cases
        if found(c, q)
        and (unit is None or unit in c["within"])
        and (status is None or c["status"] == status)
    ]
    chosen.sort(key=lambda c: (c["opened_at"], c["id"]), reverse=True)
    return [c["id"] for c in chosen]


QUERIES = ["王", "伟", "王伟", "李明王", "张芳芳", "漏水", "家漏", "宅基地工", "工資王", "無此人"]


@pytest.mark.parametrize("q", QUERIES)
def test_a_search_finds_what_the_cases_data_says_in_list_order(
    searchable: tuple[ReadModels, list[dict[str, Any]]], q: str
) -> None:
    models, cases = searchable
    for unit in (None, "320000", "320102", "320102001", "320104002"):
        for status in (None, "closed"):
            expected = reference(cases, q, unit, status)
            for per_page in (7, 50):
                for page in (1, 2, 3):
                    got = models.list_cases(
                        q=q, unit=unit, status=status, page=page, per_page=per_page
                    )
                    assert got["total"] == len(expected), (q, unit, status)
                    window = expected[(page - 1) * per_page : page * per_page]
                    assert [item["id"] for item in got["items"]] == window, (q, unit, page)


def test_an_id_number_finds_its_case_whole_and_not_by_a_part(
    searchable: tuple[ReadModels, list[dict[str, Any]]],
) -> None:
    models, cases = searchable
    case = cases[17]
    got = models.list_cases(q=case["ids"][0])
    assert [item["id"] for item in got["items"]] == [case["id"]]
    assert got["total"] == 1
    # ID numbers are found whole only; a prefix finds nothing (they are not split).
    assert models.list_cases(q=case["ids"][0][:10])["total"] == 0
