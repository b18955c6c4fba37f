"""Chaos campaigns against a real `casetrail up` under append load (issue 21).

    .venv/bin/python -m bench.chaos [--short] [--rounds N] [--campaigns web,worker,...]

Starts `casetrail up` (SQLite, embedded Redis) on a fresh data directory — on a small tmpfs
when this process may mount one (root), so that the disk can be filled — and, for each
campaign, runs appending clients (bench/system.py: every command with an Idempotency-Key,
retried with it after a connection error or a 503), injects the fault, ends it, waits until
appends succeed again, stops the load and waits until the projection lag is 0. Campaigns:

- web, worker, cron, redis: kill -9 of that child of `up` (gunicorn's master for web);
- redis-stop: SIGSTOP of the embedded redis-server, SIGCONT after --redis-stop seconds;
- slow: 64 connections each sending half a request body, held --slow seconds, while
  `/healthz` is probed;
- disk-full: a file fills the tmpfs, removed after --hold seconds (skipped without tmpfs).

When `up` is stopped, every case the clients wrote is read back from the store: lost =
acknowledged (201) commands absent; duplicated = stored events beyond the commands sent (an
idempotency-keyed retry applied twice). Prints, per campaign: acknowledged, lost,
duplicated, 5xx (other than the 503 storage_unavailable of disk-full), seconds until appends
succeed again, seconds from the fault's end until the lag is 0, seconds for the lag to
reach 0 once the load stopped. Loopback only; every loop is bounded; stops by itself.
With --json, the last line of the output is the results as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from uuid import UUID

from bench import workload
from bench.append import free_port
from bench.system import (
    CaseRecord,
    Load,
    Tokens,
    Up,
    casetrail_up,
    log,
    prepare,
    sqlite_settings,
    time_to_lag_zero,
)
from casetrail.bootstrap import bootstrap
from domain.case import CaseEvent

CAMPAIGNS = ("web", "worker", "cron", "redis", "redis-stop", "slow", "disk-full")
RECOVERY_TIMEOUT = 90.0
EXPECTED_5XX = {"disk-full": {"503 storage_unavailable"}}


@dataclass
class Outcome:
    campaign: str
    round: int
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected_5xx: int = 0
    expected_5xx: int = 0
    connection_errors: int = 0
    appends_recovered_s: float | None = None  # after the fault began (or ended, if long)
    lag_zero_after_fault_s: float | None = None  # from the fault's end
    lag_drain_s: float | None = None  # from the load's stop
    note: str = ""
    records: list[CaseRecord] = field(default_factory=list, repr=False)


# --- faults --------------------------------------------------------------------------------


def kill_child(words: str) -> Callable[[Up, argparse.Namespace], str]:
    def fault(up: Up, args: argparse.Namespace) -> str:
        pids = up.find(words)
        if not pids:
            return f"no child of up matching {words!r}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return f"killed -9 {pids}"

    return fault


def stop_redis(up: Up, args: argparse.Namespace) -> str:
    pids = up.find("redis-server")
    if not pids:
        return "no redis-server child"
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(args.redis_stop)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    return f"SIGSTOP {pids} for {args.redis_stop:.0f} s"


def slow_clients(up: Up, args: argparse.Namespace) -> str:
    head = (
        f"POST /api/v1/cases HTTP/1.1\r\nHost: 127.0.0.1:{up.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        '{"kind": "dispute", "unit": '
    ).encode()
    sockets: list[socket.socket] = []
    try:
        for _ in range(64):
            sock = socket.create_connection(("127.0.0.1", up.port), timeout=5)
            sock.sendall(head)
            sockets.append(sock)
        answered, worst = 0, 0.0
        deadline = time.monotonic() + args.slow
        probes = 0
        while time.monotonic() < deadline:
            probes += 1
            t0 = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", up.port), timeout=5) as probe:
                    probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if probe.recv(12).startswith(b"HTTP/1.1 200"):
                        answered += 1
            except OSError:
                pass
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.2)
    finally:
        for sock in sockets:
            sock.close()
    return f"64 half requests; /healthz answered {answered}/{probes}, slowest {worst:.2f} s"


def disk_full(up: Up, args: argparse.Namespace) -> str:
    if not args.tmpfs:
        return "skipped: no tmpfs (mount needs root)"
    filler = up.data_dir / "filler"
    written = 0
    chunk = b"\0" * (1 << 20)
    try:
        with filler.open("wb") as out:
            for _ in range(args.tmpfs_mb + 8):  # bounded: the tmpfs is smaller
                out.write(chunk)
                out.flush()
                written += 1
    except OSError:
        pass
    time.sleep(args.hold)
    filler.unlink(missing_ok=True)
    return f"filled the tmpfs ({written} MiB) for {args.hold:.0f} s"


FAULTS: dict[str, Callable[[Up, argparse.Namespace], str]] = {
    "web": kill_child("gunicorn"),
    "worker": kill_child("main() worker"),
    "cron": kill_child("main() cron"),
    "redis": kill_child("redis-server"),
    "redis-stop": stop_redis,
    "slow": slow_clients,
    "disk-full": disk_full,
}


# --- one campaign --------------------------------------------------------------------------


def campaign(
    up: Up,
    tokens: Tokens,
    name: str,
    number: int,
    args: argparse.Namespace,
    restart: Callable[[], Up],
) -> Outcome:
    """One fault under load. `up` restarts whichever child was killed (web included); if
    `up` itself exits, the note says so, `restart` starts it again on the same port, and
    the recovery counts that restart."""
    outcome = Outcome(name, number)
    load = Load(up.base, tokens.caseworker, args.clients).start()
    time.sleep(args.warmup)
    began = time.monotonic()
    outcome.note = FAULTS[name](up, args)
    ended = time.monotonic()
    # Appends succeed again: a success after the last failure, then a quiet second.
    recovered_at: float | None = None
    deadline = ended + RECOVERY_TIMEOUT
    while time.monotonic() < deadline:
        if up.process.poll() is not None:
            outcome.note += f"; casetrail up exited ({up.process.returncode}), restarted"
            up = restart()
        with load.lock:
            failures = [t for t in load.failures if t >= began]
            last_failure = max(failures, default=began)
            after = [t for t in load.successes if t > last_failure]
        if after and time.monotonic() - last_failure > 1.0:
            recovered_at = after[0] if failures else began
            break
        time.sleep(0.1)
    time.sleep(args.settle)
    load.stop()
    stopped = time.monotonic()
    if recovered_at is not None:
        outcome.appends_recovered_s = max(0.0, recovered_at - began)
    _, drain = time_to_lag_zero(up.base, tokens.supervisor, RECOVERY_TIMEOUT)
    if drain is not None:
        outcome.lag_drain_s = drain
        outcome.lag_zero_after_fault_s = stopped + drain - ended
    outcome.acknowledged = load.acknowledged
    outcome.connection_errors = load.connection_errors
    expected = EXPECTED_5XX.get(name, set())
    for code, count in load.codes.items():
        if code in expected:
            outcome.expected_5xx += count
        else:
            outcome.unexpected_5xx += count
    if load.codes:
        outcome.note += "; " + ", ".join(f"{n} × {code}" for code, n in sorted(load.codes.items()))
    outcome.records = load.cases
    return outcome


def check_store(data_dir: Path, outcomes: list[Outcome]) -> None:
    """Lost and duplicated, read back from the store once `up` has stopped."""
    ct = bootstrap(sqlite_settings(data_dir))
    try:
        events = ct.reads.app.events
        for outcome in outcomes:
            for record in outcome.records:
                if record.case_id is None:
                    continue
                stored = [
                    type(e).__name__
                    for e in events.get(UUID(record.case_id))
                    if isinstance(e, CaseEvent)
                ]
                acked = record.sent[: record.acknowledged]
                same = 0
                while same < len(acked) and same < len(stored) and stored[same] == acked[same]:
                    same += 1
                outcome.lost += len(acked) - same
                outcome.duplicated += max(0, len(stored) - len(record.sent))
    finally:
        ct.close()


# --- the command ---------------------------------------------------------------------------


@contextmanager
def data_directory(args: argparse.Namespace) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="casetrail-chaos-", dir="/var/tmp"))
    data = root / "var"
    data.mkdir()
    args.tmpfs = False
    if not args.no_tmpfs:
        mount = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={args.tmpfs_mb}m", "tmpfs", str(data)],
            capture_output=True,
            text=True,
        )
        args.tmpfs = mount.returncode == 0
        if not args.tmpfs:
            log(f"chaos: no tmpfs ({mount.stderr.strip()[:100]}); disk-full is skipped")
    try:
        yield data
    finally:
        if args.tmpfs:
            subprocess.run(["umount", "-l", str(data)], check=False)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def room_left(data: Path) -> str | None:
    """A warning when the run's own data has used most of the tmpfs: a disk that fills by
    itself makes every later campaign a disk-full one."""
    stats = os.statvfs(data)
    used = 1 - stats.f_bavail / stats.f_blocks
    if used < 0.5:
        return None
    return f"the tmpfs is {used:.0%} used by the run's own data: use a larger --tmpfs-mb"


def report(outcomes: list[Outcome]) -> str:
    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f}"

    lines = [
        f"{'campaign':<11} {'round':>5} {'acked':>6} {'lost':>4} {'dup':>4} {'5xx':>4} "
        f"{'exp503':>6} {'connerr':>7} {'appends s':>9} {'lag0 s':>7} {'drain s':>7}  note"
    ]
    for o in outcomes:
        lines.append(
            f"{o.campaign:<11} {o.round:>5} {o.acknowledged:>6} {o.lost:>4} {o.duplicated:>4} "
            f"{o.unexpected_5xx:>4} {o.expected_5xx:>6} {o.connection_errors:>7} "
            f"{seconds(o.appends_recovered_s):>9} {seconds(o.lag_zero_after_fault_s):>7} "
            f"{seconds(o.lag_drain_s):>7}  {o.note}"
        )
    total = sum(o.acknowledged for o in outcomes)
    lines.append(
        f"total: {total} acknowledged, {sum(o.lost for o in outcomes)} lost, "
        f"{sum(o.duplicated for o in outcomes)} duplicated, "
        f"{sum(o.unexpected_5xx for o in outcomes)} unexpected 5xx"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="one round, short faults (≤ 60 s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--campaigns", default=",".join(CAMPAIGNS))
    parser.add_argument("--clients", type=int, default=4, help="appending clients (threads)")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before each fault, s")
    parser.add_argument("--settle", type=float, default=3.0, help="load after recovery, s")
    parser.add_argument("--redis-stop", type=float, default=30.0, help="SIGSTOP of Redis, s")
    parser.add_argument("--slow", type=float, default=10.0, help="slow clients held, s")
    parser.add_argument("--hold", type=float, default=5.0, help="disk kept full, s")
    parser.add_argument(
        "--tmpfs-mb",
        type=int,
        default=2048,
        help="the data directory's tmpfs: room for the run's own data (a quiet 2-core machine "
        "writes about 1.4 MB/s of store; 256 MB was full by the second round), which the "
        "disk-full campaign fills for --hold seconds",
    )
    parser.add_argument("--no-tmpfs", action="store_true")
    parser.add_argument("--json", action="store_true", help="last line: the results as JSON")
    args = parser.parse_args(argv)
    if args.short:
        args.rounds, args.clients, args.warmup, args.settle = 1, 3, 1.0, 0.5
        args.redis_stop, args.slow, args.hold, args.tmpfs_mb = 5.0, 2.0, 2.0, 64
    names = [n.strip() for n in args.campaigns.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        parser.error(f"unknown campaigns {unknown}; choose from {', '.join(CAMPAIGNS)}")
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with data_directory(args) as data:
        tokens = prepare(data)
        port = free_port()
        with ExitStack() as stack:
            up = stack.enter_context(casetrail_up(data, port))
            current = [up]

            def restart() -> Up:
                # As an outer supervisor (systemd, a container runtime) would: same port.
                stack.close()
                current[0] = stack.enter_context(casetrail_up(data, port))
                return current[0]

            log(f"chaos: casetrail up at {up.base}, data on {'tmpfs' if args.tmpfs else 'disk'}")
            for number in range(1, args.rounds + 1):
                for name in names:
                    if name == "disk-full" and not args.tmpfs:
                        outcomes.append(Outcome(name, number, note="skipped: no tmpfs"))
                        continue
                    log(f"chaos: round {number}: {name}")
                    if args.tmpfs and (note := room_left(data)):
                        log(f"chaos: {note}")
                    outcomes.append(campaign(up, tokens, name, number, args, restart))
                    up = current[0]
        check_store(data, outcomes)
    print(report(outcomes))
    print(f"({time.monotonic() - started:.0f} s; workload unit {workload.UNIT})")
    if args.json:
        rows = []
        for o in outcomes:
            row = asdict(o)
            row.pop("records")
            rows.append(row)
        print(json.dumps(rows))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
