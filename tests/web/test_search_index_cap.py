"""Issue 14, "one request can bloat the search index": a dispute of 500 parties with
100-character names of random characters added ~69,000 rows to the search index (and
0.9 s of worker time). Now one case adds at most MAX_CASE_TERMS, and stays findable by
every party's whole name and ID number, and by the first parties' names in part."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
import requests

from casetrail.bootstrap import Casetrail
from projections import engine_for
from projections.privacy import (
    MAX_CASE_TERMS,
    QUERY_GRAM_CHARS,
    SUMMARY_SEARCH_CHARS,
    Privacy,
    grams,
    normalise,
    pairs,
)
from tests.dispute_builders import registration
from tests.web.conftest import INSIDE, Service, Tokens, check

# Common CJK ideographs (U+4E00..U+9FA5): almost every pair of random ones is a new term.
CJK = [chr(code) for code in range(0x4E00, 0x9FA6)]


@pytest.fixture
def service(served: Service) -> Service:
    return served


@pytest.fixture
def tokens(served_tokens: Tokens) -> Tokens:
    return served_tokens


def bloated_parties(seed: int) -> list[dict[str, Any]]:
    chance = random.Random(seed)
    return [
        {
            "name": "".join(chance.choice(CJK) for _ in range(100)),
            "role": "applicant" if n % 2 == 0 else "respondent",
            "id_number": f"3201021990{n:07d}X",
        }
        for n in range(500)
    ]


def terms_of(ct: Casetrail, case_id: str) -> int:
    engine = engine_for(ct)
    table = engine.tables("cases", engine.active_generation("cases"))["terms"]
    return int(
        ct.db.query(f"SELECT COUNT(*) AS n FROM {table} WHERE case_id = ?", (case_id,))[0]["n"]
    )


def test_one_case_adds_at_most_the_cap_to_the_search_index_and_stays_findable(
    service: Service, tokens: Tokens, served_casetrail: Casetrail
) -> None:
    headers = {"Authorization": f"Bearer {tokens.by_role['caseworker']}"}
    parties = bloated_parties(14)
    data = registration(parties=parties, people_involved=500, summary="楼" * 4000)
    body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": data}
    raw = json.dumps(body, ensure_ascii=False).encode()  # ~170 kB, under the body limit
    answer = requests.post(
        f"{service.url}/cases",
        data=raw,
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    case_id = check(answer, 201)["id"]
    engine_for(served_casetrail).catch_up()  # what the projection worker does

    added = terms_of(served_casetrail, case_id)
    # On main: 500 × (1 whole + ~100 characters + 99 pairs) + 500 ID numbers ≈ 100,000.
    assert 1000 <= added <= MAX_CASE_TERMS <= 5000, added

    def found(q: str) -> set[str]:
        listed = check(
            requests.get(f"{service.url}/cases", params={"q": q}, headers=headers, timeout=30),
            200,
        )
        return {item["id"] for item in listed["items"]}

    for party in (parties[0], parties[250], parties[499]):
        assert case_id in found(party["name"])  # whole names: always indexed
        assert case_id in found(party["id_number"])
    assert case_id in found(parties[0]["name"][:2])  # the first names in part too

    # A long query costs a bounded number of lookups: a 200-character one (the most a
    # query may have) made 199 pair lookups per candidate, ~7 s of PostgreSQL per request.
    longest = "".join(random.Random(1).sample(CJK, 200))
    for q in (longest, parties[1]["name"], parties[2]["name"][:60]):
        started = time.monotonic()
        found(q)
        assert time.monotonic() - started < 3.0, (len(q), time.monotonic() - started)
    assert case_id in found(parties[2]["name"][:24])  # in part: a name's first 24 characters


def test_a_query_looks_up_a_bounded_number_of_pairs() -> None:
    _, grams = Privacy(None).query_terms("".join(random.Random(2).sample(CJK, 200)))
    assert len(grams) == QUERY_GRAM_CHARS - 1 <= 31


def test_an_ordinary_group_dispute_is_indexed_in_full() -> None:
    """The cap does not cut real cases: 500 parties with real-length names keep every term."""
    privacy = Privacy(None)
    chance = random.Random(7)
    surnames, given = (
        "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗",
        "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂",
    )
    names = [
        chance.choice(surnames) + "".join(chance.choice(given) for _ in range(chance.randint(1, 2)))
        for _ in range(500)
    ] + ["阿卜杜热合曼·买买提明"]
    identifiers = [f"3201021990{n:07d}X" for n in range(500)]
    summary = "小区五百名业主与物业公司因停车费上涨发生纠纷，要求公开账目"
    terms = privacy.index_terms(names, identifiers, summary)
    expected = {privacy.term("w:" + normalise(value)) for value in names + identifiers}
    expected |= {privacy.term("g:" + gram) for name in names for gram in grams(normalise(name))}
    expected |= {
        privacy.term("g:" + pair) for pair in pairs(normalise(summary)[:SUMMARY_SEARCH_CHARS])
    }
    assert terms == expected
    assert len(terms) < MAX_CASE_TERMS


def test_the_capped_terms_are_the_same_each_time() -> None:
    """A rebuild indexes exactly the same terms (the cut is made in a fixed order)."""
    parties = bloated_parties(3)
    names = [p["name"] for p in parties]
    ids = [p["id_number"] for p in parties]
    first = Privacy(None).index_terms(names, ids, "纠纷")
    again = Privacy(None).index_terms(list(names), list(ids), "纠纷")
    assert first == again and len(first) == MAX_CASE_TERMS
