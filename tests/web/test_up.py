"""`casetrail up`: web, worker and cron in the foreground on the embedded defaults.

It prints the URL and, on first start only, an admin token; the read models follow the
commands (`min_position`); Ctrl-C stops every child; a restart finds all the data again.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
import requests

from tests.dispute_builders import registration
from tests.web.conftest import ROOT, check, free_port

TOKEN = re.compile(r"admin token \(shown once, keep it\): (ct_\S+)")


class Up:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.data_dir, self.log = data_dir, log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
        self.env["CASETRAIL_QUEUE"] = f"up-{self.port}"

    def start(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", "from cli.main import main; main()", "up"]
        with self.log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "--port", str(self.port), "--data-dir", str(self.data_dir)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, self.log.read_text()
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return process
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"casetrail up did not answer: {self.log.read_text()[-2000:]}")

    def interrupt(self, process: subprocess.Popen[bytes]) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the foreground process."""
        process.send_signal(signal.SIGINT)
        return process.wait(timeout=30)


def descendants(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)


@pytest.mark.slow
def test_up_serves_projects_stops_on_ctrl_c_and_finds_its_data_again(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", tmp_path / "up.log")
    process = up.start()
    try:
        output = up.log.read_text()
        assert f"http://localhost:{up.port}/api/v1" in output
        admin = TOKEN.search(output)
        assert admin, output
        children = descendants(process)
        assert len(children) >= 3  # gunicorn (and its workers), worker, cron

        as_admin = {"Authorization": f"Bearer {admin.group(1)}"}
        user = check(
            requests.post(
                f"{up.url}/users",
                json={"name": "调解员", "role": "caseworker", "unit": "320100"},
                headers=as_admin,
            ),
            201,
        )
        worker = {"Authorization": f"Bearer {user['token']}"}
        body = {
            "kind": "dispute",
            "unit": "320100",
            "type": "DisputeRegistered",
            "data": registration(center_unit="320100"),
        }
        opened = check(requests.post(f"{up.url}/cases", json=body, headers=worker), 201)

        # Read your writes: the list waits for the worker to project the new case.
        listed = requests.get(
            f"{up.url}/cases", params={"min_position": opened["position"]}, headers=worker
        )
        assert check(listed, 200)["total"] == 1, listed.headers
        assert listed.headers["Read-Models-Reached"] == "true"
        assert listed.json()["items"][0]["id"] == opened["id"]

        # Pages link to each other.
        for _ in range(2):
            last = check(requests.post(f"{up.url}/cases", json=body, headers=worker), 201)
        first = check(
            requests.get(
                f"{up.url}/cases",
                params={"per_page": 2, "kind": "dispute", "min_position": last["position"]},
                headers=worker,
            ),
            200,
        )
        assert first["total"] == 3 and len(first["items"]) == 2 and first["links"]["prev"] is None
        second = check(
            requests.get(f"http://127.0.0.1:{up.port}{first['links']['next']}", headers=worker), 200
        )
        assert len(second["items"]) == 1 and second["links"]["next"] is None
        assert second["links"]["prev"] is not None and "page=1" in second["links"]["prev"]
    finally:
        status = up.interrupt(process)
    assert status == 0, up.log.read_text()[-3000:]
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, child

    again = up.start()
    try:
        assert not TOKEN.search(up.log.read_text()), "the admin token is shown on first start only"
        state = check(requests.get(f"{up.url}/cases/{opened['id']}", headers=worker), 200)
        assert state["status"] == "registered" and state["version"] == 1
    finally:
        assert up.interrupt(again) == 0
