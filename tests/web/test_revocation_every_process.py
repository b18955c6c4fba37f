"""Issue 14, done-when: a disabled user's and a rotated-away token are refused by every web
process within one second of the change. The real service (gunicorn, three workers) is hit
over fresh connections, from several threads at once, until every worker process has
answered: first each lets the token in (so a refusal is not an idle worker's luck), then,
from the moment the revoking request returns, each refuses it, and no request after the
revoke gets in. The access log's process id says which worker answered which request."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from casetrail.config import Settings
from tests.web.conftest import INSIDE, Service, Tokens, check

WORKERS = 3
WINDOW = 1.0  # seconds after the revoke in which every worker must have refused
PROBERS = 8  # threads probing at once: connections arriving together reach every worker


@dataclass(frozen=True)
class Probe:
    path: str
    sent: float  # time.monotonic() when the request left
    status: int
    code: str | None


@pytest.fixture
def logged_service(settings: Settings, tokens: Tokens, tmp_path: Path) -> Iterator[Service]:
    served = Service(settings, tmp_path / "gunicorn.log", workers=WORKERS)
    # The access log names the process of each request; no rate limit on the probes.
    served.env.update(CASETRAIL_ACCESS_LOG="-", CASETRAIL_RATE_LIMIT="")
    served.start()
    try:
        yield served
    finally:
        served.stop()


def worker_pids(service: Service) -> set[int]:
    assert service.process is not None
    master = service.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {
        int(pid) for pid in children if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    }


def probe(service: Service, token: str, until: float) -> list[Probe]:
    """Requests, each on a connection of its own, until `until` (monotonic seconds). Each
    asks for a case id of its own, so that its access-log line names the process."""
    answered: list[Probe] = []
    while time.monotonic() < until:
        path = f"/api/v1/cases/{uuid.uuid4()}"
        sent = time.monotonic()
        response = requests.get(
            service.url.removesuffix("/api/v1") + path,
            headers={"Authorization": f"Bearer {token}", "Connection": "close"},
            timeout=5,
        )
        code = response.json()["error"]["code"] if response.status_code >= 400 else None
        answered.append(Probe(path, sent, response.status_code, code))
    return answered


def probe_together(service: Service, token: str, seconds: float) -> list[Probe]:
    until = time.monotonic() + seconds
    with ThreadPoolExecutor(PROBERS) as pool:
        batches = list(pool.map(lambda _: probe(service, token, until), range(PROBERS)))
    return [p for batch in batches for p in batch]


def answered_by(service: Service, probes: list[Probe]) -> dict[str, int]:
    """Probe path → the pid of the worker that answered it (from the access log)."""
    wanted = {p.path for p in probes}
    found: dict[str, int] = {}
    deadline = time.monotonic() + 5
    line = re.compile(r'\[(\d+)\] gunicorn\.access: \S+ "GET (/api/v1/cases/[0-9a-f-]+)"')
    while time.monotonic() < deadline:  # a line is written just after its response
        for match in line.finditer(service.log.read_text(errors="replace")):
            if match.group(2) in wanted:
                found[match.group(2)] = int(match.group(1))
        if len(found) == len(wanted):
            break
        time.sleep(0.05)
    assert len(found) == len(wanted), "some probes are missing from the access log"
    return found


def admitted_everywhere(service: Service, token: str) -> None:
    """The token works in every worker process (404: let in, the case does not exist)."""
    pids = worker_pids(service)
    assert len(pids) == WORKERS, pids
    seen: set[int] = set()
    for _ in range(10):
        probes = probe_together(service, token, 0.5)
        assert {p.status for p in probes} == {404}, {(p.status, p.code) for p in probes}
        seen |= set(answered_by(service, probes).values())
        if seen == pids:
            return
    pytest.fail(f"workers {pids - seen} never answered")


@pytest.mark.parametrize("revoke", ["disable", "rotate"])
def test_a_revoked_token_is_refused_by_every_worker_within_a_second(
    logged_service: Service, tokens: Tokens, revoke: str
) -> None:
    service = logged_service
    admin = {"Authorization": f"Bearer {tokens.by_role['admin']}"}
    user = check(
        requests.post(
            f"{service.url}/users",
            json={"name": "将被吊销", "role": "caseworker", "unit": INSIDE},
            headers=admin,
            timeout=10,
        ),
        201,
    )
    admitted_everywhere(service, user["token"])

    path = "/disable" if revoke == "disable" else "/token"
    done = check(
        requests.post(f"{service.url}/users/{user['id']}{path}", headers=admin, timeout=10),
        200 if revoke == "disable" else 201,
    )
    revoked = time.monotonic()  # the revoking request has returned: it is committed
    probes = probe_together(service, user["token"], WINDOW)
    # ... and a while longer: no worker lets it in later either (no cache that expires).
    later = probe_together(service, user["token"], 0.5)

    want = "user_disabled" if revoke == "disable" else "unauthorized"
    let_in = [p for p in probes + later if p.status != 401 or p.code != want]
    assert not let_in, let_in[:5]
    within = [p for p in probes if p.sent - revoked <= WINDOW]
    pids = worker_pids(service)
    refused_by = set(answered_by(service, within).values())
    assert refused_by == pids, f"workers {pids - refused_by} did not answer within {WINDOW} s"
    if revoke == "rotate":  # the new token works, in every worker
        admitted_everywhere(service, done["token"])
