"""Durability: clients keep appending while the web process is `kill -9`ed at random moments.

After the last restart, every event whose 201 a client received is in its stream at the
version and position it was answered with, no stream has a gap, and every event is
chained: nothing half-written shows.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from casetrail.config import Settings
from domain.clock import SystemClock, cst_date
from tests.dispute_builders import registration
from tests.web.conftest import INSIDE, Service, Tokens, check

# Sessions fall between the registration (the service's today, in China) and today.
TODAY = cst_date(SystemClock().now()).isoformat()

KILLS = 20
CLIENTS = 4


@dataclass(frozen=True)
class Ack:
    case_id: str
    version: int
    position: int
    key: str


class Client(threading.Thread):
    """Appends hearings to its own case and to a shared one, retrying each command with
    its idempotency key until it gets an answer."""

    def __init__(self, url: str, token: str, own: str, shared: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.own, self.shared, self.stop = url, own, shared, stop
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.acks: list[Ack] = []
        self.refusals: list[str] = []

    def run(self) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            case_id = self.shared if n % 3 == 0 else self.own
            key = f"{self.name}-{n}-{uuid.uuid4().hex[:6]}"
            body = {"type": "HearingHeld", "data": {"held_on": TODAY, "notes": f"n{n}"}}
            while not self.stop.is_set():
                try:
                    answer = self.session.post(
                        f"{self.url}/cases/{case_id}/events",
                        json=body,
                        headers={"Idempotency-Key": key},
                        timeout=5,
                    )
                except requests.RequestException:
                    time.sleep(0.02)  # the service is down: retry the same command
                    continue
                if answer.status_code == 201:
                    event = answer.json()
                    self.acks.append(Ack(case_id, event["version"], event["position"], key))
                else:
                    self.refusals.append(answer.text)
                break


@pytest.mark.slow
def test_every_acknowledged_event_survives_kill_9_of_the_web_process(
    settings: Settings, tokens: Tokens, tmp_path: Path
) -> None:
    # One web worker: a kill -9 takes master and worker down alike, and restarts stay quick.
    service = Service(settings, tmp_path / "gunicorn.log", workers=1)
    # One client appending as fast as it can: a load test, not the per-token rate limit's.
    service.env["CASETRAIL_RATE_LIMIT"] = ""
    service.start()
    headers = tokens.headers("caseworker")
    body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": registration()}

    def open_case() -> str:
        return str(
            check(requests.post(f"{service.url}/cases", json=body, headers=headers), 201)["id"]
        )

    shared = open_case()
    stop = threading.Event()
    clients = [
        Client(service.url, tokens.by_role["caseworker"], open_case(), shared, stop)
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    rng = random.Random(4)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.1, 0.45))
            service.kill()
            service.start()
        time.sleep(0.3)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=10)

    try:
        acks = [ack for client in clients for ack in client.acks]
        assert len(acks) > KILLS, "the clients hardly got anything through"
        assert not [text for client in clients for text in client.refusals]
        auditor = tokens.headers("auditor")
        for case_id in {shared, *(client.own for client in clients)}:
            events = check(
                requests.get(f"{service.url}/cases/{case_id}/history", headers=auditor), 200
            )["events"]
            assert [event["version"] for event in events] == list(range(1, len(events) + 1))
            state = check(requests.get(f"{service.url}/cases/{case_id}", headers=auditor), 200)
            assert state["version"] == len(events) and state["hearings"] == len(events) - 1
            assert all(event["hash"] and event["position"] for event in events)
            assert events[0]["prev_hash"] == "0" * 64
            assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(events))
            stored = {
                (event["version"], event["position"], event["idempotency_key"]) for event in events
            }
            for ack in acks:
                if ack.case_id == case_id:
                    assert (ack.version, ack.position, ack.key) in stored, ack
            # A command retried across a crash appended once.
            keys = [event["idempotency_key"] for event in events[1:]]
            assert len(keys) == len(set(keys))
    finally:
        service.stop()
