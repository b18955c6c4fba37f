"""Webhook notifications of deadline warnings and breaches: the cron's RQ job that fills the
outbox from the log and delivers its due rows (projections.outbox says why none is lost).

Configuration (environment):
- `CASETRAIL_WEBHOOK_URL`: where to POST; unset, rows wait in the outbox (`pending`).
- `CASETRAIL_WEBHOOK_SECRET`: the HMAC key (required with a URL).
- `CASETRAIL_WEBHOOK_BACKOFF_SECONDS` (10): the first retry's delay, doubled at each
  failure up to `CASETRAIL_WEBHOOK_MAX_BACKOFF_SECONDS` (3600).
- `CASETRAIL_WEBHOOK_GIVE_UP_SECONDS` (90000, 25 h): retried at least this long, then
  `failed`.
- `CASETRAIL_WEBHOOK_LEASE_SECONDS` (60): how long a worker holds a row it delivers.
- `CASETRAIL_WEBHOOK_CONCURRENCY` (8): POSTs a worker has in flight at once.
- `CASETRAIL_NOTIFY_SECONDS` (5): how often `casetrail cron` enqueues the job.

Each POST carries the JSON body (ids and dates only) and:
- `X-Casetrail-Delivery`: the delivery id, the same at every retry (deduplicate on it);
- `X-Casetrail-Timestamp`: Unix seconds when this attempt was signed;
- `X-Casetrail-Signature`: `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body).
The receiver recomputes the HMAC over the raw body, compares in constant time, and refuses
a timestamp more than 5 minutes old (a replayed request). Any 2xx answer is a delivery.

A worker posts up to `concurrency` rows at once (a burst of records, e.g. the first sweep of
a store, would otherwise wait for one POST after the other), so records arrive in no
particular order; each is still posted by one worker at a time, with one body, and its
retries wait their backoff. The outcomes are noted a group at a time (outbox.claim): a
worker killed mid-burst leaves at most its rows in flight and its outcomes not yet noted to
be delivered again, with the same delivery id and body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import urllib3

from projections import outbox
from store.db import Database
from workers.jobs import current

log = logging.getLogger("casetrail.workers.notify")

URL_ENV, SECRET_ENV = "CASETRAIL_WEBHOOK_URL", "CASETRAIL_WEBHOOK_SECRET"
NOTIFY_INTERVAL_ENV = "CASETRAIL_NOTIFY_SECONDS"
CONCURRENCY_ENV = "CASETRAIL_WEBHOOK_CONCURRENCY"
DELIVERY_HEADER = "X-Casetrail-Delivery"
TIMESTAMP_HEADER = "X-Casetrail-Timestamp"
SIGNATURE_HEADER = "X-Casetrail-Signature"
NOTIFY_TIMEOUT_SECONDS = 300
# How long one job delivers before handing over.
JOB_SECONDS = 60.0


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: bytes
    backoff: float = 10.0
    max_backoff: float = 3600.0
    give_up: float = 90000.0
    lease: float = 60.0
    timeout: float = 10.0
    concurrency: int = 8

    @classmethod
    def from_env(cls) -> WebhookConfig | None:
        url = os.environ.get(URL_ENV, "").strip()
        if not url:
            return None
        secret = os.environ.get(SECRET_ENV, "")
        if not secret:
            raise ValueError(f"{SECRET_ENV} must be set with {URL_ENV}")
        env = os.environ.get
        return cls(
            url=url,
            secret=secret.encode(),
            backoff=float(env("CASETRAIL_WEBHOOK_BACKOFF_SECONDS", "10")),
            max_backoff=float(env("CASETRAIL_WEBHOOK_MAX_BACKOFF_SECONDS", "3600")),
            give_up=float(env("CASETRAIL_WEBHOOK_GIVE_UP_SECONDS", "90000")),
            lease=float(env("CASETRAIL_WEBHOOK_LEASE_SECONDS", "60")),
            concurrency=max(int(env(CONCURRENCY_ENV, "8")), 1),
        )

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt: exponential, capped."""
        return float(min(self.backoff * 2 ** max(attempts - 1, 0), self.max_backoff))


def notify_interval() -> int:
    return max(int(os.environ.get(NOTIFY_INTERVAL_ENV, "5")), 1)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def connections(config: WebhookConfig) -> urllib3.PoolManager:
    """Keep-alive connections to the webhook, one per thread of a worker's pool, through
    the proxy the environment names for its URL (`https_proxy`, `no_proxy`, ... as
    urllib reads them)."""
    url = urllib.parse.urlsplit(config.url)
    proxy = urllib.request.getproxies().get(url.scheme)
    options: dict[str, Any] = {"maxsize": config.concurrency, "block": True}
    if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)


def post(pool: urllib3.PoolManager, config: WebhookConfig, delivery: str, body: str) -> str | None:
    """One attempt; None if delivered, else why not (no body: it is ours, not theirs).
    A redirect is not followed (it would drop the signed body): it is a failure."""
    raw = body.encode()
    timestamp = str(int(time.time()))
    try:
        response = pool.request(
            "POST",
            config.url,
            body=raw,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "casetrail-webhook",
                DELIVERY_HEADER: delivery,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(config.secret, timestamp, raw),
            },
            timeout=urllib3.Timeout(connect=config.timeout, read=config.timeout),
            retries=False,
            redirect=False,
        )
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
        return type(e).__name__
    status = int(response.status)
    return None if 200 <= status < 300 else f"HTTP {status}"


class Released:
    """An attempt not made: the row goes back to the outbox as it was."""


RELEASED = Released()


def attempt(
    pool: urllib3.PoolManager, config: WebhookConfig, row: outbox.Claimed
) -> str | Released | None:
    """One row's POST (in a thread of the pool), unless its lease lapsed while it waited
    for a thread: another worker may have it now, so it is handed back, not posted."""
    if time.time() >= row.lease_until:
        return RELEASED
    return post(pool, config, row.delivery_id, row.body)


def deliver(
    db: Database, config: WebhookConfig, *, max_seconds: float = JOB_SECONDS
) -> dict[str, int]:
    """Delivers the outbox's due rows until none is due (or `max_seconds` passed), up to
    `config.concurrency` POSTs at once.

    Between `concurrency` and twice as many claimed rows are in flight: the pool's threads
    post, the others wait for a thread (about one POST, well within the lease). Rows are
    claimed again when half the window is free, in the transaction that notes the outcomes
    in since the last claim: a burst costs one transaction per `concurrency` rows. A claim
    that finds fewer rows than it asked for is not repeated until the window is empty (as
    a batch used to be), so that rows retried soon after still go out in this job without
    a claim for each answer."""
    report = {"delivered": 0, "retried": 0, "failed": 0}
    started = time.monotonic()
    width = config.concurrency
    in_flight: dict[Future[str | Released | None], outbox.Claimed] = {}
    outcomes: list[outbox.Outcome] = []
    released: list[outbox.Claimed] = []
    more = True  # the last claim filled the window: there may be more due
    with connections(config) as connected, ThreadPoolExecutor(width, "webhook") as pool:
        try:
            while True:
                room = 2 * width - len(in_flight)
                if more and room >= width and time.monotonic() - started < max_seconds:
                    claimed = outbox.claim(
                        db, time.time(), config.lease, room, done=outcomes, handed_back=released
                    )
                    noted(outcomes, released)
                    for row in claimed:
                        in_flight[pool.submit(attempt, connected, config, row)] = row
                    more = len(claimed) == room
                    if not claimed and not in_flight:
                        break
                if not in_flight:
                    outbox.settle(db, outcomes, released)
                    noted(outcomes, released)
                    if time.monotonic() - started >= max_seconds:
                        break
                    more = True  # the window is empty: look once more
                    continue
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                now = time.time()
                for future in done:
                    row = in_flight.pop(future)
                    error = future.result()
                    if isinstance(error, Released):
                        released.append(row)
                    else:
                        outcomes.append(outcome(config, row, error, now, report))
        except BaseException:
            # Rows not yet posted are not posted; their leases lapse (as a killed worker's).
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return report


def outcome(
    config: WebhookConfig,
    row: outbox.Claimed,
    error: str | None,
    now: float,
    report: dict[str, int],
) -> outbox.Outcome:
    """What to note of one attempt, counted in `report`."""
    if error is None:
        report["delivered"] += 1
        return outbox.Outcome(row.position, now)
    if now - row.created_at >= config.give_up:
        report["failed"] += 1
        log.warning("webhook delivery %s failed for good: %s", row.delivery_id, error)
        return outbox.Outcome(row.position, now, error)
    report["retried"] += 1
    return outbox.Outcome(row.position, now, error, now + config.delay(row.attempts))


def noted(outcomes: list[outbox.Outcome], released: list[outbox.Claimed]) -> None:
    """Empties both lists once the outbox has noted them (warning of rows handed back)."""
    if released:
        log.warning("%d webhook deliveries handed back: their lease had lapsed", len(released))
    outcomes.clear()
    released.clear()


def notify(ct: Any, config: WebhookConfig | None) -> dict[str, int]:
    """Fills the outbox from the log, then delivers (when a webhook is configured)."""
    added = outbox.fill(ct.app, ct.db, time.time())
    report = {"added": added}
    if config is not None:
        report.update(deliver(ct.db, config))
    return report


def notify_job() -> dict[str, int]:
    """The cron job (run by an RQ worker)."""
    report = notify(current(), WebhookConfig.from_env())
    if any(report.values()):
        log.info("notifications: %s", json.dumps(report))
    return report
