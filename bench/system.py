"""The whole system at once: `casetrail up` (web + worker + cron + embedded Redis, as a user
runs it) on a fresh data directory, under concurrent appending clients, side by side with the
bare eventsourcing library on a SQLite file on the same disk (issue 21).

    .venv/bin/python -m bench.run --only system [--seconds 300] [--clients 8]

Measures, for keep-alive clients and for a new connection per request: events/s, p50/p99
latency, errors, the projection lag when the load stops and how long until it is 0; then
`GET /cases?per_page=20` at the same number of keep-alive clients. The clients are threads
of this process (`http.client`); its own CPU is printed, since on two shared cores the
clients may be the limit. `bench/chaos.py` uses the same machinery.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import append, workload
from bench.projections import units
from bench.stats import Rate, children_of, process_cpu_seconds
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 120.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sqlite_settings(data_dir: Path) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
    return Settings.from_env({**env, "CASETRAIL_DATA_DIR": str(data_dir)})


@dataclass
class Tokens:
    caseworker: str
    supervisor: str


def prepare(data_dir: Path) -> Tokens:
    """Tables, units and two users on a fresh data directory, before `up` starts on it."""
    ct = bootstrap(sqlite_settings(data_dir))
    try:
        ct.directory.load_units(units())
        _, worker = ct.directory.create_user("bench caseworker", "caseworker", workload.UNIT)
        _, supervisor = ct.directory.create_user("bench supervisor", "supervisor", "320000")
    finally:
        ct.close()
    return Tokens(worker, supervisor)


# --- `casetrail up` in a subprocess ---------------------------------------------------------


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def descendants(self) -> list[int]:
        found, todo = [], [self.process.pid]
        while todo:
            for child in children_of(todo.pop()):
                found.append(child)
                todo.append(child)
        return found

    def find(self, words: str, *, direct: bool = True) -> list[int]:
        """Pids of `up`'s children (or all descendants) whose command line contains `words`."""
        pids = children_of(self.process.pid) if direct else self.descendants()
        return [pid for pid in pids if words in cmdline(pid)]

    def cpu_seconds(self) -> float:
        return process_cpu_seconds([self.process.pid, *self.descendants()])


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@contextmanager
def casetrail_up(data_dir: Path, port: int | None = None) -> Iterator[Up]:
    """The real `casetrail up` on `data_dir` (SQLite, embedded Redis), loopback only."""
    port = port or append.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
    env.update(
        CASETRAIL_DATA_DIR=str(data_dir),
        CASETRAIL_RATE_LIMIT="",  # one client per token appends as fast as it can
        CASETRAIL_LOG_LEVEL="warning",
    )
    log_path = data_dir.parent / f"{data_dir.name}-up.log"
    command = [str(Path(sys.executable).with_name("casetrail")), "up", "--host", "127.0.0.1"]
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        up = Up(process, port, data_dir, log_path)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while b"casetrail is up" not in log_path.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"casetrail up failed: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            yield up
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# --- HTTP clients --------------------------------------------------------------------------


class Client:
    """One HTTP/1.1 client: a kept-alive connection, or a new one for each request."""

    def __init__(self, base: str, token: str, *, keep_alive: bool = True, timeout: float = 30):
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port, self.keep_alive, self.timeout = host, int(port), keep_alive, timeout
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if not keep_alive:
            self.headers["Connection"] = "close"
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Status and body; raises OSError/HTTPException when the connection fails."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        data = None if body is None else json.dumps(body).encode()
        try:
            self.conn.request(method, path, body=data, headers={**self.headers, **(headers or {})})
            response = self.conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if not self.keep_alive or response.will_close:
            self.close()
        return response.status, answer

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class CaseRecord:
    """What one client sent for one case: the commands' types in order, how many were
    acknowledged (201), and the case id once known."""

    case_id: str | None = None
    sent: list[str] = field(default_factory=list)
    acknowledged: int = 0


@dataclass
class Load:
    """Appending clients running until stopped; every command carries an Idempotency-Key
    and is retried with it after a connection error or a 503 (bounded)."""

    base: str
    token: str
    clients: int
    keep_alive: bool = True
    retries: int = 50
    stop_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    connection_errors: int = 0
    cases: list[CaseRecord] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)  # monotonic times of 201s
    failures: list[float] = field(default_factory=list)  # monotonic times of failed tries
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self.threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.clients)
        ]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=60)

    @property
    def acknowledged(self) -> int:
        return len(self.latencies)

    def _run(self) -> None:
        client = Client(self.base, self.token, keep_alive=self.keep_alive)
        try:
            while not self.stop_event.is_set():
                self._case(client)
        finally:
            client.close()

    def _case(self, client: Client) -> None:
        record = CaseRecord()
        with self.lock:
            self.cases.append(record)
        type_, data = workload.opening()
        body = {"kind": "dispute", "unit": workload.UNIT, "type": type_, "data": data}
        record.sent.append(type_)
        answer = self._command(client, "/api/v1/cases", body)
        if answer is None:
            return
        record.case_id = json.loads(answer)["id"]
        record.acknowledged = 1
        for type_, data in workload.appends():
            if self.stop_event.is_set():
                return
            record.sent.append(type_)
            path = f"/api/v1/cases/{record.case_id}/events"
            if self._command(client, path, {"type": type_, "data": data}) is None:
                return  # outcome unknown: the case is left (the check allows either)
            record.acknowledged += 1

    def _command(self, client: Client, path: str, body: dict[str, Any]) -> bytes | None:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        for attempt in range(self.retries):
            t0 = time.perf_counter()
            try:
                status, answer = client.request("POST", path, body, headers)
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.connection_errors += 1
                    self.failures.append(time.monotonic())
                if self.stop_event.is_set():
                    return None
                time.sleep(min(0.05 * 2**attempt, 1.0))
                continue
            elapsed = time.perf_counter() - t0
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 201:
                    self.latencies.append(elapsed)
                    self.successes.append(time.monotonic())
                    return answer
                self.failures.append(time.monotonic())
                if status >= 500:
                    code = error_code(answer)
                    self.codes[f"{status} {code}"] = self.codes.get(f"{status} {code}", 0) + 1
            if status not in (429, 502, 503) or self.stop_event.is_set():
                return None
            time.sleep(min(0.05 * 2**attempt, 1.0))
        return None


def error_code(answer: bytes) -> str:
    try:
        body = json.loads(answer)
        return str((body.get("error") or body).get("code", "?"))
    except (ValueError, AttributeError):
        return "non-json"


def projection_lag(base: str, token: str) -> int | None:
    """The largest lag of the read models, or None if the API did not answer."""
    try:
        status, answer = Client(base, token, keep_alive=False, timeout=10).request(
            "GET", "/api/v1/projections"
        )
    except (OSError, http.client.HTTPException):
        return None
    if status != 200:
        return None
    body = json.loads(answer)
    return max((p["lag"] for p in body["projections"]), default=0)


def time_to_lag_zero(base: str, token: str, timeout: float) -> tuple[int | None, float | None]:
    """The lag now, and the seconds until it is 0 (None if not within `timeout`)."""
    started = time.monotonic()
    first = projection_lag(base, token)
    lag = first
    while time.monotonic() - started < timeout:
        if lag == 0:
            return first, time.monotonic() - started
        time.sleep(0.1)
        lag = projection_lag(base, token)
    return first, None


# --- the benchmark -------------------------------------------------------------------------


@dataclass
class Result:
    rate: Rate
    errors: int
    client_cpu_ms: float
    server_cpu_ms: float
    lag: int | None = None
    lag_seconds: float | None = None


def run_load(
    up: Up, token: str, supervisor: str, clients: int, seconds: float, keep: bool
) -> Result:
    load = Load(up.base, token, clients, keep_alive=keep)
    cpu, server_cpu = time.process_time(), up.cpu_seconds()
    started = time.perf_counter()
    load.start()
    time.sleep(seconds)
    load.stop()
    elapsed = time.perf_counter() - started
    cpu, server_cpu = time.process_time() - cpu, up.cpu_seconds() - server_cpu
    lag, lag_seconds = time_to_lag_zero(up.base, supervisor, timeout=120)
    count = max(1, load.acknowledged)
    errors = sum(n for s, n in load.statuses.items() if s != 201) + load.connection_errors
    return Result(
        Rate(load.acknowledged, elapsed, load.latencies, server_cpu),
        errors,
        1000 * cpu / count,
        1000 * server_cpu / count,
        lag,
        lag_seconds,
    )


def run_reads(up: Up, token: str, clients: int, seconds: float) -> tuple[Rate, int, float]:
    latencies: list[float] = []
    errors = [0]
    stop = threading.Event()
    lock = threading.Lock()

    def reader() -> None:
        client = Client(up.base, token)
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                status, _ = client.request("GET", "/api/v1/cases?per_page=20")
            except (OSError, http.client.HTTPException):
                status = 0
            with lock:
                if status == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[0] += 1
        client.close()

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(clients)]
    cpu = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.perf_counter() - started
    cpu_ms = 1000 * (time.process_time() - cpu) / max(1, len(latencies))
    return Rate(len(latencies), elapsed, latencies), errors[0], cpu_ms


def bare_rate(data_dir: Path, seconds: float) -> Rate:
    """bench/append.py's bare-library baseline on a SQLite file in `data_dir`, for `seconds`."""
    total = Rate(0, 0.0, [], 0.0)
    with append.baseline_application(sqlite_settings(data_dir)) as bare:
        while total.seconds < seconds:
            total += append.baseline_appends(bare, 20)
    return total


def measure(data_dir: Path, clients: int, seconds: float) -> list[tuple[str, str, str]]:
    """Rows (section, measure, value) for bench/run.py."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log(f"system: preparing {data_dir}")
    tokens = prepare(data_dir)
    rows: list[tuple[str, str, str]] = []
    results: dict[bool, Result] = {}
    with casetrail_up(data_dir) as up:
        log(f"system: casetrail up at {up.base} (pid {up.process.pid})")
        for keep in (True, False):
            label = "keep-alive" if keep else "new connection per request"
            log(f"system: {clients} clients appending, {label}, {seconds:.0f} s")
            results[keep] = result = run_load(
                up, tokens.caseworker, tokens.supervisor, clients, seconds, keep
            )
            log(f"system: {label}: {result.rate.per_second:,.0f} events/s")
        log(f"system: GET /cases?per_page=20, {clients} keep-alive clients, {seconds:.0f} s")
        reads, read_errors, read_cpu = run_reads(up, tokens.supervisor, clients, seconds)
    log(f"system: bare eventsourcing library, {seconds:.0f} s")
    bare = bare_rate(data_dir, seconds)
    rows.append(
        ("system", "bare eventsourcing.Application, SQLite file, 1 client", rate_line(bare))
    )
    targets = {True: 0.5, False: 0.35}
    for keep, result in results.items():
        label = "keep-alive" if keep else "new connection per request"
        lag = "?" if result.lag is None else f"{result.lag:,}"
        drained = "not in 120 s" if result.lag_seconds is None else f"{result.lag_seconds:.1f} s"
        rows.append(
            (
                "system",
                f"casetrail up, {clients} clients appending, {label}",
                f"{rate_line(result.rate)}; {result.errors} errors; lag at the end {lag} "
                f"events, 0 after {drained}; CPU ms/event: up {result.server_cpu_ms:.2f}, "
                f"clients {result.client_cpu_ms:.2f}",
            )
        )
        rows.append(
            (
                "system",
                f"ratio {label} ÷ bare",
                f"{result.rate.per_second / bare.per_second:.2f} (target ≥ {targets[keep]:.2f}; "
                f"p99 target ≤ 50 ms, lag ≤ 2 s)",
            )
        )
    rows.append(
        (
            "system",
            f"GET /cases?per_page=20, {clients} keep-alive clients, under casetrail up",
            f"{reads.per_second:,.0f} requests/s; p50 {reads.p50_ms:.1f} ms, "
            f"p99 {reads.p99_ms:.1f} ms; {read_errors} errors; clients {read_cpu:.2f} CPU ms/request",
        )
    )
    return rows


def rate_line(rate: Rate) -> str:
    return f"{rate.per_second:,.0f} events/s; p50 {rate.p50_ms:.1f} ms, p99 {rate.p99_ms:.1f} ms"
