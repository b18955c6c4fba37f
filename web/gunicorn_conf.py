"""gunicorn settings for `web` (Procfile): threaded workers sized for a small machine.

The worker is gunicorn's `gthread` with two changes (web/worker.py): a keep-alive
connection's next request is served on the thread that answered the last one, and
connections arriving together are spread over the worker processes.

Environment: `PORT` (default 5000), `CASETRAIL_BIND` (overrides host:port),
`WEB_CONCURRENCY` (worker processes; default one per core, up to four),
`CASETRAIL_WEB_THREADS` (threads per worker).

Logs: one format with the worker and cron processes (workers/logs.py), gunicorn's own
lines and the access log included. Metrics: the worker processes count into files under
`<data dir>/metrics` (`PROMETHEUS_MULTIPROC_DIR`, emptied at start), which `/metrics` sums.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from casetrail.presence import require_store
from domain.errors import CasetrailError
from workers.logs import logging_config


def metrics_dir() -> str:
    """Where the worker processes keep their counts: set before prometheus-client is
    imported anywhere (it chooses its multiprocess mode at import)."""
    try:
        data_dir = Settings.from_env().data_dir
    except CasetrailError:  # reported by `on_starting`
        data_dir = Path(os.environ.get("CASETRAIL_DATA_DIR") or "./var").resolve()
    return str(data_dir / "metrics")


os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir())

from prometheus_client import multiprocess  # noqa: E402  (after the variable above)

bind = os.environ.get("CASETRAIL_BIND") or f"127.0.0.1:{os.environ.get('PORT', '5000')}"


def default_workers() -> int:
    """One process per core, up to four: a process runs Python on one core at a time (the
    GIL), and an append spends more of its time in Python than in the store. On SQLite the
    processes' writers queue at a file lock beside the database (`writer_lock`), not at
    SQLite's busy handler, which sleeps 1 to 100 ms between tries (docs/append-path.md).
    PostgreSQL takes concurrent writers."""
    return min(4, os.cpu_count() or 1)


# Requests mostly wait on the store (fsync on commit), so threads carry the concurrency.
workers = int(os.environ.get("WEB_CONCURRENCY") or default_workers())
worker_class = "web.worker.KeepAliveThreadWorker"
threads = int(os.environ.get("CASETRAIL_WEB_THREADS") or 4)
timeout = 30
graceful_timeout = 10
keepalive = 5
# No query strings in the access log: a search term (`q`) may be a person's name. The
# logger writes `address "METHOD /path" status bytes Nms` (web/access_log.py).
accesslog = os.environ.get("CASETRAIL_ACCESS_LOG", "-") or None  # "" turns it off
logger_class = "web.access_log.AccessLogger"
errorlog = "-"
loglevel = os.environ.get("CASETRAIL_LOG_LEVEL", "info")
logconfig_dict = logging_config(accesslog)
# Request line and headers are bounded too (the body by MAX_CONTENT_LENGTH in the app).
limit_request_line = 8190
limit_request_fields = 100
# One shared control socket per host would collide between instances (tests, `casetrail up`).
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Checks the settings and that the store exists (`casetrail init` makes one), then
    creates what is missing in it once, before the workers race to do it. A wrong setting
    or no store stops the server with one line each, `error (code): ...`, exit status 2."""
    try:
        settings = Settings.from_env()
        require_store(settings)
        bootstrap(settings).close()
    except CasetrailError as error:
        for line in error.message.splitlines():
            print(f"error ({error.code}): {line}", file=sys.stderr)
        sys.exit(2)
    # Counts of an earlier run would be summed with this one's.
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    for counts in path.glob("*.db"):
        counts.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges are dropped; its counters keep counting in the sum."""
    multiprocess.mark_process_dead(worker.pid)
