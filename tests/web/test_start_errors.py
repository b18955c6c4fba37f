"""The web process (gunicorn, as the Procfile starts it) with bad settings or no store: one
line naming the cause and exit status 2, where the first version printed tracebacks (or made
a new empty store)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from casetrail.config import Settings
from casetrail.presence import store_exists
from tests.web.conftest import ROOT, free_port, settings_env

WEB = [sys.executable, "-m", "gunicorn", "--config", "python:web.gunicorn_conf"]


def start_web(env: dict[str, str]) -> tuple[int, str]:
    env = {**env, "CASETRAIL_BIND": f"127.0.0.1:{free_port()}", "WEB_CONCURRENCY": "1"}
    done = subprocess.run(
        [*WEB, "web.app:create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stderr


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error (")]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_web_process_with_a_bad_setting_says_which_and_exits_2(settings: Settings) -> None:
    env = settings_env(settings)
    env["CASETRAIL_CATCHUP_INTERVAL"] = "30s"

    code, output = start_web(env)

    assert code == 2, output
    assert errors(output) == [
        "error (bad_config): CASETRAIL_CATCHUP_INTERVAL: '30s' is not a whole number above 0; "
        "expected e.g. 30"
    ], output
    assert "Traceback" not in output


def test_the_web_process_without_a_store_refuses_to_start(settings: Settings) -> None:
    code, output = start_web(settings_env(settings))

    assert code == 2, output
    (line,) = errors(output)
    assert line.startswith("error (no_store): there is no casetrail store in "), output
    assert (settings.database_schema or str(settings.data_dir)) in line
    assert not store_exists(settings)
    assert not Path(settings.data_dir).exists() or not any(Path(settings.data_dir).iterdir())
