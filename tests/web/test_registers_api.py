"""The registers over HTTP: admins keep their own subtree's committees, mediators, bases
and staff; a placement names a registered base (a refusal in the caller's language); the
bases' occupancy against capacity; the OpenAPI document lists every new endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail
from projections import engine_for
from tests.web.conftest import HOME, INSIDE, OUTSIDE, Tokens


def check(response: Any, status: int) -> Any:
    """The JSON body, after asserting the status (showing the body when it differs)."""
    assert response.status_code == status, (response.status_code, response.text)
    return response.get_json()


def days_ago(n: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=8) - timedelta(days=n)).date().isoformat()


def base(unit: str = INSIDE, **changes: Any) -> dict[str, Any]:
    return {"kind": "base", "unit": unit, "name": "梅园过渡性安置基地", "capacity": 2, **changes}


def test_an_admin_keeps_the_registers_of_their_subtree_over_http(
    client: FlaskClient, tokens: Tokens
) -> None:
    admin = tokens.headers("admin")
    added = check(client.post("/api/v1/registers", json=base(), headers=admin), 201)
    assert (added["kind"], added["unit"], added["capacity"], added["active"]) == (
        "base",
        INSIDE,
        2,
        True,
    )
    outside = client.post("/api/v1/registers", json=base(OUTSIDE), headers=admin)
    assert check(outside, 403)["error"]["code"] == "outside_jurisdiction"
    worker = client.post("/api/v1/registers", json=base(), headers=tokens.headers("caseworker"))
    assert check(worker, 403)["error"]["code"] == "role_not_permitted"
    no_capacity = client.post(
        "/api/v1/registers", json={"kind": "base", "unit": INSIDE, "name": "x"}, headers=admin
    )
    assert check(no_capacity, 422)["error"]["details"]["capacity"]
    staff = check(
        client.post(
            "/api/v1/registers",
            json={"kind": "correction_staff", "unit": HOME, "name": "刘警官", "post": "officer"},
            headers=admin,
        ),
        201,
    )
    assert staff["post"] == "officer"

    path = f"/api/v1/registers/{added['id']}"
    changed = check(client.patch(path, json={"capacity": 5}, headers=admin), 200)
    assert changed["capacity"] == 5
    assert check(client.patch(path, json={}, headers=admin), 422)
    listed = check(
        client.get("/api/v1/registers?kind=base", headers=tokens.headers("caseworker")), 200
    )
    assert [item["id"] for item in listed["items"]] == [added["id"]]
    # A caseworker of another district does not see it, even by its id.
    other = {"Authorization": f"Bearer {tokens.outside['caseworker']}"}
    assert check(client.get("/api/v1/registers", headers=other), 200)["total"] == 0
    assert (
        check(client.get(path, headers=other), 404)["error"]["code"] == "register_entry_not_found"
    )

    retired = check(client.post(f"{path}/retire", json={"reason": "场地到期"}, headers=admin), 200)
    assert retired["active"] is False
    active = check(client.get("/api/v1/registers?active=true", headers=admin), 200)
    assert [item["id"] for item in active["items"]] == [staff["id"]]


def test_a_placement_names_a_registered_base_and_the_occupancy_list_counts_it(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    worker = tokens.headers("caseworker")
    notice = {
        "person": {
            "name": "钱某某",
            "id_number": "320102198505052345",
            "gender": "male",
            "birth_date": "1985-05-05",
            "household_address": "江苏省南京市玄武区梅园新村街道大悲巷1号",
            "residence_address": "江苏省南京市玄武区梅园新村街道大悲巷1号",
        },
        "release_type": "sentence_completed",
        "institution": "江苏省某监狱",
        "expected_release_date": days_ago(-40),
        "offence": "盗窃罪",
    }
    opened = check(
        client.post(
            "/api/v1/cases",
            json={
                "kind": "resettlement",
                "unit": INSIDE,
                "type": "ReleaseNotified",
                "data": notice,
            },
            headers=worker,
        ),
        201,
    )
    events = f"/api/v1/cases/{opened['id']}/events"
    check(client.post(events, json={"type": "PersonReleased", "data": {"released_on": days_ago(1)}}, headers=worker), 201)  # fmt: skip
    check(client.post(events, json={"type": "PersonReceived", "data": {"received_on": days_ago(0), "method": "escorted"}}, headers=worker), 201)  # fmt: skip
    placed = {
        "type": "PersonPlaced",
        "data": {"placement": "transitional_base", "placed_on": days_ago(0), "base_id": "NJ-MY-1"},
    }
    unknown = client.post(events, json=placed, headers={**worker, "Accept-Language": "zh-CN"})
    error = check(unknown, 422)["error"]
    assert error["code"] == "unknown_base"
    assert "过渡性安置基地未登记" in error["message"]
    check(
        client.post(
            "/api/v1/registers",
            json=base(id="NJ-MY-1", capacity=1),
            headers=tokens.headers("admin"),
        ),
        201,
    )
    position = check(client.post(events, json=placed, headers=worker), 201)["position"]

    engine_for(web_casetrail).catch_up()
    supervisor = tokens.headers("supervisor")
    listed = check(
        client.get(f"/api/v1/bases/occupancy?min_position={position}", headers=supervisor), 200
    )
    assert listed["bases"] == [
        {
            "base_id": "NJ-MY-1",
            "name": "梅园过渡性安置基地",
            "unit": INSIDE,
            "registered": True,
            "active": True,
            "capacity": 1,
            "occupancy": 1,
            "free": 0,
            "over_capacity": False,
        }
    ]
    assert listed["totals"]["occupancy"] == 1
    other = {"Authorization": f"Bearer {tokens.outside['supervisor']}"}
    assert check(client.get("/api/v1/bases/occupancy", headers=other), 200)["bases"] == []
    refused = client.get(f"/api/v1/bases/occupancy?unit={OUTSIDE}", headers=supervisor)
    assert check(refused, 403)["error"]["code"] == "outside_jurisdiction"


def test_the_openapi_document_lists_the_registers_and_the_occupancy(
    client: FlaskClient, tokens: Tokens
) -> None:
    paths = check(client.get("/api/v1/openapi.json"), 200)["paths"]
    assert set(paths["/api/v1/registers"]) >= {"get", "post"}
    assert set(paths["/api/v1/registers/{entry_id}"]) >= {"get", "patch"}
    assert "post" in paths["/api/v1/registers/{entry_id}/retire"]
    assert "get" in paths["/api/v1/bases/occupancy"]


def test_the_event_catalogue_names_the_fields_that_name_register_entries(
    client: FlaskClient, tokens: Tokens
) -> None:
    kinds = check(client.get("/api/v1/event-types", headers=tokens.headers("caseworker")), 200)
    kinds = kinds["kinds"]
    placed = kinds["resettlement"]["events"]["PersonPlaced"]["register_fields"]
    assert placed == {"base_id": {"kind": "base", "post": None}}
    team = kinds["correction"]["events"]["CorrectionTeamFormed"]["register_fields"]
    assert team["officer.staff_id"] == {"kind": "correction_staff", "post": "officer"}
    assert set(kinds["dispute"]["events"]["DisputeAssigned"]["register_fields"]) == {
        "committee_id",
        "mediator_ids",
    }
