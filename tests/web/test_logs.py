"""One log format for web, worker and cron (workers/logs.py): an idle service stays
quiet, `CASETRAIL_LOG_FORMAT=json` gives one JSON object a line, no personal data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.case import Actor
from tests.dispute_builders import PERSONAL_DATA, registration
from tests.web.conftest import ROOT, Service, Tokens, settings_env, stop_embedded_redis

IDLE_SECONDS = 20
FIELDS = {"ts", "level", "logger", "process", "message"}


def records(text: str) -> list[dict[str, object]]:
    """Every line of `text` as a JSON record (fails on a line that is not one)."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    for record in lines:
        assert set(record) >= FIELDS, record
        assert isinstance(record["process"], int)
    return lines


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_idle_worker_and_cron_say_almost_nothing_and_the_safety_net_only_what_it_did(
    settings: Settings, tokens: Tokens, tmp_path: Path
) -> None:
    env = settings_env(settings)
    env.update(
        CASETRAIL_LOG_FORMAT="json",
        CASETRAIL_CATCHUP_INTERVAL="1",  # the safety net every second
        CASETRAIL_DEADLINE_SWEEP_SECONDS="1",
    )
    log = tmp_path / "background.log"
    children = []
    with log.open("wb") as out:
        for command in ("worker", "cron"):
            children.append(
                subprocess.Popen(
                    [sys.executable, "-c", "from cli.main import main; main()", command],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        time.sleep(4)
        # A case appended with no signal to the workers: only the safety net finds it.
        ct = bootstrap(settings)
        try:
            ct.service.open_case(
                Actor(user_id="u_worker", role="caseworker", unit="320102"),
                "dispute",
                "320102",
                "DisputeRegistered",
                registration(),
            )
        finally:
            ct.close()
        time.sleep(IDLE_SECONDS - 4)
    finally:
        for child in children:
            os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a worker mid-job on a loaded machine
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
        stop_embedded_redis(settings.data_dir)
    text = log.read_text("utf-8")
    lines = records(text)
    messages = [str(record["message"]) for record in lines]
    # Each process's start (the cipher warning, the backend), the one catch-up, the stop.
    assert len(lines) <= 10, messages
    assert sum(" applied " in message for message in messages) == 1, messages
    assert {record["level"] for record in lines} <= {"INFO", "WARNING"}, messages
    assert not any(value in text for value in PERSONAL_DATA)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_web_process_logs_json_lines_gunicorn_and_access_lines_alike(
    settings: Settings, tokens: Tokens, tmp_path: Path
) -> None:
    log = tmp_path / "gunicorn.log"
    service = Service(settings, log)
    service.env.update(CASETRAIL_LOG_FORMAT="json", CASETRAIL_ACCESS_LOG="-")
    service.start()
    try:
        assert requests.get(f"{service.url}/cases", headers=tokens.headers("supervisor")).ok
    finally:
        service.stop()
    lines = records(log.read_text("utf-8"))
    loggers = {record["logger"] for record in lines}
    assert {"gunicorn.error", "gunicorn.access"} <= loggers, lines
    access = [record for record in lines if record["logger"] == "gunicorn.access"]
    assert any('"GET /api/v1/cases" 200 ' in str(record["message"]) for record in access)
    # Two worker processes and the master: the records say which.
    assert len({record["process"] for record in lines}) >= 2


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/St_Johns"])
def test_log_timestamps_are_iso_local_time_with_milliseconds_across_seconds(zone: str) -> None:
    """The part up to the second is kept a second: each record still gets its own time."""
    script = (
        "import datetime, random\n"
        "from workers.logs import timestamp\n"
        "times = [1700000000 + i / 7 for i in range(200)]\n"
        "times += [1700000000.0, 1699999999.999, 1700000001.0005, 1700000000.5]\n"
        "draw = random.Random(20261206)\n"
        "times += [draw.uniform(0, 2e9) for _ in range(2000)]\n"
        "times += [s + f for s in (1700000000, 1e9) for f in (0.0009995, 0.9995, 0.99999951)]\n"
        "for t in times:\n"
        "    want = datetime.datetime.fromtimestamp(t).astimezone()\n"
        "    want = want.replace(microsecond=want.microsecond // 1000 * 1000)\n"
        "    got = datetime.datetime.fromisoformat(timestamp(t))\n"
        "    assert got == want and got.utcoffset() == want.utcoffset(), (t, got, want)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "TZ": zone},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.stdout.strip() == "ok", result.stderr
