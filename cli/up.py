"""`casetrail up`: web, worker and cron in the foreground, on the embedded defaults.

Creates the tables and seed units once, an admin on first start (printing its token
once), then supervises the three processes and the embedded Redis (workers.supervise):
it says it is up once the web process answers `/healthz`, and restarts any of them that
dies (web too, unless it keeps dying at start: then it stops, saying why). Ctrl-C (or
SIGTERM) stops them all, and none outlives it even after a `kill -9`.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.roles import ADMIN
from workers.logs import configure
from workers.redis_conn import Keeper, socket_path
from workers.supervise import Supervisor, bind_address, check_bindable, wait_until_healthy

ROOT_UNIT = "320000"
# The web process must answer /healthz within this long after start.
STARTUP_TIMEOUT = 60.0


def first_admin(ct: Casetrail) -> str | None:
    """Creates the first admin at the province; the token, or None if one exists."""
    if any(user.role == ADMIN for user in ct.directory.users()):
        return None
    _, token = ct.directory.create_user("admin", ADMIN, ROOT_UNIT)
    return token


def casetrail_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from cli.main import main; main()", *args]


def background_commands() -> dict[str, list[str]]:
    """The worker and cron commands."""
    return {name: casetrail_command(name) for name in ("worker", "cron")}


@click.command("up")
@click.option(
    "--port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Port to listen on (default: the port of $CASETRAIL_BIND, else $PORT, else 5000).",
)
@click.option(
    "--host",
    default=None,
    help="Address to listen on (default: the host of $CASETRAIL_BIND, else 127.0.0.1; "
    "0.0.0.0 in a container).",
)
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded data lives (default: $CASETRAIL_DATA_DIR or ./var).",
)
def up(port: int | None, host: str | None, data_dir: Path | None) -> None:
    """Runs web, worker and cron in the foreground; Ctrl-C stops them all."""
    configure()
    settings = Settings.from_env()
    if data_dir is not None:
        settings = settings.with_(data_dir=data_dir.resolve())
    default_host, default_port = bind_address(os.environ.get("CASETRAIL_BIND"))
    host, port = host or default_host, port or default_port
    check_bindable(host, port)
    env = dict(os.environ)
    env["CASETRAIL_DATA_DIR"] = str(settings.data_dir)
    env["CASETRAIL_BIND"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    ct = bootstrap(settings)
    try:
        token = first_admin(ct)
    finally:
        ct.close()
    shown_token = f"admin token (shown once, keep it): {token}" if token else None

    supervisor = Supervisor(env)
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    redis_url = settings.redis_url
    if not redis_url:
        keeper = Keeper(settings.data_dir, supervisor)
        keeper.start()
        supervisor.guards.append(keeper.check)
        redis_url = f"unix://{socket_path(settings.data_dir)}"
    env["CASETRAIL_REDIS_URL"] = redis_url
    web = [sys.executable, "-m", "gunicorn", "--config", "python:web.gunicorn_conf"]
    supervisor.start("web", [*web, "web.app:create_app()"])
    # Worker and cron are crash-safe: when `up` dies they go at once (SIGKILL).
    for name, command in background_commands().items():
        supervisor.start(name, command, death_signal=signal.SIGKILL)

    if not wait_until_healthy(supervisor, host, port, timeout=STARTUP_TIMEOUT):
        supervisor.stopping = True
        supervisor.terminate()
        if shown_token:  # the admin exists now: its token must not be lost
            click.echo(shown_token)
        if supervisor.status:
            click.echo(
                f"casetrail up: the web process did not answer on {host}:{port}; "
                "stopped (its log is above).",
                err=True,
            )
        sys.exit(supervisor.status)
    # From now on a web process that dies (a crash, a kill -9) is restarted like the
    # others, until it keeps dying at start.
    supervisor.restart_essential = True
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1") else host
    click.echo(f"casetrail is up at http://{shown}:{port}/api/v1 (docs: /api/v1/docs)")
    click.echo(f"console: http://{shown}:{port}/console/ (sign in with a user's token)")
    click.echo(f"data: {settings.data_dir if settings.backend == 'sqlite' else settings.backend}")
    click.echo(f"redis: {redis_url} (e.g. rq info -u {redis_url})")
    if shown_token:
        click.echo(shown_token)
    click.echo("Ctrl-C stops web, worker and cron.")
    sys.stdout.flush()
    status = supervisor.wait()
    click.echo("casetrail stopped.")
    sys.exit(status)
