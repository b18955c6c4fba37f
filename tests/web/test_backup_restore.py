"""`casetrail backup` of a store the real service is writing to, and `casetrail restore`,
which verifies what it restored; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from casetrail.config import Settings
from tests.conftest import POSTGRES_URL
from tests.dispute_builders import registration
from tests.web.conftest import INSIDE, ROOT, Service, Tokens, settings_env

WRITERS = 4


def casetrail_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


class Writers:
    """Threads opening cases through the service until stopped."""

    def __init__(self, service: Service, tokens: Tokens) -> None:
        self.service, self.tokens = service, tokens
        self.stopping = threading.Event()
        self.accepted: list[str] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self.write) for _ in range(WRITERS)]

    def write(self) -> None:
        body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered"}
        with requests.Session() as session:
            while not self.stopping.is_set():
                response = session.post(
                    f"{self.service.url}/cases",
                    json={**body, "data": registration()},
                    headers=self.tokens.headers("caseworker"),
                )
                if response.status_code != 201:
                    self.failures.append(response.text)
                    return
                self.accepted.append(response.json()["id"])

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        assert not self.failures, self.failures[:3]


@pytest.fixture
def service(settings: Settings, tokens: Tokens, tmp_path: Path) -> Iterator[Service]:
    """The real service, without the per-token rate limit (a load of appends)."""
    served = Service(settings, tmp_path / "gunicorn.log")
    served.env["CASETRAIL_RATE_LIMIT"] = ""
    served.start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def target_env(settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of the restored store: a new data directory (and, on PostgreSQL,
    a new schema of the same database)."""
    env = settings_env(settings)
    env["CASETRAIL_DATA_DIR"] = str(tmp_path / "restored")
    if settings.backend == "sqlite":
        yield env
        return
    schema = "r_" + uuid.uuid4().hex[:12]
    env["CASETRAIL_DATABASE_SCHEMA"] = schema
    try:
        yield env
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_a_backup_taken_under_write_load_restores_and_verifies(
    service: Service, tokens: Tokens, settings: Settings, target_env: dict[str, str], tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    with Writers(service, tokens) as writers:
        while len(writers.accepted) < 20:
            time.sleep(0.05)
        before = len(writers.accepted)
        made = casetrail_cli(settings_env(settings), "backup", str(backup))
        time.sleep(0.3)
    assert made.returncode == 0, made.stderr
    # Appends went on while the copy was taken.
    assert len(writers.accepted) > before
    assert {path.name for path in backup.iterdir()} >= {"manifest.json", "audit-signing.key"}
    assert all(path.stat().st_mode & 0o077 == 0 for path in backup.iterdir())
    assert backup.stat().st_mode & 0o077 == 0
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["checkpoint"] is None or manifest["checkpoint"]["tree_size"] >= before

    restored = casetrail_cli(
        target_env, "restore", str(backup), "--data-dir", target_env["CASETRAIL_DATA_DIR"]
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "verified." in restored.stdout and "PROBLEM" not in restored.stdout

    # What the service accepted before the backup began is in the restored store.
    report = casetrail_cli(target_env, "audit", "verify", "--json")
    assert report.returncode == 0, report.stdout + report.stderr
    checked = json.loads(report.stdout)["checked_events"]
    assert before <= checked

    # A second restore into the same place is refused, and changes nothing there.
    again = casetrail_cli(
        target_env, "restore", str(backup), "--data-dir", target_env["CASETRAIL_DATA_DIR"]
    )
    assert again.returncode == 2
    assert "error (target_not_empty)" in again.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_tampered_backup_does_not_restore_as_verified(
    service: Service, tokens: Tokens, settings: Settings, tmp_path: Path
) -> None:
    with Writers(service, tokens) as writers:
        while len(writers.accepted) < 8:
            time.sleep(0.05)
    backup = tmp_path / "backup"
    made = casetrail_cli(settings_env(settings), "backup", str(backup))
    assert made.returncode == 0, made.stderr
    # An event's recorded actor rewritten inside the backup copy.
    with sqlite3.connect(backup / "casetrail.sqlite") as conn:
        conn.execute(
            "UPDATE case_event_chain SET actor = 'someone-else' WHERE position = "
            "(SELECT MIN(position) FROM case_event_chain)"
        )
    env = settings_env(settings)
    restored = casetrail_cli(env, "restore", str(backup), "--data-dir", str(tmp_path / "restored"))
    assert restored.returncode == 1, restored.stdout + restored.stderr
    assert "PROBLEM" in restored.stdout
