"""A handful of slow or malicious clients must not take the service down (issue 21): a
connection whose request never arrives whole holds no thread, and is answered 408."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.dispute_builders import registration
from tests.web.conftest import INSIDE, Service, Tokens, check

SLOW_CLIENTS = 64


@pytest.fixture
def slow_clients(served: Service, served_tokens: Tokens) -> Iterator[list[socket.socket]]:
    """Authenticated appends that send their head and the first byte of a body of 200."""
    token = served_tokens.by_role["caseworker"]
    head = (
        f"POST /api/v1/cases/00000000-0000-4000-8000-000000000000/events HTTP/1.1\r\n"
        f"Host: casetrail\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
    ).encode()
    connections = []
    try:
        for _ in range(SLOW_CLIENTS):
            connection = socket.create_connection(("127.0.0.1", served.port), timeout=30)
            connection.sendall(head)
            connections.append(connection)
        time.sleep(0.5)  # every one of them accepted and waiting
        yield connections
    finally:
        for connection in connections:
            connection.close()


def test_the_service_answers_while_64_clients_never_finish_their_body(
    served: Service, served_tokens: Tokens, slow_clients: list[socket.socket]
) -> None:
    for _ in range(5):
        started = time.monotonic()
        assert requests.get(f"{served.url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 2
    body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": registration()}
    opened = requests.post(
        f"{served.url}/cases", json=body, headers=served_tokens.headers("caseworker"), timeout=5
    )
    check(opened, 201)
    # And the slow ones are told, in the error shape, once their time is up.
    slow = slow_clients[0]
    slow.settimeout(20)
    answer = slow.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"code":"request_timeout"' in answer
