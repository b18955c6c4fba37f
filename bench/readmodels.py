"""Read-model rates: the raw notification-log read, full rebuilds, steady catch-up; and the
query latencies of the case list and the indicators (in-process and over HTTP)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.stats import Rate
from casetrail.bootstrap import Casetrail
from projections import engine_for
from projections.queries import ReadModels
from projections.rebuild import default_rebuild_processes

BATCH = 500


def raw_log_read(ct: Casetrail, *, decode: bool = False) -> Rate:
    """Reads the whole notification log in batches (and decodes each event, with `decode`)."""
    recorder, mapper = ct.app.recorder, ct.app.mapper
    after, count = 0, 0
    started = time.perf_counter()
    while True:
        notifications = recorder.select_notifications(
            start=after, limit=BATCH, inclusive_of_start=False
        )
        if not notifications:
            break
        if decode:
            for notification in notifications:
                mapper.to_domain_event(notification)
        count += len(notifications)
        after = notifications[-1].id
    return Rate(count, time.perf_counter() - started)


def rebuild_all(ct: Casetrail, *, each: bool = False) -> dict[str, Rate]:
    """Every read model rebuilt from event 1 into a new generation in one pass over the log,
    in one process and then as `casetrail projections rebuild` does by default (two
    processes on a machine with two cores); with `each`, also each one alone first."""
    engine = engine_for(ct)
    head = engine.head()
    rates = {}
    if each:
        for name in list(engine.projections):
            started = time.perf_counter()
            engine.rebuild(name)
            rates[name] = Rate(head, time.perf_counter() - started)
    started = time.perf_counter()
    engine.rebuild_many(processes=1)
    rates["all read models, one pass, one process"] = Rate(head, time.perf_counter() - started)
    processes = default_rebuild_processes()
    if processes > 1:
        # What `casetrail projections rebuild` does by default on this machine.
        started = time.perf_counter()
        engine.rebuild_many(processes=processes)
        rates[f"all read models, {processes} processes (the CLI's default)"] = Rate(
            head, time.perf_counter() - started
        )
    return rates


def catch_up(ct: Casetrail) -> Rate:
    """The backlog since the last catch-up, every read model; events/s of the log."""
    engine = engine_for(ct)
    engine.setup()
    behind = engine.head() - min(
        engine.position(name, generation)
        for name, generation in engine.active_generations().items()
    )
    started = time.perf_counter()
    engine.catch_up()
    return Rate(behind, time.perf_counter() - started)


def time_calls(call: Callable[[], Any], repeat: int) -> Rate:
    call()  # warm
    latencies = []
    started = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    return Rate(repeat, time.perf_counter() - started, latencies)


def busiest_county(ct: Casetrail) -> str:
    rows = ReadModels(ct).list_cases(unit="320000", per_page=200)["items"]
    counties: dict[str, int] = {}
    for row in rows:
        unit = str(row.get("unit") or "")
        if len(unit) >= 6 and not unit.endswith("00"):
            counties[unit[:6]] = counties.get(unit[:6], 0) + 1
    return max(counties, key=lambda c: counties[c]) if counties else "320102"


def query_calls(ct: Casetrail, county: str) -> dict[str, Callable[[], Any]]:
    models = ReadModels(ct)
    return {
        "case list: province, disputes, closed, page 3": lambda: models.list_cases(
            kind="dispute", unit="320000", status="closed", page=3, per_page=20
        ),
        "case list: county, overdue": lambda: models.list_cases(unit=county, overdue=True),
        "case list: province, text search": lambda: models.list_cases(unit="320000", q="王"),
        "indicators: province, disputes": lambda: models.indicators(kind="dispute", unit="320000"),
        "indicators: province, resettlement 2025": lambda: models.indicators(
            kind="resettlement", unit="320000", from_="2025-01-01", to="2025-12-31"
        ),
        "indicators: county, correction": lambda: models.indicators(kind="correction", unit=county),
    }


def http_query_calls(base: str, token: str, county: str) -> dict[str, Callable[[], Any]]:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def get(path: str, **params: Any) -> Callable[[], Any]:
        def call() -> Any:
            response = session.get(f"{base}/api/v1{path}", params=params)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")
            return response

        return call

    return {
        "GET /cases province, disputes, closed, page 3": get(
            "/cases", kind="dispute", unit="320000", status="closed", page=3, per_page=20
        ),
        "GET /cases county, overdue": get("/cases", unit=county, overdue="true"),
        "GET /cases province, q=王": get("/cases", unit="320000", q="王"),
        "GET /indicators province, disputes": get("/indicators", kind="dispute", unit="320000"),
        "GET /indicators county, correction": get("/indicators", kind="correction", unit=county),
    }
