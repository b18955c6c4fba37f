"""Child processes that never outlive their parent, and the supervisor of `casetrail up`.

A child started with `die_with_parent` asks the kernel (Linux `prctl(PR_SET_PDEATHSIG)`)
for a signal when the thread that started it ends, so a `kill -9` of the parent takes the
children with it: none is left holding the port or the queue. The setting survives the
`exec` of the child's program (gunicorn, redis-server) and is not inherited by its own
children; gunicorn's workers leave when they see their master gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import click

from domain.errors import CasetrailError

PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 15.0
# A child that dies is restarted after this pause, doubled while it keeps dying young.
RESTART_PAUSE = 0.5
RESTART_PAUSE_MAX = 10.0
# A child that ran this long is healthy again: its next restart waits RESTART_PAUSE.
HEALTHY_AFTER = 30.0
# The essential child (web) that dies young this many times in a row is not restarted
# again: whatever kills it at start (a setting, the port, the store) will not go away by
# itself in the ~15 s of pauses that took, and `up` stops, saying why.
MAX_YOUNG_DEATHS = 5


# Loaded before any fork: the function run between fork and exec must not load libraries
# or take locks another thread may hold.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn`: the child gets `sig` when its parent (thread) ends."""
    parent = os.getpid()

    def arrange() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody sends the signal.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return arrange


class Child:
    """One supervised command: how to start it and how it dies with `up`."""

    def __init__(self, name: str, command: list[str], *, death_signal: int) -> None:
        self.name, self.command, self.death_signal = name, command, death_signal
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.pause = RESTART_PAUSE
        self.restart_at: float | None = None
        self.restart = True
        # Deaths in a row, each within HEALTHY_AFTER of its start.
        self.young_deaths = 0


class Supervisor:
    """Starts child processes in their own sessions and stops them together.

    A child that exits (web, worker, cron, the embedded Redis) is restarted after a short
    pause, longer while it keeps dying young; what it left in its process group (a killed
    gunicorn master's workers, which hold the port) is killed first. The essential child
    (web) is not restarted before it has once started well (`restart_essential`, set by
    `up` once it answers: a web process that cannot start stops `up` at once, with its
    log), nor after `MAX_YOUNG_DEATHS` deaths in a row, each soon after its start: then
    everything stops, and `up` says why. Every child dies with the supervisor, even after
    a `kill -9`.
    """

    def __init__(self, env: dict[str, str], *, essential: str = "web") -> None:
        self.env = env
        self.essential = essential
        self.restart_essential = False
        self.children: dict[str, Child] = {}
        self.stopping = False
        self.status = 0
        # Called every round: children the supervisor does not restart itself (Redis).
        self.guards: list[Callable[[], None]] = []

    def start(
        self,
        name: str,
        command: list[str],
        *,
        death_signal: int = signal.SIGTERM,
        restart: bool = True,
        **popen: Any,
    ) -> subprocess.Popen[bytes]:
        child = self.children.get(name) or Child(name, command, death_signal=death_signal)
        child.command, child.restart = command, restart
        self.children[name] = child
        child.process = subprocess.Popen(
            command,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent(death_signal),
            **popen,
        )
        child.started = time.monotonic()
        child.restart_at = None
        return child.process

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def exited(self, name: str) -> int | None:
        process = self.children[name].process
        return None if process is None else process.poll()

    def check(self) -> None:
        """One round: notices children that exited and restarts them when their pause is over."""
        now = time.monotonic()
        for guard in self.guards:
            guard()
        for name, child in list(self.children.items()):
            if self.stopping or child.process is None or not child.restart:
                continue
            code = child.process.poll()
            if code is None:
                continue
            if child.restart_at is None:
                # The rest of its group goes too: a killed gunicorn master's workers
                # would hold the port the next master binds.
                _signal_group(child.process.pid, signal.SIGKILL)
                if now - child.started >= HEALTHY_AFTER:
                    child.pause = RESTART_PAUSE
                    child.young_deaths = 0
                else:
                    child.young_deaths += 1
                if name == self.essential and not self.restart_essential:
                    click.echo(
                        f"casetrail up: {name} exited with status {code}; stopping", err=True
                    )
                    self.give_up()
                    return
                if name == self.essential and child.young_deaths >= MAX_YOUNG_DEATHS:
                    click.echo(
                        f"casetrail up: {name} exited with status {code}, {child.young_deaths} "
                        f"times in a row within {HEALTHY_AFTER:g} s of its start; not "
                        "restarting it again (its log is above); stopping",
                        err=True,
                    )
                    self.give_up()
                    return
                click.echo(
                    f"casetrail up: {name} exited with status {code}; restarting in "
                    f"{child.pause:g} s",
                    err=True,
                )
                child.restart_at = now + child.pause
                child.pause = min(RESTART_PAUSE_MAX, child.pause * 2)
            elif now >= child.restart_at:
                self.start(name, child.command, death_signal=child.death_signal)

    def give_up(self) -> None:
        self.status = 1
        self.stopping = True

    def wait(self) -> int:
        """Runs until a signal, or until it gives up on the essential process; returns the
        exit status."""
        while not self.stopping:
            time.sleep(0.1)
            self.check()
        self.terminate()
        return self.status

    def terminate(self) -> None:
        """SIGTERM to every child's process group, then SIGKILL to whatever is left."""
        running = [c.process for c in self.children.values() if c.process is not None]
        for process in running:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
            # Whatever the child left in its group (a worker of a killed master) goes too.
            _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def bind_address(bind: str | None) -> tuple[str, int]:
    """Host and port of a `CASETRAIL_BIND` (`host:port`, `[v6]:port`); 127.0.0.1:$PORT or
    5000 when unset or not a TCP address."""
    port = int(os.environ.get("PORT") or 5000)
    if not bind or "://" in bind or bind.startswith("unix:"):
        return "127.0.0.1", port
    host, _, number = bind.rpartition(":")
    if not host:
        return number or "127.0.0.1", port
    return host.strip("[]"), int(number) if number.isdigit() else port


def check_bindable(host: str, port: int) -> None:
    """Fails fast, with a clear refusal, when the web process could not listen there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CasetrailError(
                    f"port {port} on {host} is already in use by another process; stop it "
                    "or choose another port with --port",
                    code="port_in_use",
                ) from None
            raise CasetrailError(
                f"cannot listen on {host}:{port}: {error.strerror}", code="bind_failed"
            ) from None


def wait_until_healthy(supervisor: Supervisor, host: str, port: int, timeout: float) -> bool:
    """Supervises until the web process answers `/healthz` (True), or exits, or a signal
    comes, or `timeout` passes (False)."""
    local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    shown = f"[{local}]" if ":" in local else local
    url = f"http://{shown}:{port}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.check()
        if supervisor.stopping:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    supervisor.status = 1
    return False
