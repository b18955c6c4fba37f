"""Search that fits the users, over the real service: on main a query in simplified
characters (欧阳) did not find a name entered in traditional ones (歐陽), nor the other way
round, for names and summaries alike; now both are indexed and queried in one form."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from casetrail.bootstrap import Casetrail
from projections import engine_for
from tests.dispute_builders import RESPONDENT, registration
from tests.web.conftest import INSIDE, Service, Tokens, check


@pytest.fixture
def service(served: Service) -> Service:
    return served


@pytest.fixture
def tokens(served_tokens: Tokens) -> Tokens:
    return served_tokens


@pytest.fixture
def casetrail(served_casetrail: Casetrail) -> Casetrail:
    return served_casetrail


def register(service: Service, tokens: Tokens, name: str, summary: str) -> Any:
    parties = [{"name": name, "role": "applicant"}, dict(RESPONDENT)]
    body = {
        "kind": "dispute",
        "unit": INSIDE,
        "type": "DisputeRegistered",
        "data": registration(parties=parties, summary=summary),
    }
    return check(
        requests.post(f"{service.url}/cases", json=body, headers=tokens.headers("caseworker")),
        201,
    )


def found(service: Service, tokens: Tokens, q: str, position: int) -> set[str]:
    answer = check(
        requests.get(
            f"{service.url}/cases",
            params={"q": q, "min_position": position, "per_page": 100},
            headers=tokens.headers("supervisor"),
        ),
        200,
    )
    return {item["id"] for item in answer["items"]}


def test_simplified_and_traditional_queries_find_names_and_summaries_in_either_script(
    service: Service, tokens: Tokens, casetrail: Casetrail
) -> None:
    traditional = register(service, tokens, "歐陽國華", "樓上漏水損壞廚房櫥櫃")
    simplified = register(service, tokens, "欧阳明", "楼上漏水损坏厨房橱柜")
    other = register(service, tokens, "司馬光", "鄰里噪音")
    position = max(traditional["position"], simplified["position"], other["position"])
    engine_for(casetrail).catch_up()  # no worker runs here
    both = {traditional["id"], simplified["id"]}
    for q in ("欧阳", "歐陽", "欧陽"):  # simplified, traditional, and a mix
        assert found(service, tokens, q, position) == both, q
    assert found(service, tokens, "欧阳国华", position) == {traditional["id"]}
    for q in ("损坏厨房", "損壞廚房"):
        assert found(service, tokens, q, position) == both, q
    assert found(service, tokens, "司马", position) == {other["id"]}
    assert found(service, tokens, "邻里", position) == {other["id"]}
