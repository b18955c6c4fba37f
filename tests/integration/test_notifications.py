"""Webhook notifications of deadline warnings and breaches (issue 16): a real HTTP receiver on
127.0.0.1 gets each record signed, with a stable delivery id, retried with backoff, and at
least once even when the delivering worker is killed mid-delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from domain.case import Actor
from domain.clock import FixedClock, cst_date
from projections import outbox
from workers.cron import register
from workers.deadlines import full_sweep_job
from workers.notify import (
    RELEASED,
    WebhookConfig,
    attempt,
    connections,
    deliver,
    notify,
    notify_job,
)
from workers.sweeps import sweeper_of

STREET_WORKER = Actor(user_id="u_street", role="caseworker", unit="320102001")
SECRET = b"test-webhook-secret"
NAME, ID_NUMBER = "趙某某", "320102199203034567"


def reception(today: date, decided_days_ago: int) -> dict[str, Any]:
    decided = (today - timedelta(days=decided_days_ago)).isoformat()
    return {
        "person": {
            "name": NAME,
            "id_number": ID_NUMBER,
            "gender": "male",
            "birth_date": "1992-03-03",
            "household_address": "江蘇省南京市玄武區梅園新村街道大悲巷2號",
            "residence_address": "江蘇省南京市玄武區梅園新村街道大悲巷2號",
        },
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": decided,
        "offence_date": "2025-08-01",
        "term_start": decided,
        "term_end": (today + timedelta(days=200)).isoformat(),
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }


class Receiver:
    """An HTTP receiver in a thread: answers each request with the next planned status
    (200 once the plan is used up), or holds it while `hold` is set."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.plan: list[int] = []
        self.hold = threading.Event()
        self.arrived = threading.Event()
        self.lock = threading.Lock()
        self.slow = 0.0  # seconds each answer takes
        self.in_progress = self.most_at_once = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append({"headers": dict(self.headers), "body": raw})
                    status = receiver.plan.pop(0) if receiver.plan else 200
                    receiver.in_progress += 1
                    receiver.most_at_once = max(receiver.most_at_once, receiver.in_progress)
                receiver.arrived.set()
                time.sleep(receiver.slow)
                while receiver.hold.is_set():
                    time.sleep(0.02)
                with receiver.lock:
                    receiver.in_progress -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.hold.clear()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def config(url: str, **overrides: Any) -> WebhookConfig:
    return WebhookConfig(
        **{"url": url, "secret": SECRET, "backoff": 0.05, "timeout": 5.0, **overrides}
    )


def breached(ct: Casetrail, clock: FixedClock) -> str:
    """A correction case whose report-in window closed two days ago, swept: one breach."""
    today = cst_date(clock.now())
    case_id = ct.service.open_case(
        STREET_WORKER, "correction", "320102001", "CorrectionSubjectReceived", reception(today, 12)
    ).id
    report = sweeper_of(ct).sweep([case_id])
    assert report.breaches == 1
    return case_id


def many_breached(ct: Casetrail, clock: FixedClock, count: int) -> list[str]:
    """`count` such cases, swept at once: a burst of `count` breaches."""
    today = cst_date(clock.now())
    case_ids = [
        ct.service.open_case(
            STREET_WORKER,
            "correction",
            "320102001",
            "CorrectionSubjectReceived",
            reception(today, 12),
        ).id
        for _ in range(count)
    ]
    assert sweeper_of(ct).sweep(case_ids).breaches == count
    return case_ids


def by_delivery(receiver: Receiver) -> dict[str, set[bytes]]:
    """The bodies the receiver got, by delivery id."""
    bodies: dict[str, set[bytes]] = {}
    for request in receiver.received:
        bodies.setdefault(request["headers"]["X-Casetrail-Delivery"], set()).add(request["body"])
    return bodies


def verify(request: dict[str, Any]) -> dict[str, Any]:
    """The receiver's check, as README shows it."""
    headers, raw = request["headers"], request["body"]
    signed = headers["X-Casetrail-Timestamp"].encode() + b"." + raw
    expected = "sha256=" + hmac.new(SECRET, signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, headers["X-Casetrail-Signature"])
    assert abs(time.time() - int(headers["X-Casetrail-Timestamp"])) < 300
    return dict(json.loads(raw))


def test_each_breach_is_delivered_signed_without_personal_data(
    casetrail: Casetrail, clock: FixedClock, receiver: Receiver
) -> None:
    case_id = breached(casetrail, clock)
    report = notify(casetrail, config(receiver.url))
    assert report == {"added": 1, "delivered": 1, "retried": 0, "failed": 0}
    [request] = receiver.received
    body = verify(request)
    assert body["case"] == case_id
    assert (body["unit"], body["deadline"], body["state"]) == ("320102001", "report_in", "breach")
    assert body["due"] and body["detected_at"]
    assert body["delivery"] == request["headers"]["X-Casetrail-Delivery"]
    assert NAME not in request["body"].decode() and ID_NUMBER not in request["body"].decode()
    # Sweeping and notifying again neither records nor delivers anything twice.
    assert sweeper_of(casetrail).sweep([case_id]).breaches == 0
    assert notify(casetrail, config(receiver.url)) == {
        "added": 0,
        "delivered": 0,
        "retried": 0,
        "failed": 0,
    }
    assert len(receiver.received) == 1
    assert outbox.counts(casetrail.db) == {"pending": 0, "delivered": 1, "failed": 0}


def test_a_forged_signature_does_not_verify(
    casetrail: Casetrail, clock: FixedClock, receiver: Receiver
) -> None:
    breached(casetrail, clock)
    notify(casetrail, WebhookConfig(url=receiver.url, secret=b"another secret"))
    with pytest.raises(AssertionError):
        verify(receiver.received[0])


def test_a_receiver_failing_twice_gets_it_on_the_third_attempt_with_the_same_id(
    casetrail: Casetrail, clock: FixedClock, receiver: Receiver
) -> None:
    breached(casetrail, clock)
    receiver.plan = [500, 500]
    hook = config(receiver.url, backoff=0.2)
    first = notify(casetrail, hook)
    # On a loaded machine the second attempt may fall due within the same call.
    assert first["delivered"] == 0 and first["retried"] in (1, 2)
    [row], _ = outbox.listing(casetrail.db, outbox.PENDING, 0, 10)
    assert row["last_error"] == "HTTP 500" and row["attempts"] == first["retried"]
    deadline = time.monotonic() + 10
    while len(receiver.received) < 3 and time.monotonic() < deadline:
        deliver(casetrail.db, hook)
        time.sleep(0.02)
    assert len(receiver.received) == 3
    ids = {r["headers"]["X-Casetrail-Delivery"] for r in receiver.received}
    assert len(ids) == 1
    [row], _ = outbox.listing(casetrail.db, outbox.DELIVERED, 0, 10)
    assert row["attempts"] == 3 and row["delivery_id"] in ids
    # Backoff doubles: the second retry waited longer than the first.
    times = [float(r["headers"]["X-Casetrail-Timestamp"]) for r in receiver.received]
    assert times == sorted(times)


def test_a_row_is_given_up_after_the_retry_period(
    casetrail: Casetrail, clock: FixedClock, receiver: Receiver
) -> None:
    breached(casetrail, clock)
    receiver.plan = [503]
    report = notify(casetrail, config(receiver.url, give_up=0.0))
    assert report["failed"] == 1
    assert outbox.counts(casetrail.db) == {"pending": 0, "delivered": 0, "failed": 1}
    assert WebhookConfig(url="x", secret=b"s").delay(1) == 10.0
    assert WebhookConfig(url="x", secret=b"s").delay(30) == 3600.0


def notify_process(settings: Settings, receiver: Receiver, **extra: str) -> subprocess.Popen[bytes]:
    """The notify job in a process of its own (to be killed), on this store, posting to
    `receiver` with a one-second lease."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
    env.update(
        CASETRAIL_DATA_DIR=str(settings.data_dir),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        CASETRAIL_WEBHOOK_URL=receiver.url,
        CASETRAIL_WEBHOOK_SECRET=SECRET.decode(),
        CASETRAIL_WEBHOOK_LEASE_SECONDS="1",
        **extra,
    )
    if settings.database_url:
        env["CASETRAIL_DATABASE_URL"] = settings.database_url
        env["CASETRAIL_DATABASE_SCHEMA"] = settings.database_schema or ""
    return subprocess.Popen(
        [sys.executable, "-c", "from workers.notify import notify_job; notify_job()"], env=env
    )


def test_a_worker_killed_mid_delivery_loses_nothing(
    casetrail: Casetrail, settings: Settings, clock: FixedClock, receiver: Receiver
) -> None:
    breached(casetrail, clock)
    outbox.fill(casetrail.app, casetrail.db, time.time())
    receiver.hold.set()
    worker = notify_process(settings, receiver)
    try:
        assert receiver.arrived.wait(60), "the worker never posted"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    receiver.hold.clear()
    assert outbox.counts(casetrail.db)["pending"] == 1  # claimed, never marked
    # Another worker takes the row over once the dead one's lease lapsed.
    deadline = time.monotonic() + 15
    while outbox.counts(casetrail.db)["delivered"] == 0 and time.monotonic() < deadline:
        deliver(casetrail.db, config(receiver.url))
        time.sleep(0.2)
    assert outbox.counts(casetrail.db)["delivered"] == 1
    ids = [r["headers"]["X-Casetrail-Delivery"] for r in receiver.received]
    assert len(ids) == 2 and len(set(ids)) == 1
    verify(receiver.received[-1])


def test_a_burst_goes_out_several_posts_at_once_each_record_once(
    casetrail: Casetrail, clock: FixedClock, receiver: Receiver
) -> None:
    """Against a receiver that takes 0.3 s an answer, 12 records one after the other would
    take 3.6 s; four at a time, the POSTs overlap, never more than four."""
    case_ids = many_breached(casetrail, clock, 12)
    receiver.slow = 0.3
    report = notify(casetrail, config(receiver.url, concurrency=4))
    assert report == {"added": 12, "delivered": 12, "retried": 0, "failed": 0}
    assert 2 <= receiver.most_at_once <= 4
    bodies = by_delivery(receiver)
    assert len(receiver.received) == 12 and all(len(b) == 1 for b in bodies.values())
    assert {verify(r)["case"] for r in receiver.received} == set(case_ids)
    assert outbox.counts(casetrail.db) == {"pending": 0, "delivered": 12, "failed": 0}


def test_failures_in_a_burst_are_retried_each_with_its_own_backoff(
    casetrail: Casetrail, clock: FixedClock, receiver: Receiver
) -> None:
    many_breached(casetrail, clock, 6)
    receiver.plan = [503, 503, 503]
    hook = config(receiver.url, concurrency=3, backoff=1.0)
    notify(casetrail, hook)
    deadline = time.monotonic() + 15
    while outbox.counts(casetrail.db)["delivered"] < 6 and time.monotonic() < deadline:
        deliver(casetrail.db, hook)
        time.sleep(0.05)
    assert outbox.counts(casetrail.db) == {"pending": 0, "delivered": 6, "failed": 0}
    bodies = by_delivery(receiver)
    assert len(bodies) == 6 and all(len(b) == 1 for b in bodies.values())
    rows, _ = outbox.listing(casetrail.db, outbox.DELIVERED, 0, 10)
    assert sorted(row["attempts"] for row in rows) == [1, 1, 1, 2, 2, 2]
    assert len(receiver.received) == 9


def test_a_row_whose_lease_lapsed_before_its_turn_is_handed_back_not_posted(
    casetrail: Casetrail, clock: FixedClock, receiver: Receiver
) -> None:
    """A row that waited for a thread past its lease may be another worker's by now."""
    breached(casetrail, clock)
    outbox.fill(casetrail.app, casetrail.db, time.time())
    [row] = outbox.claim(casetrail.db, time.time(), 0.0, 10)
    hook = config(receiver.url)
    with connections(hook) as pool:
        assert attempt(pool, hook, row) is RELEASED
    assert receiver.received == []
    outbox.settle(casetrail.db, [], [row])
    [pending], _ = outbox.listing(casetrail.db, outbox.PENDING, 0, 10)
    assert pending["attempts"] == 0
    assert deliver(casetrail.db, hook)["delivered"] == 1
    assert len(receiver.received) == 1


def test_a_worker_killed_mid_burst_loses_nothing_and_repeats_only_what_it_had_posted(
    casetrail: Casetrail, settings: Settings, clock: FixedClock, receiver: Receiver
) -> None:
    many_breached(casetrail, clock, 12)
    outbox.fill(casetrail.app, casetrail.db, time.time())
    receiver.hold.set()
    worker = notify_process(settings, receiver, CASETRAIL_WEBHOOK_CONCURRENCY="4")
    try:
        deadline = time.monotonic() + 60
        while len(receiver.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.received) == 4, "the worker never had four POSTs in flight"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    posted_by_the_dead = set(by_delivery(receiver))
    receiver.hold.clear()
    assert outbox.counts(casetrail.db)["pending"] == 12
    deadline = time.monotonic() + 15
    while outbox.counts(casetrail.db)["delivered"] < 12 and time.monotonic() < deadline:
        deliver(casetrail.db, config(receiver.url))
        time.sleep(0.2)
    assert outbox.counts(casetrail.db) == {"pending": 0, "delivered": 12, "failed": 0}
    bodies = by_delivery(receiver)
    assert len(bodies) == 12 and all(len(b) == 1 for b in bodies.values())
    counts = {
        d: sum(r["headers"]["X-Casetrail-Delivery"] == d for r in receiver.received) for d in bodies
    }
    assert {d for d, n in counts.items() if n > 1} == posted_by_the_dead
    assert len(receiver.received) == 16


def test_cron_schedules_the_notify_job_every_few_seconds_and_a_daily_full_sweep(
    settings: Settings,
) -> None:
    scheduled: dict[str, tuple[object, int]] = {}
    register(
        lambda func, queue, **options: scheduled.setdefault(
            options["name"], (func, options["interval"])
        ),
        settings,
    )
    assert scheduled[f"{settings.queue_name}:deadline-notify"] == (notify_job, 5)
    assert scheduled[f"{settings.queue_name}:deadline-full-sweep"] == (full_sweep_job, 86400)
