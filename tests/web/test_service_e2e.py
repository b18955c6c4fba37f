"""End to end: the real service (gunicorn) in a subprocess, spoken to over HTTP."""

from __future__ import annotations

import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from domain.clock import cst_date
from domain.kinds import KINDS
from tests.dispute_builders import event_data, registration
from tests.web.conftest import INSIDE, OUTSIDE, Service, Tokens, check


@pytest.fixture
def service(served: Service) -> Service:
    return served


@pytest.fixture
def tokens(served_tokens: Tokens) -> Tokens:
    return served_tokens


def today() -> Any:
    return cst_date(datetime.now(UTC))


def register(service: Service, tokens: Tokens, unit: str = INSIDE, **headers: str) -> Any:
    body = {"kind": "dispute", "unit": unit, "type": "DisputeRegistered", "data": registration()}
    return requests.post(
        f"{service.url}/cases", json=body, headers=tokens.headers("caseworker", **headers)
    )


def append(
    service: Service,
    tokens: Tokens,
    case_id: str,
    event_type: str,
    role: str = "caseworker",
    **extra: Any,
) -> requests.Response:
    headers = extra.pop("headers", {})
    data = extra.pop("data") if "data" in extra else event_data(event_type, today())
    body = {"type": event_type, "data": data, **extra}
    return requests.post(
        f"{service.url}/cases/{case_id}/events", json=body, headers=tokens.headers(role, **headers)
    )


def case_events(service: Service, tokens: Tokens) -> int:
    """How many case events the global log holds (reads add access records of their own)."""
    count, after = 0, 0
    while True:
        page = check(
            requests.get(
                f"{service.url}/audit/events",
                params={"after": after, "limit": 1000},
                headers=tokens.headers("auditor"),
            ),
            200,
        )
        if not page["events"]:
            return count
        count += sum(1 for event in page["events"] if event["kind"] in KINDS)
        after = page["next_after"]


def test_a_dispute_lives_from_registration_to_follow_up(service: Service, tokens: Tokens) -> None:
    opened = check(register(service, tokens), 201)
    assert opened["kind"] == "dispute" and opened["version"] == 1 and opened["position"] >= 1
    case_id = opened["id"]
    steps = [
        ("DisputeTriaged", "caseworker"),
        ("DisputeAssigned", "caseworker"),
        ("SupervisionOrdered", "supervisor"),
        ("MediationSessionHeld", "caseworker"),
        ("AgreementReached", "caseworker"),
        ("DisputeClosed", "caseworker"),
        ("FollowUpVisited", "caseworker"),
    ]
    for version, (event_type, role) in enumerate(steps, start=2):
        answer = check(
            append(service, tokens, case_id, event_type, role, expected_version=version - 1), 201
        )
        assert answer["version"] == version and answer["event"]["type"] == event_type
        assert answer["event"]["actor_role"] == role and answer["event"]["hash"]

    state = check(
        requests.get(f"{service.url}/cases/{case_id}", headers=tokens.headers("supervisor")), 200
    )
    assert (
        state["status"] == "closed"
        and state["version"] == 8
        and state["outcome"] == ("agreement_reached")
    )
    assert state["unit"] == INSIDE and state["on_time"] is True

    then = check(
        requests.get(
            f"{service.url}/cases/{case_id}",
            params={"as_of_version": 3},
            headers=tokens.headers("auditor"),
        ),
        200,
    )
    assert then["status"] == "assigned" and then["version"] == 3

    history = check(
        requests.get(f"{service.url}/cases/{case_id}/history", headers=tokens.headers("auditor")),
        200,
    )["events"]
    assert [event["type"] for event in history] == [
        "DisputeRegistered",
        *(event_type for event_type, _ in steps),
    ]
    assert all(
        later["prev_hash"] == earlier["hash"] for earlier, later in itertools.pairwise(history)
    )

    after = opened["position"] - 1
    feed = check(
        requests.get(
            f"{service.url}/audit/events",
            params={"after": after, "limit": 3},
            headers=tokens.headers("auditor"),
        ),
        200,
    )
    assert [(event["id"], event["version"]) for event in feed["events"]] == [
        (case_id, 1),
        (case_id, 2),
        (case_id, 3),
    ]
    last = feed["events"][-1]["position"]
    assert feed["next_after"] == last and feed["links"]["next"].endswith(f"after={last}&limit=3")


def error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    body = check(response, status)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return dict(body["error"])


def test_every_error_of_the_contract_has_its_status_and_shape_and_appends_nothing(
    service: Service, tokens: Tokens
) -> None:
    case_id = check(register(service, tokens), 201)["id"]
    before = case_events(service, tokens)
    url = f"{service.url}/cases/{case_id}/events"
    worker = tokens.headers("caseworker")

    # 400: malformed JSON.
    bad_json = requests.post(
        url, data="{not json", headers={**worker, "Content-Type": "application/json"}
    )
    error(bad_json, 400, "malformed_request")
    # 401: no token, a bad token.
    error(requests.post(url, json={"type": "DisputeTriaged", "data": {}}), 401, "unauthorized")
    bad_token = {"Authorization": "Bearer ct_not-a-token"}
    error(requests.get(f"{service.url}/cases/{case_id}", headers=bad_token), 401, "unauthorized")
    # 403: a role that cannot write; a supervisor-only event; a unit outside the jurisdiction.
    error(append(service, tokens, case_id, "DisputeTriaged", "auditor"), 403, "role_cannot_write")
    error(append(service, tokens, case_id, "SupervisionOrdered"), 403, "supervisor_only")
    # 404 for a case outside the caller's reach: the same answer as for an unknown id.
    outsider = {"Authorization": f"Bearer {tokens.outside['caseworker']}"}
    denied = error(
        requests.post(
            url,
            json={"type": "DisputeTriaged", "data": event_data("DisputeTriaged", today())},
            headers=outsider,
        ),
        404,
        "case_not_found",
    )
    assert INSIDE not in str(denied)
    unknown = str(uuid.uuid4())
    stranger = requests.post(
        f"{service.url}/cases/{unknown}/events",
        json={"type": "DisputeTriaged", "data": event_data("DisputeTriaged", today())},
        headers=outsider,
    ).json()
    assert str(denied).replace(case_id, unknown) == str(stranger["error"])
    error(
        requests.get(f"{service.url}/cases/{case_id}", headers=outsider),
        404,
        "case_not_found",
    )
    error(register(service, tokens, unit=OUTSIDE), 403, "outside_jurisdiction")
    # 404: an unknown case, an id that is no case id at all.
    error(append(service, tokens, str(uuid.uuid4()), "DisputeTriaged"), 404, "case_not_found")
    error(requests.get(f"{service.url}/cases/nope", headers=worker), 404, "case_not_found")
    # 409: expected_version behind the stream.
    conflict = error(
        append(service, tokens, case_id, "DisputeTriaged", expected_version=5),
        409,
        "version_conflict",
    )
    assert conflict["details"]["current_version"] == 1
    # 413: a body too large.
    huge = {"type": "DisputeTriaged", "data": {"notes": "x" * 400_000}}
    error(requests.post(url, json=huge, headers=worker), 413, "body_too_large")
    # 422: the request's schema (each field named), the event data's schema, a domain rule.
    schema = error(
        requests.post(
            url, json={"data": {}, "surplus": 1, "expected_version": "two"}, headers=worker
        ),
        422,
        "invalid_data",
    )
    assert set(schema["details"]) == {"type", "surplus", "expected_version"}
    wrong = requests.post(
        url, json={"type": "DisputeTriaged", "data": {"complexity": "huge"}}, headers=worker
    )
    assert set(error(wrong, 422, "invalid_data")["details"]) == {"complexity", "responsible_unit"}
    long_summary = registration(summary="x" * 5000)
    too_long = requests.post(
        f"{service.url}/cases",
        json={"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": long_summary},
        headers=worker,
    )
    assert "summary" in error(too_long, 422, "invalid_data")["details"]
    bad_date = requests.post(
        url,
        json={"type": "HearingHeld", "data": {"held_on": "2026-02-30", "notes": "n"}},
        headers=worker,
    )
    assert "held_on" in error(bad_date, 422, "invalid_data")["details"]
    error(append(service, tokens, case_id, "AgreementReached"), 422, "not_allowed_in_status")
    error(append(service, tokens, case_id, "NoSuchEvent", data={}), 422, "unknown_event_type")
    one_sided = registration(parties=[dict(p, role="applicant") for p in registration()["parties"]])
    rule = requests.post(
        f"{service.url}/cases",
        json={"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": one_sided},
        headers=worker,
    )
    error(rule, 422, "parties_on_both_sides")
    # 422: an Idempotency-Key used before with another body.
    check(append(service, tokens, case_id, "HearingHeld", headers={"Idempotency-Key": "k-1"}), 201)
    before += 1
    reused = append(
        service, tokens, case_id, "PublicNoticePosted", headers={"Idempotency-Key": "k-1"}
    )
    error(reused, 422, "idempotency_key_reused")
    # Unknown addresses and methods answer in the same shape.
    error(requests.get(f"{service.url}/no-such-thing", headers=worker), 404, "not_found")
    error(requests.delete(f"{service.url}/cases", headers=worker), 405, "method_not_allowed")

    assert case_events(service, tokens) == before, "a refused command appended something"
    assert (
        check(requests.get(f"{service.url}/cases/{case_id}", headers=worker), 200)["version"] == 2
    )


def test_a_retried_command_with_its_idempotency_key_appends_once_and_answers_alike(
    service: Service, tokens: Tokens
) -> None:
    key = {"Idempotency-Key": f"register-{uuid.uuid4()}"}
    first = register(service, tokens, **key)
    again = register(service, tokens, **key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    case_id = first.json()["id"]
    before = case_events(service, tokens)

    # Retries racing each other (a client timing out and retrying) still append once.
    triage = {"Idempotency-Key": f"triage-{uuid.uuid4()}"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(
                lambda _: append(service, tokens, case_id, "DisputeTriaged", headers=triage),
                range(6),
            )
        )
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["position"] for answer in answers}) == 1
    assert case_events(service, tokens) == before + 1
    history = check(
        requests.get(f"{service.url}/cases/{case_id}/history", headers=tokens.headers("auditor")),
        200,
    )["events"]
    assert [event["type"] for event in history] == ["DisputeRegistered", "DisputeTriaged"]


def test_concurrent_appends_at_one_expected_version_let_exactly_one_through(
    service: Service, tokens: Tokens
) -> None:
    case_id = check(register(service, tokens), 201)["id"]
    barrier = threading.Barrier(8)

    def race(_: int) -> requests.Response:
        barrier.wait()
        return append(service, tokens, case_id, "HearingHeld", expected_version=1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(race, range(8)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 7, [answer.text for answer in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"]["details"]["current_version"] == 2
    state = check(
        requests.get(f"{service.url}/cases/{case_id}", headers=tokens.headers("caseworker")), 200
    )
    assert state["version"] == 2 and state["hearings"] == 1
