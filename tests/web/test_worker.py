"""The web process's gunicorn worker (web/worker.py) through the real service: keep-alive
connections served on their thread, and spread over the worker processes."""

from __future__ import annotations

import http.client
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from gunicorn.config import Config

from tests.web.conftest import Service
from web.worker import ACCEPT_YIELD_SECONDS, KeepAliveThreadWorker

# The worker does not depend on the store: the service runs on SQLite.
on_sqlite = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def workers_of(service: Service) -> list[int]:
    assert service.process is not None
    children = Path(f"/proc/{service.process.pid}/task/{service.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def established_by_worker(service: Service) -> dict[int, int]:
    """How many of the service's accepted connections each worker process holds."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == service.port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    held = {}
    for pid in workers_of(service):
        count = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                count += 1
        held[pid] = count
    return held


def get(conn: http.client.HTTPConnection, path: str = "/api/v1/healthz") -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


@on_sqlite
def test_keep_alive_clients_connecting_at_once_are_spread_over_the_workers(
    service: Service,
) -> None:
    # Before web/worker.py, the first worker to wake took every connection of a burst
    # and served them all on one core (the GIL) while the other idled.
    # The second worker may still be loading the app when the service first answers:
    # bursts are tried until both take part (with gthread's own worker, never).
    spreads = []
    for _ in range(10):
        conns = [
            http.client.HTTPConnection("127.0.0.1", service.port, timeout=10) for _ in range(4)
        ]
        for conn in conns:
            conn.connect()
        assert all(get(conn) == 200 for conn in conns)
        spread = sorted(established_by_worker(service).values())
        for conn in conns:
            conn.close()
        spreads.append(spread)
        if spread == [2, 2]:
            break
        time.sleep(0.5)
    assert [2, 2] in spreads, spreads


@on_sqlite
def test_a_keep_alive_connection_serves_request_after_request_on_one_socket(
    service: Service,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    conn.connect()
    sock = conn.sock
    assert [get(conn) for _ in range(300)] == [200] * 300
    assert conn.sock is sock  # never closed and reopened
    assert get(conn, "/api/v1/no-such-address") == 404
    conn.close()


@on_sqlite
def test_pipelined_requests_are_answered_in_order(service: Service) -> None:
    # Two requests in one write: the second is read ahead with the first, which takes
    # gthread's own path back through the main thread.
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        request = (
            b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /api/v1/no-such-address HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        sock.sendall(request)
        received = b""
        while received.count(b"HTTP/1.1 ") < 2 or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    # A body does not end its line: the next status line follows it directly.
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", received) == [b"200", b"404"]


def detached_worker(held: int) -> tuple[KeepAliveThreadWorker, list[object]]:
    """The worker's accept() alone: `held` connections open, submissions recorded."""
    worker = KeepAliveThreadWorker.__new__(KeepAliveThreadWorker)
    worker.cfg = Config()
    worker.nr_conns = held
    submitted: list[object] = []
    worker.enqueue_req = submitted.append  # type: ignore[method-assign]
    return worker, submitted


def test_a_worker_holding_connections_lets_a_less_busy_one_take_the_next() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        address = listener.getsockname()
        # An idle worker accepts at once.
        idle, submitted = detached_worker(0)
        with socket.create_connection(address):
            started = time.monotonic()
            idle.accept(listener)
            assert time.monotonic() - started < ACCEPT_YIELD_SECONDS
        assert len(submitted) == 1 and idle.nr_conns == 1
        submitted[0].sock.close()  # type: ignore[attr-defined]
        # A worker holding five waits 5 × ACCEPT_YIELD_SECONDS first: a less busy one
        # (here this thread) takes the connection meanwhile, and it accepts nothing.
        busy, taken_by_busy = detached_worker(5)
        with socket.create_connection(address):
            thread = threading.Thread(target=busy.accept, args=(listener,))
            started = time.monotonic()
            thread.start()
            other, _ = listener.accept()
            other.close()
            thread.join()
            assert time.monotonic() - started >= 5 * ACCEPT_YIELD_SECONDS
        assert taken_by_busy == [] and busy.nr_conns == 5
