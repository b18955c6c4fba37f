"""Web fixtures: the app on a real store (Flask test client), and the real service
(gunicorn) as a subprocess on a free port, both with users of every role."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from tests.conftest import BACKENDS, make_settings
from tests.units import TEST_UNITS
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
HOME = "320102"  # 玄武区: the users' unit
INSIDE = "320102001"  # a street below it
OUTSIDE = "320104"  # 秦淮区: a sibling district
UNITS = TEST_UNITS
ROLES = ("caseworker", "supervisor", "auditor", "admin")
PROVINCE = "320000"


@dataclass
class Tokens:
    """Bearer tokens of one user per role at HOME (the auditor: at the province), and a
    caseworker and supervisor elsewhere."""

    by_role: dict[str, str] = field(default_factory=dict)
    outside: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.by_role[role]}", **extra}


def create_users(ct: Casetrail) -> Tokens:
    ct.directory.load_units(UNITS)
    tokens = Tokens()
    for role in ROLES:
        # The auditor is the province's: an auditor reaches their unit's subtree.
        unit = PROVINCE if role == "auditor" else HOME
        _, tokens.by_role[role] = ct.directory.create_user(f"{role} at home", role, unit)
    for role in ("caseworker", "supervisor"):
        _, tokens.outside[role] = ct.directory.create_user(f"{role} outside", role, OUTSIDE)
    return tokens


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a subprocess use the same store as `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CASETRAIL_")}
    env["CASETRAIL_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["CASETRAIL_DATABASE_URL"] = settings.database_url
    if settings.database_schema:
        env["CASETRAIL_DATABASE_SCHEMA"] = settings.database_schema
    return env


def free_port() -> int:
    """A port free now (`casetrail up` binds it itself a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """The real web process (gunicorn), started, killed and restarted by tests."""

    def __init__(self, settings: Settings, log: Path, workers: int = 2) -> None:
        # The listening socket is made here and handed to gunicorn (`fd://`), so no other
        # service of a parallel test can take the port between choosing and binding it,
        # and a restarted service listens on the same port (connections made while it is
        # down wait in the backlog).
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.socket.set_inheritable(True)
        self.port = int(self.socket.getsockname()[1])
        self.env = settings_env(settings)
        self.env.update(
            CASETRAIL_BIND=f"fd://{self.socket.fileno()}",
            WEB_CONCURRENCY=str(workers),
            CASETRAIL_ACCESS_LOG="",
        )
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.data_dir = settings.data_dir
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--config",
                    "python:web.gunicorn_conf",
                    "web.app:create_app()",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(self.socket.fileno(),),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("gunicorn did not answer in time")

    def kill(self) -> None:
        """`kill -9` of the whole web process group: master and workers, mid-request."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stops the service; fails, with the end of its log, if it had exited on its own."""
        exited = self.process.poll() if self.process is not None else None
        if self.process is not None and exited is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
        self.socket.close()
        stop_embedded_redis(self.data_dir)
        if exited is not None:
            raise RuntimeError(
                f"gunicorn had exited on its own (code {exited}):\n{self.log.read_text()[-4000:]}"
            )


def stop_embedded_redis(data_dir: Path) -> None:
    """Shuts down the embedded Redis the web workers started to signal the projection
    workers, if it still runs (it dies with the web worker that started it)."""
    from workers.redis_conn import stop_embedded

    stop_embedded(data_dir)


@pytest.fixture
def web_casetrail(settings: Settings) -> Iterator[Casetrail]:
    ct = bootstrap(settings)
    try:
        yield ct
    finally:
        ct.close()


@pytest.fixture
def tokens(web_casetrail: Casetrail) -> Tokens:
    return create_users(web_casetrail)


@pytest.fixture
def app(web_casetrail: Casetrail, tokens: Tokens) -> Flask:
    return create_app(web_casetrail)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def service(settings: Settings, tokens: Tokens, tmp_path: Path) -> Iterator[Service]:
    """The real service on a free port, over the store `tokens` were created in."""
    served = Service(settings, tmp_path / "gunicorn.log")
    served.start()
    try:
        yield served
    finally:
        served.stop()


# One real service per test module and backend, for the tests that only add cases of their own.


@pytest.fixture(scope="module", params=BACKENDS)
def served_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    yield from make_settings(str(request.param), tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def served_casetrail(served_settings: Settings) -> Iterator[Casetrail]:
    ct = bootstrap(served_settings)
    try:
        yield ct
    finally:
        ct.close()


@pytest.fixture(scope="module")
def served_tokens(served_casetrail: Casetrail) -> Tokens:
    return create_users(served_casetrail)


@pytest.fixture(scope="module")
def served(
    served_settings: Settings, served_tokens: Tokens, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    service = Service(served_settings, tmp_path_factory.mktemp("log") / "gunicorn.log")
    service.start()
    try:
        yield service
    finally:
        service.stop()


def check(response: Any, status: int) -> Any:
    """The JSON body, after asserting the status (showing the body when it differs)."""
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()
