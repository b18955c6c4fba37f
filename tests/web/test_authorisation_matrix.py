"""Every endpoint × every role × inside/outside the caller's jurisdiction: the status each
cell must answer. The callers sit at 玄武区 (320102); "inside" is a street below it,
"outside" the sibling district 秦淮区 (320104)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import cst_date
from tests.dispute_builders import event_data, registration
from tests.web.conftest import INSIDE, Tokens

OUTSIDE_STREET = "320104002"
CALLERS = ("caseworker", "supervisor", "auditor", "admin", "anonymous")
WHERE = ("inside", "outside")


@dataclass
class World:
    client: FlaskClient
    tokens: Tokens
    cases: dict[str, str]  # where → case id
    units: dict[str, str]  # where → unit code
    serial: itertools.count[int]
    users: dict[str, str]  # where → a caseworker's user id


@dataclass(frozen=True)
class Endpoint:
    name: str
    call: Callable[[World, str, dict[str, str]], Any]
    # caller → (status inside, status outside)
    expected: dict[str, tuple[int, int]]


def day() -> str:
    return cst_date(datetime.now(UTC)).isoformat()


def opened(ct: Casetrail, unit: str) -> str:
    actor = Actor(user_id="u_setup", role="caseworker", unit=unit)
    return ct.service.open_case(actor, "dispute", unit, "DisputeRegistered", registration()).id


def same(status: int) -> tuple[int, int]:
    return (status, status)


WRITERS = {
    "caseworker": (201, 403),
    "supervisor": (201, 403),
    "auditor": same(403),
    "admin": same(403),
    "anonymous": same(401),
}
# On a case outside the caller's reach: 404, as for a case that does not exist (a stranger
# does not learn that the id is taken); 403 for a role that never does it, within reach.
CASE_WRITERS = {
    "caseworker": (201, 404),
    "supervisor": (201, 404),
    "auditor": same(403),
    "admin": (403, 404),
    "anonymous": same(401),
}
CASE_READERS = {
    "caseworker": (200, 404),
    "supervisor": (200, 404),
    "auditor": same(200),
    "admin": (403, 404),
    "anonymous": same(401),
}
# Lists and figures of a unit outside the caller's jurisdiction: 403 (units are public).
UNIT_READERS = {
    "caseworker": (200, 403),
    "supervisor": (200, 403),
    "auditor": same(200),
    "admin": same(403),
    "anonymous": same(401),
}
ADMINS = {
    "caseworker": same(403),
    "supervisor": same(403),
    "auditor": same(403),
    "admin": (201, 403),
    "anonymous": same(401),
}


def everyone(status: int) -> dict[str, tuple[int, int]]:
    return {caller: same(401 if caller == "anonymous" else status) for caller in CALLERS}


def only(statuses: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {
        caller: same(401 if caller == "anonymous" else statuses.get(caller, 403))
        for caller in CALLERS
    }


def post_event(event_type: str) -> Callable[[World, str, dict[str, str]], Any]:
    def call(w: World, where: str, headers: dict[str, str]) -> Any:
        body = {"type": event_type, "data": event_data(event_type, cst_date(datetime.now(UTC)))}
        return w.client.post(f"/api/v1/cases/{w.cases[where]}/events", json=body, headers=headers)

    return call


def open_case(w: World, where: str, headers: dict[str, str]) -> Any:
    body = {
        "kind": "dispute",
        "unit": w.units[where],
        "type": "DisputeRegistered",
        "data": registration(),
    }
    return w.client.post("/api/v1/cases", json=body, headers=headers)


def new_unit(w: World, where: str, headers: dict[str, str]) -> Any:
    parent = w.units[where]
    code = f"{parent}{next(w.serial):03d}"
    return w.client.post("/api/v1/units", json={"code": code, "name": "新社区"}, headers=headers)


def manage_user(
    method: str, action: str, body: Any = None
) -> Callable[[World, str, dict[str, str]], Any]:
    def call(w: World, where: str, headers: dict[str, str]) -> Any:
        path = f"/api/v1/users/{w.users[where]}{action}"
        return w.client.open(path, method=method, json=body, headers=headers)

    return call


# A user outside the admin's subtree is not found (its id tells nothing).
MANAGERS = {**ADMINS, "admin": (200, 404)}


def new_user(w: World, where: str, headers: dict[str, str]) -> Any:
    body = {"name": "新用户", "role": "caseworker", "unit": w.units[where]}
    return w.client.post("/api/v1/users", json=body, headers=headers)


ENDPOINTS = [
    Endpoint("POST /cases", open_case, WRITERS),
    Endpoint("POST /cases/{id}/events", post_event("HearingHeld"), CASE_WRITERS),
    Endpoint(
        "POST /cases/{id}/events (supervisors only)",
        post_event("SupervisionOrdered"),
        {**CASE_WRITERS, "caseworker": (403, 404)},
    ),
    Endpoint(
        "GET /cases/{id}",
        lambda w, where, h: w.client.get(f"/api/v1/cases/{w.cases[where]}", headers=h),
        CASE_READERS,
    ),
    Endpoint(
        "GET /cases/{id}?as_of_version=1",
        lambda w, where, h: w.client.get(
            f"/api/v1/cases/{w.cases[where]}?as_of_version=1", headers=h
        ),
        CASE_READERS,
    ),
    Endpoint(
        "GET /cases/{id}/history",
        lambda w, where, h: w.client.get(f"/api/v1/cases/{w.cases[where]}/history", headers=h),
        CASE_READERS,
    ),
    Endpoint(
        "GET /cases",
        lambda w, where, h: w.client.get(f"/api/v1/cases?unit={w.units[where]}", headers=h),
        UNIT_READERS,
    ),
    Endpoint(
        "GET /indicators",
        lambda w, where, h: w.client.get(
            f"/api/v1/indicators?kind=dispute&unit={w.units[where]}", headers=h
        ),
        UNIT_READERS,
    ),
    Endpoint(
        "GET /people",
        lambda w, where, h: w.client.get("/api/v1/people?name=王秀英", headers=h),
        only({"caseworker": 200, "supervisor": 200, "auditor": 200}),
    ),
    Endpoint(
        "GET /projections",
        lambda w, where, h: w.client.get("/api/v1/projections", headers=h),
        only({"supervisor": 200, "auditor": 200, "admin": 200}),
    ),
    Endpoint(
        "GET /audit/events",
        lambda w, where, h: w.client.get("/api/v1/audit/events", headers=h),
        only({"auditor": 200}),
    ),
    Endpoint(
        "GET /event-types",
        lambda w, where, h: w.client.get("/api/v1/event-types", headers=h),
        everyone(200),
    ),
    Endpoint(
        "GET /units", lambda w, where, h: w.client.get("/api/v1/units", headers=h), everyone(200)
    ),
    Endpoint("POST /units", new_unit, ADMINS),
    Endpoint("POST /users", new_user, ADMINS),
    Endpoint(
        "GET /users",
        lambda w, where, h: w.client.get("/api/v1/users", headers=h),
        only({"admin": 200}),
    ),
    Endpoint("PATCH /users/{id}", manage_user("PATCH", "", {"role": "supervisor"}), MANAGERS),
    Endpoint("POST /users/{id}/disable", manage_user("POST", "/disable"), MANAGERS),
    Endpoint("POST /users/{id}/enable", manage_user("POST", "/enable"), MANAGERS),
    Endpoint(
        "POST /users/{id}/token",
        manage_user("POST", "/token"),
        {**ADMINS, "admin": (201, 404)},
    ),
    Endpoint(
        "GET /healthz",
        lambda w, where, h: w.client.get("/api/v1/healthz", headers=h),
        {caller: same(200) for caller in CALLERS},
    ),
    Endpoint(
        "GET /openapi.json",
        lambda w, where, h: w.client.get("/openapi.json", headers=h),
        {caller: same(200) for caller in CALLERS},
    ),
]


@pytest.fixture
def world(client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail) -> World:
    cases = {
        "inside": opened(web_casetrail, INSIDE),
        "outside": opened(web_casetrail, OUTSIDE_STREET),
    }
    units = {"inside": INSIDE, "outside": OUTSIDE_STREET}
    users = {
        where: web_casetrail.directory.create_user("被管理", "caseworker", unit)[0].id
        for where, unit in units.items()
    }
    return World(client, tokens, cases, units, itertools.count(1), users)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_each_role_gets_the_status_its_jurisdiction_allows(
    world: World, endpoint: Endpoint
) -> None:
    wrong: list[str] = []
    for caller, where in itertools.product(CALLERS, WHERE):
        headers = {} if caller == "anonymous" else world.tokens.headers(caller)
        response = endpoint.call(world, where, headers)
        want = endpoint.expected[caller][WHERE.index(where)]
        if response.status_code != want:
            wrong.append(
                f"{caller} {where}: {response.status_code} (want {want}) {response.text[:200]}"
            )
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert set(error) == {"code", "message", "details"}
        if response.status_code in (403, 404) and where == "outside":
            # A refusal reveals nothing of the case: not its unit, not its data.
            assert OUTSIDE_STREET not in response.text and "王秀英" not in response.text
    assert not wrong, "\n".join(wrong)


def test_a_caller_without_a_valid_token_is_refused_everywhere_but_the_public_endpoints(
    client: FlaskClient,
) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        assert client.get("/api/v1/event-types", headers=headers).status_code == 401
    for public in (
        "/healthz",
        "/api/v1/healthz",
        "/openapi.json",
        "/api/v1/openapi.json",
        "/api/v1/docs",
    ):
        assert client.get(public).status_code == 200, public
