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
- `CASETRAIL_NOTIFY_SECONDS` (5): how often `casetrail cron` enqueues the job.

Each POST carries the JSON body (ids and dates only) and:
- `X-Casetrail-Delivery`: the delivery id, the same at every retry (deduplicate on it);
- `X-Casetrail-Timestamp`: Unix seconds when this attempt was signed;
- `X-Casetrail-Signature`: `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body).
The receiver recomputes the HMAC over the raw body, compares in constant time, and refuses
a timestamp more than 5 minutes old (a replayed request). Any 2xx answer is a delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from projections import outbox
from store.db import Database
from workers.jobs import current

log = logging.getLogger("casetrail.workers.notify")

URL_ENV, SECRET_ENV = "CASETRAIL_WEBHOOK_URL", "CASETRAIL_WEBHOOK_SECRET"
NOTIFY_INTERVAL_ENV = "CASETRAIL_NOTIFY_SECONDS"
DELIVERY_HEADER = "X-Casetrail-Delivery"
TIMESTAMP_HEADER = "X-Casetrail-Timestamp"
SIGNATURE_HEADER = "X-Casetrail-Signature"
NOTIFY_TIMEOUT_SECONDS = 300
# Rows claimed per round, and how long one job delivers before handing over.
BATCH = 20
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


def post(config: WebhookConfig, delivery: str, body: str) -> str | None:
    """One attempt; None if delivered, else why not (no body: it is ours, not theirs)."""
    raw = body.encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        config.url,
        data=raw,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "casetrail-webhook",
            DELIVERY_HEADER: delivery,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(config.secret, timestamp, raw),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return type(e).__name__
    return None if 200 <= status < 300 else f"HTTP {status}"


def deliver(
    db: Database, config: WebhookConfig, *, max_seconds: float = JOB_SECONDS
) -> dict[str, int]:
    """Delivers the outbox's due rows until none is due (or `max_seconds` passed)."""
    report = {"delivered": 0, "retried": 0, "failed": 0}
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        claimed = outbox.claim(db, time.time(), config.lease, BATCH)
        if not claimed:
            break
        for row in claimed:
            error = post(config, row.delivery_id, row.body)
            now = time.time()
            if error is None:
                outbox.delivered(db, row.position, now)
                report["delivered"] += 1
                continue
            if now - row.created_at >= config.give_up:
                outbox.retry(db, row.position, None, error)
                report["failed"] += 1
                log.warning("webhook delivery %s failed for good: %s", row.delivery_id, error)
            else:
                outbox.retry(db, row.position, now + config.delay(row.attempts), error)
                report["retried"] += 1
    return report


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
