"""`GET /metrics`: what an operator watches, in the Prometheus text format.

Counted as it happens, in every web process (prometheus-client's multiprocess mode under
gunicorn: `PROMETHEUS_MULTIPROC_DIR`, set by web/gunicorn_conf.py, sums the processes):
accepted appends and their latency (a histogram, whose `_count` counts them), refusals by error code, read-access records written,
failed verifications run through the API.

Read from the store and Redis when scraped (`StoreCollector`, a few indexed queries):
each read model's lag in events and seconds, rebuild progress, the RQ queue's depth and
failed jobs, the age of the last signed checkpoint and the events it does not cover yet.

Labels are codes, read-model names and commands: never a case id, a name or a path.
With `CASETRAIL_METRICS_TOKEN` set, a scrape needs `Authorization: Bearer <that token>`.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from rq import Queue

from casetrail.audit.records import CHECKPOINT_TABLE
from casetrail.bootstrap import Casetrail
from projections import engine_for
from store.chain_links import CHAIN_TABLE
from web.errors import error_response

log = logging.getLogger("casetrail.metrics")

APPEND_ENDPOINTS = {"commands.open_case": "open_case", "commands.append_event": "append_event"}
VERIFY_ENDPOINT = "audit.verify"
STARTED = "casetrail.metrics.started"

APPEND_SECONDS = Histogram(
    "casetrail_append_seconds",
    "Time to answer an accepted command (open a case, append an event), in seconds.",
    ["command"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
# Bound once: an observation is then a few microseconds on the append path. Its `_count`
# is the counter of accepted commands (their rate: `rate(casetrail_append_seconds_count)`).
APPEND_TIMERS = {
    endpoint: APPEND_SECONDS.labels(command) for endpoint, command in APPEND_ENDPOINTS.items()
}
REFUSALS = Counter(
    "casetrail_refusals", "Requests refused, by error code (e.g. invalid_data).", ["code"]
)
ACCESS_RECORDS = Counter(
    "casetrail_access_records", "Read-access records (閱覽記錄) written.", ["granted"]
)
VERIFICATION_FAILURES = Counter(
    "casetrail_verification_failures",
    "Audit verifications (GET /audit/verify) that found a problem.",
)


def install(app: Flask, ct: Casetrail) -> None:
    """Counts in `app`'s requests and serves `/metrics` (public unless a token is set)."""
    registry = scrape_registry(ct)
    token = ct.settings.metrics_token

    @app.before_request
    def start_clock() -> None:
        if request.endpoint in APPEND_ENDPOINTS:
            request.environ[STARTED] = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        endpoint = request.endpoint
        if response.status_code >= 400:
            REFUSALS.labels(refusal_code(response)).inc()
        elif endpoint in APPEND_TIMERS:
            started = request.environ.get(STARTED)
            if started is not None:
                APPEND_TIMERS[endpoint].observe(time.perf_counter() - started)
        elif endpoint == VERIFY_ENDPOINT and not (response.get_json(silent=True) or {}).get("ok"):
            VERIFICATION_FAILURES.inc()
        return response

    ct.audit.access.on_record = lambda granted, count: ACCESS_RECORDS.labels(
        "true" if granted else "false"
    ).inc(count)

    @app.get("/metrics")
    def metrics() -> Response:
        if token and not authorised(token):
            return error_response(
                401, "unauthenticated", "/metrics needs 'Authorization: Bearer <metrics token>'."
            )
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def authorised(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def refusal_code(response: Response) -> str:
    body = response.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    # Codes are the API's own identifiers; anything else is not used as a label.
    if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 40:
        return code
    return f"http_{response.status_code}"


def scrape_registry(ct: Casetrail) -> CollectorRegistry:
    """Under gunicorn, every process's counts (the files in `PROMETHEUS_MULTIPROC_DIR`);
    else this process's; and the store's figures, read at scrape time."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(ProcessCounts())
    registry.register(StoreCollector(ct))
    return registry


class ProcessCounts(Collector):
    """This process's counters (the default registry), outside gunicorn."""

    def collect(self) -> Iterator[Any]:
        for metric in REGISTRY.collect():
            if metric.name.startswith("casetrail_"):
                yield metric


class StoreCollector(Collector):
    """The figures read from the store and Redis when scraped."""

    def __init__(self, ct: Casetrail) -> None:
        self.ct = ct

    def collect(self) -> Iterator[Any]:
        yield from self.read_models()
        yield from self.checkpoint()
        yield from self.queue()

    def read_models(self) -> Iterator[Any]:
        lag = GaugeMetricFamily(
            "casetrail_read_model_lag_events",
            "Events in the log a read model has not applied yet.",
            labels=["read_model"],
        )
        lag_seconds = GaugeMetricFamily(
            "casetrail_read_model_lag_seconds",
            "Age of the oldest case event a read model has not applied yet (0: caught up).",
            labels=["read_model"],
        )
        rebuilding = GaugeMetricFamily(
            "casetrail_rebuild_remaining_events",
            "Events a read model's rebuild still has to apply (absent: no rebuild).",
            labels=["read_model"],
        )
        position = GaugeMetricFamily(
            "casetrail_log_head", "Position of the last event in the log.", labels=[]
        )
        now = datetime.now(UTC)
        status = engine_for(self.ct).status()
        oldest: dict[int, float] = {}
        for entry in status:
            name, at = entry["name"], entry["position"]
            lag.add_metric([name], entry["lag"])
            if entry["lag"] > 0 and at not in oldest:
                oldest[at] = self.seconds_since_after(at, now)
            lag_seconds.add_metric([name], oldest.get(at, 0.0) if entry["lag"] > 0 else 0.0)
            if "rebuilding" in entry:
                rebuilding.add_metric(
                    [name], max(entry["head"] - entry["rebuilding"]["position"], 0)
                )
        position.add_metric([], status[0]["head"] if status else 0)
        yield from (lag, lag_seconds, rebuilding, position)

    def seconds_since_after(self, position: int, now: datetime) -> float:
        """Seconds since the first case event after `position` was recorded."""
        row = self.ct.db.query_one(
            f"SELECT recorded_at FROM {CHAIN_TABLE} WHERE position > ? ORDER BY position LIMIT 1",
            [position],
        )
        return age(row["recorded_at"], now) if row else 0.0

    def checkpoint(self) -> Iterator[Any]:
        row = self.ct.db.query_one(
            f"SELECT tree_size, created_at FROM {CHECKPOINT_TABLE} ORDER BY number DESC LIMIT 1"
        )
        seconds = GaugeMetricFamily(
            "casetrail_checkpoint_age_seconds",
            "Age of the last signed checkpoint of the audit log (absent: none yet).",
        )
        size = GaugeMetricFamily(
            "casetrail_checkpoint_tree_size", "Events the last signed checkpoint covers."
        )
        if row is not None:
            seconds.add_metric([], age(row["created_at"], datetime.now(UTC)))
            size.add_metric([], int(row["tree_size"]))
        yield from (seconds, size)

    def queue(self) -> Iterator[Any]:
        """RQ's queue, through the connection the projection signal already holds."""
        connection = getattr(self.ct.service.on_append, "connection", None)
        if not callable(connection):
            return
        up = GaugeMetricFamily("casetrail_redis_up", "Whether Redis answered the scrape.")
        try:
            queue = Queue(self.ct.settings.queue_name, connection=connection())
            depth, failed = queue.count, queue.failed_job_registry.count
        except Exception as error:  # Redis down: the scrape still answers
            log.warning("metrics: Redis did not answer (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "casetrail_queue_jobs", "Jobs waiting in the RQ queue.", value=depth
        )
        yield GaugeMetricFamily(
            "casetrail_queue_failed_jobs", "Jobs in the RQ queue's failed registry.", value=failed
        )


def age(iso: str, now: datetime) -> float:
    try:
        then = datetime.fromisoformat(str(iso))
    except ValueError:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max((now - then).total_seconds(), 0.0)
