"""gunicorn settings for `web` (Procfile): threaded workers sized for a small machine.

Environment: `PORT` (default 5000), `CASETRAIL_BIND` (overrides host:port),
`WEB_CONCURRENCY` (worker processes; default one on SQLite, one per core up to four on
PostgreSQL), `CASETRAIL_WEB_THREADS` (threads per worker).
"""

from __future__ import annotations

import os
from typing import Any

from casetrail.config import Settings

bind = os.environ.get("CASETRAIL_BIND") or f"127.0.0.1:{os.environ.get('PORT', '5000')}"


def default_workers(backend: str) -> int:
    """SQLite has one writer per file: processes meet at its file lock, whose busy handler
    sleeps (1 to 100 ms), while the threads of one process queue for the writer without
    sleeping (docs/append-path.md). PostgreSQL takes concurrent writers, and one process per
    core keeps a small machine's cores busy."""
    if backend == "sqlite":
        return 1
    return min(4, os.cpu_count() or 1)


# Requests mostly wait on the store (fsync on commit), so threads carry the concurrency.
workers = int(os.environ.get("WEB_CONCURRENCY") or default_workers(Settings.from_env().backend))
worker_class = "gthread"
threads = int(os.environ.get("CASETRAIL_WEB_THREADS") or 4)
timeout = 30
graceful_timeout = 10
keepalive = 5
# No query strings in the access log: a search term (`q`) may be a person's name.
accesslog = os.environ.get("CASETRAIL_ACCESS_LOG", "-") or None  # "" turns it off
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("CASETRAIL_LOG_LEVEL", "info")
# Request line and headers are bounded too (the body by MAX_CONTENT_LENGTH in the app).
limit_request_line = 8190
limit_request_fields = 100
# One shared control socket per host would collide between instances (tests, `casetrail up`).
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Creates the tables and the seed units once, before the workers race to do it."""
    from casetrail.bootstrap import bootstrap

    bootstrap().close()
