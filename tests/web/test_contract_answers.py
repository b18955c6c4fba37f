"""Answers that are the contract, over HTTP against the real service (issues 14, 18, 21):
bad input is 400/422 and changes nothing, whatever Python's JSON would make of it; what
gunicorn refuses is in the error shape too; a retry is the same command however it spells
the case id; answers are not cached nor sniffed."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests

from domain.clock import SystemClock, cst_date
from tests.dispute_builders import registration
from tests.web.conftest import INSIDE, Service, Tokens, check

# Sessions fall between the registration (the service's today, in China) and today.
TODAY = cst_date(SystemClock().now()).isoformat()

HEARING = {"held_on": TODAY, "notes": "Both parties came."}
DEEP = "[" * 1500 + "]" * 1500


@pytest.fixture
def service(served: Service) -> Service:
    return served


@pytest.fixture
def tokens(served_tokens: Tokens) -> Tokens:
    return served_tokens


def open_case(service: Service, tokens: Tokens) -> str:
    body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": registration()}
    answer = requests.post(f"{service.url}/cases", json=body, headers=tokens.headers("caseworker"))
    return str(check(answer, 201)["id"])


def versions(service: Service, tokens: Tokens, case_id: str) -> int:
    history = requests.get(
        f"{service.url}/cases/{case_id}/history", headers=tokens.headers("auditor")
    )
    return len(check(history, 200)["events"])


def send_raw(service: Service, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request as bytes on its own connection; the status, headers and body."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            lengths = [
                line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            ]
            if lengths and len(body) >= int(lengths[0].split(b":")[1]):
                break
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def raw_post(service: Service, tokens: Tokens, path: str, body: bytes, **headers: str) -> bytes:
    head = [
        f"POST /api/v1{path} HTTP/1.1",
        "Host: casetrail",
        f"Authorization: Bearer {tokens.by_role['caseworker']}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body


BODIES = {
    "nested 1,500 deep in the data": '{"type":"HearingHeld","data":{"notes":' + DEEP + "}}",
    "nested 1,500 deep, the whole body": DEEP,
    "nested 40 deep": '{"type":"HearingHeld","data":{"notes":' + "[" * 40 + "]" * 40 + "}}",
    "a lone surrogate in a data string": '{"type":"HearingHeld","data":{"held_on":"2026-03-02",'
    '"notes":"\\ud800"}}',
    "a lone surrogate in a top-level field": '{"type":"HearingHeld","reason":"\\udfff x",'
    '"data":{"held_on":"2026-03-02","notes":"n"}}',
    "a lone surrogate in a key": '{"type":"HearingHeld","data":{"\\ud800":1}}',
    "a 5,000-digit integer": '{"type":"HearingHeld","expected_version":' + "9" * 5000 + ","
    '"data":{"held_on":"2026-03-02","notes":"n"}}',
    "a 5,000-digit integer in the data": '{"type":"HearingHeld","data":{"held_on":"2026-03-02",'
    '"notes":"n","n":-' + "1" * 5000 + "}}",
    "an integer beyond 64 bits": '{"type":"HearingHeld","data":{"held_on":"2026-03-02",'
    '"notes":"n","n":' + str(2**64) + "}}",
    "an infinite number": '{"type":"HearingHeld","data":{"held_on":"2026-03-02","notes":1e999}}',
    "NaN": '{"type":"HearingHeld","data":{"held_on":"2026-03-02","notes":NaN}}',
    "not UTF-8": b'{"type":"HearingHeld","data":{"notes":"\xff\xfe"}}',
}


@pytest.mark.parametrize("body", BODIES.values(), ids=list(BODIES))
def test_a_body_python_cannot_carry_is_refused_400_and_changes_nothing(
    service: Service, tokens: Tokens, body: str | bytes
) -> None:
    case_id = open_case(service, tokens)
    raw = body.encode() if isinstance(body, str) else body
    status, headers, answer = send_raw(
        service, raw_post(service, tokens, f"/cases/{case_id}/events", raw)
    )
    assert status == 400, answer[:500]
    assert headers["content-type"] == "application/json"
    assert b'"code":"malformed_request"' in answer
    assert versions(service, tokens, case_id) == 1


def test_a_lone_surrogate_in_an_opening_or_an_administration_body_is_refused(
    service: Service, tokens: Tokens
) -> None:
    opening = (
        '{"kind":"dispute","unit":"' + INSIDE + '","type":"DisputeRegistered","data":{},'
        '"note":"\\ud800"}'
    )
    status, _, answer = send_raw(service, raw_post(service, tokens, "/cases", opening.encode()))
    assert status == 400, answer
    user = '{"name":"\\udc00","role":"caseworker","unit":"' + INSIDE + '"}'
    request = raw_post(service, tokens, "/users", user.encode()).replace(
        tokens.by_role["caseworker"].encode(), tokens.by_role["admin"].encode()
    )
    status, _, answer = send_raw(service, request)
    assert status == 400, answer


def test_surrogates_and_huge_numbers_in_paths_queries_and_headers_are_never_a_500(
    service: Service, tokens: Tokens
) -> None:
    case_id = open_case(service, tokens)
    supervisor = tokens.headers("supervisor")
    surrogate = "%ED%A0%80"  # UTF-8 bytes of U+D800, as a client might percent-encode it
    answers = [
        requests.get(f"{service.url}/cases?q={surrogate}", headers=supervisor),
        requests.get(f"{service.url}/cases/{surrogate}", headers=supervisor),
        requests.get(f"{service.url}/cases?page={'9' * 5000}", headers=supervisor),
        requests.get(
            f"{service.url}/cases/{case_id}?as_of_version={'9' * 5000}", headers=supervisor
        ),
        requests.get(
            f"{service.url}/audit/events?after={'9' * 5000}", headers=tokens.headers("auditor")
        ),
    ]
    for answer in answers:
        assert answer.status_code < 500, (answer.url[:100], answer.text)
    # Header bytes that are a surrogate's UTF-8, in the one header the service stores.
    body = b'{"type":"HearingHeld","data":{"held_on":"2026-03-02","notes":"n"}}'
    request = raw_post(service, tokens, f"/cases/{case_id}/events", body)
    request = request.replace(
        b"Connection: close", b"Connection: close\r\nIdempotency-Key: k\xed\xa0\x80"
    )
    status, _, answer = send_raw(service, request)
    assert status < 500, answer


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_command_not_sent_as_json_is_refused_415(
    service: Service, tokens: Tokens, content_type: str | None
) -> None:
    case_id = open_case(service, tokens)
    headers = tokens.headers("caseworker")
    if content_type:
        headers["Content-Type"] = content_type
    answer = requests.post(
        f"{service.url}/cases/{case_id}/events",
        data=b'{"type":"HearingHeld","data":{"held_on":"2026-03-02","notes":"n"}}',
        headers=headers,
    )
    assert check(answer, 415)["error"]["code"] == "unsupported_media_type"
    assert versions(service, tokens, case_id) == 1


REFUSED = {
    "a bad request line": (b"GET /a b c\r\nHost: x\r\n\r\n", 400, "malformed_request"),
    "a request line above 8,190 bytes": (
        b"GET /api/v1/cases?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        414,
        "uri_too_long",
    ),
    "a header above 8,190 bytes": (
        b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        431,
        "headers_too_large",
    ),
    "more than 100 headers": (
        b"GET /api/v1/healthz HTTP/1.1\r\n"
        + b"".join(b"X-%d: 1\r\n" % n for n in range(120))
        + b"\r\n",
        431,
        "headers_too_large",
    ),
    "a body of 2 MiB announced": (
        b"POST /api/v1/cases HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n{",
        413,
        "body_too_large",
    ),
}


@pytest.mark.parametrize("request_bytes, status, code", REFUSED.values(), ids=list(REFUSED))
def test_what_the_http_server_refuses_is_in_the_error_shape(
    service: Service, request_bytes: bytes, status: int, code: str
) -> None:
    answered, headers, body = send_raw(service, request_bytes)
    assert answered == status, body
    assert headers["content-type"] == "application/json"
    assert requests.models.complexjson.loads(body)["error"]["code"] == code


def test_a_retry_that_spells_the_case_id_in_upper_case_is_the_same_command(
    service: Service, tokens: Tokens
) -> None:
    case_id = open_case(service, tokens)
    body = {"type": "HearingHeld", "data": HEARING}
    headers = tokens.headers("caseworker", **{"Idempotency-Key": f"retry-{case_id}"})
    first = check(
        requests.post(f"{service.url}/cases/{case_id}/events", json=body, headers=headers), 201
    )
    for spelling in (case_id.upper(), case_id.replace("-", ""), f"{{{case_id}}}"):
        again = requests.post(f"{service.url}/cases/{spelling}/events", json=body, headers=headers)
        assert check(again, 201)["version"] == first["version"], spelling
        assert again.headers["Idempotent-Replayed"] == "true"
    assert versions(service, tokens, case_id) == 2
    state = check(
        requests.get(f"{service.url}/cases/{case_id.upper()}", headers=tokens.headers("auditor")),
        200,
    )
    assert state["id"] == case_id


def test_answers_are_neither_cached_nor_sniffed(service: Service, tokens: Tokens) -> None:
    case_id = open_case(service, tokens)
    answers: list[Any] = [
        requests.get(f"{service.url}/cases/{case_id}", headers=tokens.headers("auditor")),
        requests.get(f"{service.url}/cases", headers=tokens.headers("supervisor")),
        requests.get(
            f"{service.url}/cases/{case_id}",
            headers=tokens.headers("caseworker", Authorization="Bearer nope"),
        ),
        requests.get(f"{service.url}/no-such-address"),
    ]
    for answer in answers:
        assert answer.headers["Cache-Control"] == "no-store", answer.url
        assert answer.headers["X-Content-Type-Options"] == "nosniff", answer.url
