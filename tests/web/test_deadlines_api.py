"""`GET /inbox` and `GET /deadlines` (issue 16): what a caseworker's unit must act on, a
supervisor's subtree, the jurisdiction of every read, the reads recorded, and the recorded
warnings and breaches for supervisors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import cst_date
from projections import engine_for, outbox
from tests.web.conftest import HOME, INSIDE, OUTSIDE, Tokens
from workers.sweeps import sweeper_of


def reception(decided_days_ago: int, name: str = "趙某某") -> dict[str, Any]:
    today = cst_date(datetime.now(UTC))
    decided = (today - timedelta(days=decided_days_ago)).isoformat()
    return {
        "person": {
            "name": name,
            "id_number": "320102199203034567",
            "gender": "male",
            "birth_date": "1992-03-03",
            "household_address": "江蘇省南京市玄武區梅園新村街道大悲巷2號",
            "residence_address": "江蘇省南京市玄武區梅園新村街道大悲巷2號",
        },
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": decided,
        "offence_date": "2025-08-01",
        "term_start": decided,
        "term_end": (today + timedelta(days=200)).isoformat(),
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }


def receive(ct: Casetrail, unit: str, decided_days_ago: int) -> str:
    worker = Actor(user_id="u_loader", role="caseworker", unit=unit)
    return ct.service.open_case(
        worker, "correction", unit, "CorrectionSubjectReceived", reception(decided_days_ago)
    ).id


@pytest.fixture
def cases(web_casetrail: Casetrail) -> dict[str, str]:
    """Report-in windows (10 days from the decision): overdue and due soon at home, one
    overdue in a street below, one overdue in a sibling district, one not yet due."""
    ids = {
        "home_overdue": receive(web_casetrail, HOME, 12),
        "home_due_soon": receive(web_casetrail, HOME, 9),
        "home_later": receive(web_casetrail, HOME, 1),
        "inside_overdue": receive(web_casetrail, INSIDE, 13),
        "outside_overdue": receive(web_casetrail, OUTSIDE, 14),
    }
    engine_for(web_casetrail).catch_up()  # no worker runs here
    return ids


def inbox(client: FlaskClient, tokens: Tokens, role: str = "caseworker", **args: Any) -> Any:
    response = client.get("/api/v1/inbox", query_string=args, headers=tokens.headers(role))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_caseworkers_inbox_lists_what_their_unit_must_do_most_urgent_first(
    client: FlaskClient, tokens: Tokens, cases: dict[str, str]
) -> None:
    body = inbox(client, tokens)
    assert [(i["case"], i["kind"], i["state"]) for i in body["items"]] == [
        (cases["home_overdue"], "report_in", "overdue"),
        (cases["home_due_soon"], "report_in", "due_soon"),
    ]
    assert body["counts"] == {"due_soon": 1, "overdue": 1}
    assert body["total"] == 2
    assert "趙某某" not in str(body)  # ids and dates only
    only_overdue = inbox(client, tokens, state="overdue")
    assert [i["case"] for i in only_overdue["items"]] == [cases["home_overdue"]]
    assert only_overdue["counts"] == {"due_soon": 1, "overdue": 1}
    first = inbox(client, tokens, per_page=1)
    assert first["links"]["next"] is not None and first["links"]["prev"] is None
    second = inbox(client, tokens, per_page=1, page=2)
    assert [i["case"] for i in second["items"]] == [cases["home_due_soon"]]
    assert inbox(client, tokens, kind="term_end")["items"] == []


def test_a_supervisors_inbox_covers_their_subtree(
    client: FlaskClient, tokens: Tokens, cases: dict[str, str]
) -> None:
    body = inbox(client, tokens, role="supervisor")
    assert [i["case"] for i in body["items"]] == [
        cases["inside_overdue"],
        cases["home_overdue"],
        cases["home_due_soon"],
    ]
    street = inbox(client, tokens, role="supervisor", unit=INSIDE)
    assert [i["case"] for i in street["items"]] == [cases["inside_overdue"]]


@pytest.mark.parametrize(
    ("role", "args", "status", "code"),
    [
        ("caseworker", {"unit": INSIDE}, 403, "outside_jurisdiction"),
        ("supervisor", {"unit": OUTSIDE}, 403, "outside_jurisdiction"),
        ("auditor", {}, 403, "role_not_permitted"),
        ("admin", {}, 403, "role_not_permitted"),
        ("caseworker", {"kind": "nap"}, 422, None),
        ("caseworker", {"state": "late"}, 422, None),
        ("caseworker", {"per_page": 0}, 422, None),
    ],
)
def test_the_inbox_refuses_what_the_caller_may_not_see_or_ask(
    client: FlaskClient,
    tokens: Tokens,
    cases: dict[str, str],
    role: str,
    args: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    response = client.get("/api/v1/inbox", query_string=args, headers=tokens.headers(role))
    assert response.status_code == status
    if code is not None:
        assert response.get_json()["error"]["code"] == code


def test_the_cases_an_inbox_shows_are_recorded_as_read(
    client: FlaskClient, tokens: Tokens, cases: dict[str, str], web_casetrail: Casetrail
) -> None:
    inbox(client, tokens)
    auditor = Actor(user_id="u_audit", role="auditor", unit="320000")
    reads = web_casetrail.reads.access_log(auditor, case=cases["home_overdue"])
    assert [r["endpoint"] for r in reads] == ["GET /api/v1/inbox"]


def test_supervisors_list_the_recorded_warnings_and_breaches_of_their_subtree(
    client: FlaskClient, tokens: Tokens, cases: dict[str, str], web_casetrail: Casetrail
) -> None:
    report = sweeper_of(web_casetrail).sweep()
    assert (report.warnings, report.breaches) == (1, 3)
    response = client.get("/api/v1/deadlines", headers=tokens.headers("supervisor"))
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert sorted((i["case"], i["state"]) for i in items) == sorted(
        [
            (cases["home_overdue"], "breached"),
            (cases["home_due_soon"], "warning"),
            (cases["inside_overdue"], "breached"),
        ]
    )
    breached = client.get(
        "/api/v1/deadlines",
        query_string={"state": "breached"},
        headers=tokens.headers("supervisor"),
    ).get_json()
    assert {i["case"] for i in breached["items"]} == {
        cases["home_overdue"],
        cases["inside_overdue"],
    }
    audited = client.get("/api/v1/deadlines", headers=tokens.headers("auditor")).get_json()
    assert audited["total"] == 4  # the sibling district's too
    refused = client.get("/api/v1/deadlines", headers=tokens.headers("caseworker"))
    assert refused.status_code == 403
    backwards = client.get(
        "/api/v1/deadlines",
        query_string={"from": "2026-03-02", "to": "2026-03-01"},
        headers=tokens.headers("supervisor"),
    )
    assert backwards.status_code == 422


def test_the_table_of_deadlines_is_served_with_the_rules(
    client: FlaskClient, tokens: Tokens
) -> None:
    response = client.get("/api/v1/event-types", headers=tokens.headers("caseworker"))
    table = response.get_json()["rules"]["deadlines"]
    assert table["report_in"]["lead_days"] == 2
    assert table["monitoring_end"]["must_act"] == "supervisor"
    assert set(table) >= {"dispute_time_limit", "judicial_confirmation", "leave_return"}


def test_admins_list_the_webhook_outbox_by_state(
    web_casetrail: Casetrail, client: FlaskClient, tokens: Tokens, cases: dict[str, str]
) -> None:
    sweeper_of(web_casetrail).sweep()
    outbox.fill(web_casetrail.app, web_casetrail.db, time.time())
    response = client.get(
        "/api/v1/notifications",
        query_string={"state": "pending", "per_page": 2},
        headers=tokens.headers("admin"),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    # Home's and the street's warnings; not the sibling district's (an admin's subtree only).
    assert body["counts"]["pending"] == body["total"] >= 3
    everything = client.get(
        "/api/v1/notifications", query_string={"per_page": 100}, headers=tokens.headers("admin")
    ).get_json()
    listed = {item["case"] for item in everything["items"]}
    assert cases["inside_overdue"] in listed and cases["outside_overdue"] not in listed
    assert len(body["items"]) == 2 and body["links"]["next"]
    assert {i["state"] for i in body["items"]} == {"pending"}
    assert all(i["delivery_id"] and i["next_attempt_at"] for i in body["items"])
    assert "趙某某" not in str(body)
    delivered = client.get(
        "/api/v1/notifications",
        query_string={"state": "delivered"},
        headers=tokens.headers("admin"),
    ).get_json()
    assert delivered["items"] == [] and delivered["total"] == 0
    for role in ("caseworker", "supervisor", "auditor"):
        refused = client.get("/api/v1/notifications", headers=tokens.headers(role))
        assert refused.status_code == 403
    bad = client.get(
        "/api/v1/notifications", query_string={"state": "lost"}, headers=tokens.headers("admin")
    )
    assert bad.status_code == 422
