"""`GET /metrics`: scraped from the real service (gunicorn, two worker processes) with
Prometheus's own text parser; the counts of both processes are summed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from tests.dispute_builders import PERSONAL_DATA, registration
from tests.web.conftest import INSIDE, Service, Tokens

OPENED = 12
REFUSED = 5


def scrape(service: Service, **headers: str) -> dict[str, list[Any]]:
    response = requests.get(f"http://127.0.0.1:{service.port}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def total(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        sample.value
        for sample in samples.get(name, [])
        if all(sample.labels.get(key) == value for key, value in labels.items())
    )


def metric_pids(settings: Settings) -> set[str]:
    """The processes that have counted something (prometheus-client's files, one per pid)."""
    return {path.stem.rsplit("_", 1)[-1] for path in (settings.data_dir / "metrics").glob("*.db")}


def open_case(service: Service, tokens: Tokens) -> requests.Response:
    body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": registration()}
    # A connection of its own each: the service spreads them over its processes.
    with requests.Session() as session:
        return session.post(f"{service.url}/cases", json=body, headers=tokens.headers("caseworker"))


def refuse(service: Service, tokens: Tokens) -> requests.Response:
    body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": {}}
    with requests.Session() as session:
        return session.post(f"{service.url}/cases", json=body, headers=tokens.headers("caseworker"))


def test_the_metrics_count_appends_and_refusals_over_every_process_and_read_the_store(
    service: Service, tokens: Tokens, settings: Settings, web_casetrail: Casetrail
) -> None:
    opened: list[requests.Response] = []
    with ThreadPoolExecutor(6) as pool:
        # Until both worker processes have served some (on a loaded machine one may take
        # every connection of a round): the scrape must sum more than one process.
        for _ in range(10):
            opened += pool.map(lambda _: open_case(service, tokens), range(OPENED))
            if len(metric_pids(settings)) >= 2:
                break
        refused = list(pool.map(lambda _: refuse(service, tokens), range(REFUSED)))
    assert [response.status_code for response in opened] == [201] * len(opened)
    assert {response.status_code for response in refused} == {422}
    codes = {response.json()["error"]["code"] for response in refused}
    assert requests.post(f"{service.url}/cases", json={}).status_code == 401
    # A case read: one read-access record.
    case_id = opened[0].json()["id"]
    assert requests.get(f"{service.url}/cases/{case_id}", headers=tokens.headers("caseworker")).ok

    web_casetrail.audit.write_checkpoint(force=True)
    samples = scrape(service)
    assert 0 <= total(samples, "casetrail_checkpoint_age_seconds") < 60
    assert total(samples, "casetrail_checkpoint_tree_size") >= OPENED
    # Both worker processes counted, and the scrape sums them.
    pids = metric_pids(settings)
    assert len(pids) >= 2, pids
    assert total(samples, "casetrail_append_seconds_count", command="open_case") == len(opened)
    assert total(samples, "casetrail_append_seconds_bucket", command="open_case", le="+Inf") == len(
        opened
    )
    assert total(samples, "casetrail_append_seconds_sum", command="open_case") > 0
    for code in codes:
        assert total(samples, "casetrail_refusals_total", code=code) == REFUSED
    assert total(samples, "casetrail_refusals_total", code="unauthorized") == 1
    assert total(samples, "casetrail_access_records_total", granted="true") >= 1
    assert total(samples, "casetrail_verification_failures_total") == 0

    # Read from the store at scrape time: every read model, its lag in events and seconds.
    lags = samples["casetrail_read_model_lag_events"]
    assert {sample.labels["read_model"] for sample in lags} >= {"cases", "disputes"}
    assert all(sample.value >= 0 for sample in lags)
    assert all(sample.value >= 0 for sample in samples["casetrail_read_model_lag_seconds"])
    assert total(samples, "casetrail_log_head") >= OPENED
    assert total(samples, "casetrail_redis_up") == 1
    assert "casetrail_queue_jobs" in samples and "casetrail_queue_failed_jobs" in samples

    # No personal data and no case id in any label or value name.
    text = requests.get(f"http://127.0.0.1:{service.port}/metrics").text
    assert case_id not in text
    assert not any(value in text for value in PERSONAL_DATA)


def test_no_worker_ran_so_the_read_models_lag_and_say_by_how_long(
    service: Service, tokens: Tokens
) -> None:
    assert open_case(service, tokens).status_code == 201
    samples = scrape(service)
    # No projection worker runs in this test: the read models are behind the new case.
    assert all(sample.value >= 1 for sample in samples["casetrail_read_model_lag_events"])
    assert all(sample.value >= 0 for sample in samples["casetrail_read_model_lag_seconds"])
    assert any(sample.value > 0 for sample in samples["casetrail_read_model_lag_seconds"])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_with_a_metrics_token_a_scrape_needs_it(
    settings: Settings, tokens: Tokens, tmp_path: Path
) -> None:
    service = Service(settings, tmp_path / "gunicorn.log")
    service.env["CASETRAIL_METRICS_TOKEN"] = "scrape-secret"
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}/metrics"
        assert requests.get(url).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        # A user's token is not the metrics token.
        assert requests.get(url, headers=tokens.headers("admin")).status_code == 401
        samples = scrape(service, Authorization="Bearer scrape-secret")
        assert "casetrail_read_model_lag_events" in samples
    finally:
        service.stop()


def scraped(client: FlaskClient) -> dict[str, list[Any]]:
    """The app's own /metrics (in this process: no gunicorn, its counts only)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_a_verification_that_finds_tampering_is_counted_and_the_checkpoint_has_an_age(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    assert "casetrail_checkpoint_age_seconds" not in scraped(client)
    body = {"kind": "dispute", "unit": INSIDE, "type": "DisputeRegistered", "data": registration()}
    opened = client.post("/api/v1/cases", json=body, headers=tokens.headers("caseworker"))
    assert opened.status_code == 201
    web_casetrail.audit.write_checkpoint(force=True)
    samples = scraped(client)
    assert 0 <= total(samples, "casetrail_checkpoint_age_seconds") < 60
    assert total(samples, "casetrail_checkpoint_tree_size") >= 1
    # No Redis queue behind an app handed its casetrail: no queue figures, no error.
    assert "casetrail_queue_jobs" not in samples

    failures = total(samples, "casetrail_verification_failures_total")
    auditor = tokens.headers("auditor")
    assert client.get("/api/v1/audit/verify", headers=auditor).json["ok"] is True
    assert total(scraped(client), "casetrail_verification_failures_total") == failures
    web_casetrail.db.execute_script(
        [
            f"UPDATE case_event_chain SET actor = 'u_someone_else' WHERE case_id = '{opened.json['id']}'"
        ]
    )
    assert client.get("/api/v1/audit/verify", headers=auditor).json["ok"] is False
    assert total(scraped(client), "casetrail_verification_failures_total") == failures + 1
