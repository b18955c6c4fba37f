"""Reads that write (issues 14 and 21), over HTTP against the running service: one access
record per request naming every case shown, no conflict between concurrent readers of
the same list, repeated reads coalesced, searches recorded, the log paged by cursor."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from projections import engine_for
from tests.dispute_builders import APPLICANT, registration
from tests.web.conftest import INSIDE, Service, Tokens, check

CASES_ROUTE = "GET /api/v1/cases"


def serve(settings: Settings, tmp_path: Path, **env: str) -> Service:
    service = Service(settings, tmp_path / "gunicorn.log")
    service.env.update(CASETRAIL_RATE_LIMIT="", **env)
    service.start()
    return service


@pytest.fixture
def uncoalesced(settings: Settings, tokens: Tokens, tmp_path: Path) -> Iterator[Service]:
    service = serve(settings, tmp_path, CASETRAIL_ACCESS_COALESCE_SECONDS="0")
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def coalescing(settings: Settings, tokens: Tokens, tmp_path: Path) -> Iterator[Service]:
    service = serve(settings, tmp_path)  # the default window, 60 s
    try:
        yield service
    finally:
        service.stop()


def open_cases(service: Service, tokens: Tokens, ct: Casetrail, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered"}
        body["data"] = registration()
        response = requests.post(
            f"{service.url}/cases", json=body, headers=tokens.headers("caseworker")
        )
        ids.append(check(response, 201)["id"])
    engine_for(ct).catch_up()
    return ids


def access_items(service: Service, tokens: Tokens, **params: Any) -> list[dict[str, Any]]:
    """Every item of the access log, page by page through the cursor."""
    items: list[dict[str, Any]] = []
    after = None
    while True:
        query = {**params, **({"after": after} if after else {})}
        page = check(
            requests.get(
                f"{service.url}/audit/access", params=query, headers=tokens.headers("auditor")
            ),
            200,
        )
        items += page["items"]
        after = page["next"]
        assert (page["links"]["next"] is None) == (after is None)
        if after is None:
            return items


def list_concurrently(service: Service, tokens: Tokens, requests_each: int) -> Counter[int]:
    """8 supervisors' clients (one token) reading the same page; the statuses."""

    def read(_: int) -> list[int]:
        with requests.Session() as session:
            headers = tokens.headers("supervisor")
            return [
                session.get(
                    f"{service.url}/cases", params={"per_page": 20}, headers=headers
                ).status_code
                for _ in range(requests_each)
            ]

    with ThreadPoolExecutor(8) as pool:
        return Counter(status for statuses in pool.map(read, range(8)) for status in statuses)


def test_concurrent_list_reads_of_the_same_cases_each_append_one_record_without_errors(
    uncoalesced: Service, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    ids = open_cases(uncoalesced, tokens, web_casetrail, 5)
    head = web_casetrail.reads.head_position()
    statuses = list_concurrently(uncoalesced, tokens, 10)
    assert statuses == Counter({200: 80})
    # One event a request, each naming the 5 cases the page showed.
    assert web_casetrail.reads.head_position() == head + 80
    listed = [i for i in access_items(uncoalesced, tokens) if i["endpoint"] == CASES_ROUTE]
    per_record = Counter(item["position"] for item in listed)
    assert len(per_record) == 80 and set(per_record.values()) == {5}
    assert {item["case"] for item in listed} == set(ids)
    assert web_casetrail.audit.verify().ok


def test_repeated_reads_by_one_reader_within_the_window_are_one_record(
    coalescing: Service, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    ids = open_cases(coalescing, tokens, web_casetrail, 3)
    head = web_casetrail.reads.head_position()
    assert list_concurrently(coalescing, tokens, 5) == Counter({200: 40})
    # Each case is recorded as read by the supervisor through the list (racing requests
    # of the first moment may each record it; at most one record a request).
    grew = web_casetrail.reads.head_position() - head
    assert 1 <= grew <= 8
    for case_id in ids:
        seen = access_items(coalescing, tokens, case=case_id)
        assert [(i["role"], i["endpoint"]) for i in seen][:1] == [("supervisor", CASES_ROUTE)]
    # Another endpoint is another record.
    response = requests.get(
        f"{coalescing.url}/cases/{ids[0]}", headers=tokens.headers("supervisor")
    )
    check(response, 200)
    seen = access_items(coalescing, tokens, case=ids[0])
    assert seen[-1]["endpoint"] == "GET /api/v1/cases/<string:case_id>"


def test_a_search_is_recorded_with_its_keyed_hash_and_total_even_on_an_empty_page(
    uncoalesced: Service, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    open_cases(uncoalesced, tokens, web_casetrail, 1)
    id_number = str(APPLICANT["id_number"])
    params = {"q": id_number, "page": 2}
    page = check(
        requests.get(
            f"{uncoalesced.url}/cases", params=params, headers=tokens.headers("supervisor")
        ),
        200,
    )
    assert page["total"] == 1 and page["items"] == []
    [record] = [i for i in access_items(uncoalesced, tokens) if "search" in i]
    assert record["case"] is None and record["search"]["total"] == 1
    assert isinstance(record["search"]["query"], int)
    text = requests.get(f"{uncoalesced.url}/audit/access", headers=tokens.headers("auditor")).text
    assert id_number not in text  # the keyed hash, never the number


def test_the_access_log_pages_with_a_cursor_and_a_refusal_by_role_says_so(
    uncoalesced: Service, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    ids = open_cases(uncoalesced, tokens, web_casetrail, 3)
    for _ in range(4):
        check(requests.get(f"{uncoalesced.url}/cases", headers=tokens.headers("supervisor")), 200)
    refused = requests.get(f"{uncoalesced.url}/cases/{ids[0]}", headers=tokens.headers("admin"))
    assert refused.status_code == 403
    url = f"{uncoalesced.url}/audit/access"
    first = check(requests.get(url, params={"limit": 5}, headers=tokens.headers("auditor")), 200)
    assert len(first["items"]) == 5 and first["next"]
    assert f"after={first['next']}" in requests.utils.unquote(first["links"]["next"])
    everything = access_items(uncoalesced, tokens, limit=5)
    assert everything == access_items(uncoalesced, tokens)
    assert everything[:5] == first["items"]
    assert len(everything) == 4 * 3 + 1
    assert (everything[-1]["granted"], everything[-1]["refusal"]) == (False, "role_cannot_read")
    for bad in ({"after": "nonsense"}, {"limit": 0}, {"limit": 1001}):
        response = requests.get(url, params=bad, headers=tokens.headers("auditor"))
        assert response.status_code == 422, bad
