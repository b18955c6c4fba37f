"""`casetrail up`: web, worker and cron in the foreground, on the embedded defaults.

Creates the tables and seed units once, an admin on first start (printing its token
once), then supervises the three processes; Ctrl-C (or SIGTERM) stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from workers.redis_conn import redis_url, stop_embedded

ROOT_UNIT = "320000"
STOP_TIMEOUT = 15.0
RESTART_PAUSE = 2.0


def first_admin(ct: Casetrail) -> str | None:
    """Creates the first admin at the province; the token, or None if one exists."""
    if any(user.role == "admin" for user in ct.directory.users()):
        return None
    _, token = ct.directory.create_user("admin", "admin", ROOT_UNIT)
    return token


def casetrail_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from cli.main import main; main()", *args]


def background_commands() -> dict[str, list[str]]:
    """The worker and cron commands."""
    return {name: casetrail_command(name) for name in ("worker", "cron")}


def embedded_redis(settings: Settings) -> str | None:
    """The Redis URL for the children; starts the embedded Redis (owned by `up`) if needed."""
    if settings.redis_url:
        return settings.redis_url
    url: str = redis_url(settings)
    return url


def stop_embedded_redis(settings: Settings) -> None:
    if settings.redis_url:
        return
    stop_embedded(settings.data_dir)


class Supervisor:
    """Starts child processes in their own sessions and stops them together.

    When the web process exits, everything stops; a worker or cron that exits is
    restarted after a pause (the projections catch up from where they were).
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.commands: dict[str, list[str]] = {}
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, name: str, command: list[str]) -> None:
        self.commands[name] = command
        self.children[name] = subprocess.Popen(command, env=self.env, start_new_session=True)

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def wait(self) -> int:
        """Runs until a signal or the web process's exit; returns the exit status for `up`."""
        status = 0
        while not self.stopping:
            time.sleep(0.2)
            for name, child in list(self.children.items()):
                code = child.poll()
                if code is None or self.stopping:
                    continue
                if name == "web":
                    click.echo(f"casetrail up: web exited with status {code}; stopping", err=True)
                    status = 1
                    self.stopping = True
                    break
                click.echo(f"casetrail up: {name} exited with status {code}; restarting", err=True)
                time.sleep(RESTART_PAUSE)
                self.start(name, self.commands[name])
        self.terminate()
        return status

    def terminate(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


@click.command("up")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded data lives (default: $CASETRAIL_DATA_DIR or ./var).",
)
def up(port: int, host: str, data_dir: Path | None) -> None:
    """Runs web, worker and cron in the foreground; Ctrl-C stops them all."""
    settings = Settings.from_env()
    if data_dir is not None:
        settings = settings.with_(data_dir=data_dir.resolve())
    env = dict(os.environ)
    env["CASETRAIL_DATA_DIR"] = str(settings.data_dir)
    env["CASETRAIL_BIND"] = f"{host}:{port}"
    ct = bootstrap(settings)
    try:
        token = first_admin(ct)
    finally:
        ct.close()
    redis = embedded_redis(settings)
    if redis:
        env["CASETRAIL_REDIS_URL"] = redis

    supervisor = Supervisor(env)
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    web = [sys.executable, "-m", "gunicorn", "--config", "python:web.gunicorn_conf"]
    supervisor.start("web", [*web, "web.app:create_app()"])
    for name, command in background_commands().items():
        supervisor.start(name, command)

    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    click.echo(f"casetrail is up at http://{shown}:{port}/api/v1 (docs: /api/v1/docs)")
    click.echo(f"data: {settings.data_dir if settings.backend == 'sqlite' else settings.backend}")
    if token:
        click.echo(f"admin token (shown once, keep it): {token}")
    click.echo("Ctrl-C stops web, worker and cron.")
    sys.stdout.flush()
    status = supervisor.wait()
    stop_embedded_redis(settings)
    click.echo("casetrail stopped.")
    sys.exit(status)
