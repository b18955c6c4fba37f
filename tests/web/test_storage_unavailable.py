"""A store that cannot write (a full disk) or cannot be reached (PostgreSQL down) answers
503 `storage_unavailable` with `Retry-After`, never 500, loses nothing, and serves again
once it can (issue 21).

The faults are real: a small tmpfs, mounted for the test (root only, else skipped), and
a TCP relay in front of PostgreSQL, cut and mended."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import pytest
import requests

from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.clock import SystemClock, cst_date
from tests.conftest import make_settings
from tests.dispute_builders import registration
from tests.web.conftest import INSIDE, Service, Tokens, check, create_users

# Sessions fall between the registration (the service's today, in China) and today.
TODAY = cst_date(SystemClock().now()).isoformat()

DISK_SIZE = "24m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Writes a file until the disk is full; removing it gives the space back."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1024 * 1024, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    return filler


def test_a_full_disk_answers_503_storage_unavailable_and_recovers_when_space_returns(
    small_disk: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=small_disk / "var")
    ct = bootstrap(settings)
    try:
        tokens: Tokens = create_users(ct)
    finally:
        ct.close()
    service = Service(settings, tmp_path / "gunicorn.log")
    service.start()
    try:
        worker, auditor = tokens.headers("caseworker"), tokens.headers("auditor")
        body = {
            "kind": "dispute",
            "unit": INSIDE,
            "type": "DisputeRegistered",
            "data": registration(),
        }
        case_id = check(requests.post(f"{service.url}/cases", json=body, headers=worker), 201)["id"]
        hearing = {"type": "HearingHeld", "data": {"held_on": TODAY, "notes": "x" * 2000}}
        acknowledged = 1
        filler = fill(small_disk)

        refusals = []
        for _ in range(200):  # the WAL may hold free pages for a few more appends
            answer = requests.post(
                f"{service.url}/cases/{case_id}/events", json=hearing, headers=worker
            )
            assert answer.status_code in (201, 503), answer.text
            if answer.status_code == 201:
                acknowledged += 1
                continue
            refusals.append(answer)
            if len(refusals) == 3:
                break
        assert refusals, "the disk never filled up"
        for answer in refusals:
            assert answer.json()["error"]["code"] == "storage_unavailable"
            assert int(answer.headers["Retry-After"]) > 0
        # A read of personal data is recorded first; it cannot be, so it is refused alike.
        read = requests.get(f"{service.url}/cases/{case_id}", headers=auditor)
        assert read.status_code == 503, read.text
        assert read.json()["error"]["code"] == "storage_unavailable"

        filler.unlink()
        deadline = time.monotonic() + 10
        while True:
            answer = requests.post(
                f"{service.url}/cases/{case_id}/events", json=hearing, headers=worker
            )
            if answer.status_code == 201 or time.monotonic() > deadline:
                break
            assert answer.status_code == 503, answer.text
            time.sleep(0.2)
        check(answer, 201)
        acknowledged += 1
        history = check(
            requests.get(f"{service.url}/cases/{case_id}/history", headers=auditor), 200
        )["events"]
        assert [event["version"] for event in history] == list(range(1, acknowledged + 1))
    finally:
        service.stop()


class Cable:
    """A TCP relay between the service and PostgreSQL that a test can cut and mend: a
    real loss of every connection, then refused ones, with the server itself untouched."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.lock = threading.Lock()

    def mend(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            doomed, self.sockets = [*self.sockets, self.listener], []
            self.listener = None
        for sock in doomed:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                return
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


# A request while PostgreSQL is out of reach is refused within this long (it waits for a
# pooled connection once, not once per retry: store/postgres.py).
REFUSED_WITHIN_SECONDS = 8.0


@pytest.mark.postgres
def test_postgresql_out_of_reach_answers_503_and_serves_again_when_it_is_back(
    tmp_path: Path,
) -> None:
    schema = make_settings("postgres", tmp_path)  # its own schema, dropped at the end
    settings = next(schema)
    try:
        relay_to_postgres(settings, tmp_path)
    finally:
        schema.close()


def relay_to_postgres(settings: Settings, tmp_path: Path) -> None:
    assert settings.database_url
    ct = bootstrap(settings)
    try:
        tokens = create_users(ct)
    finally:
        ct.close()
    url = urlparse(settings.database_url)
    cable = Cable((url.hostname or "127.0.0.1", url.port or 5432))
    cable.mend()
    relayed = replace(
        settings,
        database_url=url._replace(netloc=f"{url.username}@127.0.0.1:{cable.port}").geturl(),
    )
    service = Service(relayed, tmp_path / "gunicorn.log")
    service.start()
    try:
        worker = tokens.headers("caseworker")
        body = {
            "kind": "dispute",
            "unit": INSIDE,
            "type": "DisputeRegistered",
            "data": registration(),
        }
        case_id = check(requests.post(f"{service.url}/cases", json=body, headers=worker), 201)["id"]
        hearing = {"type": "HearingHeld", "data": {"held_on": TODAY, "notes": "n"}}
        cable.cut()
        # More requests than the pool holds connections, so that some find none left.
        for _ in range(6):
            refused(service, f"/cases/{case_id}/events", hearing, worker)
        # Workers that boot meanwhile (a reload, here) boot without the database and
        # refuse alike; gunicorn goes on.
        reload_workers(service)
        for _ in range(3):
            refused(service, f"/cases/{case_id}/events", hearing, worker)
        assert service.process is not None and service.process.poll() is None
        cable.mend()
        deadline = time.monotonic() + 15
        while True:
            answer = requests.post(
                f"{service.url}/cases/{case_id}/events", json=hearing, headers=worker, timeout=60
            )
            if answer.status_code == 201 or time.monotonic() > deadline:
                break
            assert answer.status_code == 503, answer.text
            time.sleep(0.2)
        check(answer, 201)
    finally:
        service.stop()
        cable.cut()


def refused(service: Service, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    started = time.monotonic()
    answer = requests.post(f"{service.url}{path}", json=body, headers=headers, timeout=60)
    took = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "storage_unavailable"
    assert int(answer.headers["Retry-After"]) > 0
    assert took < REFUSED_WITHIN_SECONDS, f"refused after {took:.1f} s"


def reload_workers(service: Service) -> None:
    """SIGHUP to gunicorn's master: new workers boot, the old ones stop; returns once
    none of the old ones is left and the new ones are there."""
    assert service.process is not None
    master = psutil.Process(service.process.pid)
    old = {child.pid for child in master.children()}
    assert old
    os.kill(master.pid, signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = {child.pid for child in master.children()}
        if now and not now & old:
            return
        time.sleep(0.1)
    raise AssertionError(f"the workers were not replaced: {old} -> {now}")
