"""Append throughput and latency: HTTP API (gunicorn, concurrent clients), the application
service in-process, and a bare `eventsourcing.Application` (the baseline) on the same kind
of store, all with the same ten-event dispute cases."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench import workload
from bench.stats import Rate, children_of, process_cpu_seconds
from bench.stores import settings_env
from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from domain.case import Actor

ACTOR = Actor(user_id="u_bench", role="caseworker", unit=workload.UNIT)


# --- the application service -------------------------------------------------------------


def service_appends(ct: Casetrail, cases: int) -> Rate:
    latencies: list[float] = []
    service = ct.service
    cpu = time.process_time()
    started = time.perf_counter()
    for _ in range(cases):
        type_, data = workload.opening()
        t0 = time.perf_counter()
        case_id = service.open_case(ACTOR, "dispute", workload.UNIT, type_, data).id
        latencies.append(time.perf_counter() - t0)
        for type_, data in workload.appends():
            t0 = time.perf_counter()
            service.append(ACTOR, case_id, type_, data)
            latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    return Rate(len(latencies), seconds, latencies, time.process_time() - cpu)


# --- the baseline: the library alone ------------------------------------------------------


class BaselineCase(Aggregate):
    """An aggregate carrying the same data as a case event, with no rules and no extras."""

    @event("Opened")
    def __init__(self, unit: str, type_: str, data: dict[str, Any], actor: str) -> None:
        self.unit = unit
        self.events = 1

    @event("Recorded")
    def record(self, type_: str, data: dict[str, Any], actor: str) -> None:
        self.events += 1


class BaselineApplication(Application[Any]):
    name = "baseline"
    snapshotting_intervals = {BaselineCase: 50}  # noqa: RUF012  (as CaseApplication)


def baseline_env(settings: Settings) -> dict[str, str]:
    if settings.database_url is None:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "baseline.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    url = urlparse(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/"),
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_PASSWORD": url.password or "",
        "POSTGRES_SCHEMA": settings.database_schema or "public",
    }


@contextmanager
def baseline_application(settings: Settings) -> Iterator[BaselineApplication]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = BaselineApplication(env=baseline_env(settings))
    try:
        yield app
    finally:
        app.close()


def baseline_appends(app: BaselineApplication, cases: int) -> Rate:
    latencies: list[float] = []
    cpu = time.process_time()
    started = time.perf_counter()
    for _ in range(cases):
        type_, data = workload.opening()
        t0 = time.perf_counter()
        case = BaselineCase(workload.UNIT, type_, data, ACTOR.user_id)
        app.save(case)
        latencies.append(time.perf_counter() - t0)
        for type_, data in workload.appends():
            t0 = time.perf_counter()
            loaded: Any = app.repository.get(case.id)
            loaded.record(type_, data, ACTOR.user_id)
            app.save(loaded)
            latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    return Rate(len(latencies), seconds, latencies, time.process_time() - cpu)


# --- HTTP: gunicorn and concurrent clients -----------------------------------------------


@dataclass
class Server:
    base: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU of the gunicorn master and its workers so far."""
        return process_cpu_seconds([self.pid, *children_of(self.pid)])


@contextmanager
def gunicorn(
    settings: Settings,
    port: int,
    log: Path,
    *,
    checkout: Path | None = None,
    gunicorn_bin: str | None = None,
    extra_env: dict[str, str] | None = None,
    app: str = "web.app:create_app()",
) -> Iterator[Server]:
    """The `web` process of the Procfile, on the loopback interface only; by default this
    checkout's, with this interpreter's gunicorn."""
    env = {
        **os.environ,
        **settings_env(settings),
        # Each client appends as fast as it can: the per-token rate limit is off unless the
        # caller's environment sets one (bench.ab `NAME=PATH:CASETRAIL_RATE_LIMIT=…`).
        "CASETRAIL_RATE_LIMIT": "",
        **(extra_env or {}),
        "CASETRAIL_BIND": f"127.0.0.1:{port}",
        "CASETRAIL_LOG_LEVEL": "warning",
    }
    gunicorn_bin = gunicorn_bin or str(Path(sys.executable).with_name("gunicorn"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [gunicorn_bin, "--config", "python:web.gunicorn_conf", app],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=checkout or Path(__file__).resolve().parent.parent,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, process, log)
            yield Server(base, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not become healthy within 60 s")


class _Connection:
    """One keep-alive HTTP/1.1 connection, as a lean client would hold it (`http.client`,
    no `requests`: the clients share the server's two cores, so their CPU is kept small)."""

    def __init__(self, base: str, token: str) -> None:
        url = urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=json.dumps(body).encode(), headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def _client(base: str, token: str, cases: int, ready: Any, start: Any, results: Any) -> None:
    connection = _Connection(base, token)
    connection.conn.connect()  # connected before the start line, as a keep-alive client is
    latencies: list[float] = []
    errors: list[str] = []
    ready.put(os.getpid())
    start.wait()
    cpu = time.process_time()
    for _ in range(cases):
        type_, data = workload.opening()
        body = {"kind": "dispute", "unit": workload.UNIT, "type": type_, "data": data}
        t0 = time.perf_counter()
        status, answer = connection.post("/api/v1/cases", body)
        latencies.append(time.perf_counter() - t0)
        if status != 201:
            errors.append(f"{status} {answer[:200]!r}")
            break
        case_id = json.loads(answer)["id"]
        for type_, data in workload.appends():
            t0 = time.perf_counter()
            status, answer = connection.post(
                f"/api/v1/cases/{case_id}/events", {"type": type_, "data": data}
            )
            latencies.append(time.perf_counter() - t0)
            if status != 201:
                errors.append(f"{status} {answer[:200]!r}")
                break
    results.put((latencies, errors, time.process_time() - cpu))


def http_appends(server: Server, token: str, cases: int, clients: int) -> Rate:
    """`clients` processes share `cases` cases; each posts its cases' events in turn."""
    base = server.base
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    ready = context.Queue()
    results = context.Queue()
    share = [cases // clients + (1 if i < cases % clients else 0) for i in range(clients)]
    processes = [
        context.Process(target=_client, args=(base, token, n, ready, start, results)) for n in share
    ]
    for process in processes:
        process.start()
    # Every client has imported its modules and connected before the clock starts (four
    # processes importing at once on two cores take more than a second).
    for _ in processes:
        ready.get(timeout=120)
    time.sleep(0.2)
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    start.set()
    latencies: list[float] = []
    errors: list[str] = []
    client_cpu = 0.0
    for _ in processes:
        got, failed, spent = results.get()
        latencies.extend(got)
        errors.extend(failed)
        client_cpu += spent
    seconds = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu
    for process in processes:
        process.join()
    if errors:
        raise RuntimeError(f"HTTP appends refused: {errors[:3]}")
    # Not part of the rate's CPU (that is the server's); shown so that the clients' share
    # of the two cores stays visible.
    count = max(1, len(latencies))
    print(
        f"HTTP, {clients} client(s): {len(latencies) / seconds:,.0f} events/s; server "
        f"{1000 * cpu / count:.2f}, clients {1000 * client_cpu / count:.2f} CPU ms/event",
        file=sys.stderr,
        flush=True,
    )
    return Rate(len(latencies), seconds, latencies, cpu)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_label() -> str:
    return uuid.uuid4().hex[:6]
