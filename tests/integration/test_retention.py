"""Retention (issue 20): with a fixed clock, the daily job erases what has passed its
period — a month of read-access records, a finished correction's monitoring data, closed
records of a kind with a period — the way an erasure does (keys destroyed, one act in the
erasures stream), and nothing newer or still open; a second run does nothing; a run that
fails half-way leaves nothing done; `audit verify` passes afterwards and the erased data's
keys (and the read models' names) are gone from the store's bytes."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from casetrail.personal import ERASED, KEYS_TABLE, SUBJECTS_TABLE
from domain.case import Actor
from domain.clock import FixedClock
from domain.errors import ConfigError
from projections import engine_for
from projections.erasure import ERASURES_ID, Forgetting
from projections.retention import run_retention
from store.access_index import ACCESS_INDEX_TABLE
from store.chain_links import CHAIN_TABLE
from tests.integration.test_correction_service import COUNTY_SUPERVISOR, STREET_WORKER, reception
from tests.integration.test_erasure import ERASED_PERSON, KEPT_PERSON, cli, dispute, every_byte
from workers import jobs
from workers.cron import register

AUDITOR = Actor("u_audit", "auditor", "320000")
STREET = "320102001"


def acts(ct: Casetrail) -> int:
    """Events in the erasures stream."""
    row = ct.db.query_one(
        f"SELECT COUNT(*) AS n FROM {CHAIN_TABLE} WHERE case_id = ?", (str(ERASURES_ID),)
    )
    return int(row["n"]) if row else 0


def key_ids(ct: Casetrail) -> set[str]:
    return {str(row["key_id"]) for row in ct.db.query(f"SELECT key_id FROM {KEYS_TABLE}")}


def wrapped(ct: Casetrail, key_id: str) -> bytes:
    row = ct.db.query_one(f"SELECT wrapped FROM {KEYS_TABLE} WHERE key_id = ?", (key_id,))
    assert row is not None
    return str(row["wrapped"]).encode()


def run_job(ct: Casetrail) -> dict[str, int]:
    previous = jobs._casetrail
    jobs.use(ct)
    try:
        return jobs.retention_job()
    finally:
        jobs._casetrail = previous


def test_a_month_of_read_access_records_expires_after_its_period(
    casetrail: Casetrail, clock: FixedClock, settings: Settings
) -> None:
    ct = casetrail
    ct.settings = ct.settings.with_(access_retention_days=184)
    clock.set(datetime(2026, 1, 10, 2, tzinfo=UTC))
    case_id = dispute(ct, clock, KEPT_PERSON, close=False)
    ct.reads.case_state(AUDITOR, case_id)  # a January read
    clock.set(datetime(2026, 2, 10, 2, tzinfo=UTC))
    ct.reads.case_state(AUDITOR, case_id)  # a February read
    january = wrapped(ct, "access:2026-01")
    before, _ = ct.audit.access.query(AUDITOR, case=case_id)
    assert [item["at"][:7] for item in before] == ["2026-01", "2026-02"]

    # The last day of January's period (CST): nothing is due yet.
    clock.set(datetime(2026, 8, 3, 15, 59, tzinfo=UTC))
    assert run_retention(ct, dry_run=True)["access_months"] == []
    clock.advance(timedelta(minutes=2))
    planned = run_retention(ct, dry_run=True)
    assert planned["access_months"] == [{"month": "2026-01", "records": 1}]
    assert "access:2026-01" in key_ids(ct)  # a dry run changes nothing
    erasures = acts(ct)

    assert run_job(ct) == {"access_months": 1, "monitoring": 0, "cases": 0}
    assert acts(ct) == erasures + 1 + (erasures == 0)  # the act (and the stream's opening)
    assert "access:2026-01" not in key_ids(ct)
    assert "access:2026-02" in key_ids(ct)
    after, _ = ct.audit.access.query(AUDITOR, case=case_id)
    assert [item["at"][:7] for item in after] == ["2026-02"] + ["2026-08"] * (len(after) - 1)
    assert ct.audit.access.index_mismatches() == []
    report = ct.audit.verify()
    assert report.ok, report
    # The case itself is untouched: its person is still there.
    assert ct.reads.case_state(AUDITOR, case_id)["parties"][0]["name"] == KEPT_PERSON["name"]
    assert january not in every_byte(ct, settings)

    assert run_job(ct) == {"access_months": 0, "monitoring": 0, "cases": 0}
    assert acts(ct) == erasures + 1 + (erasures == 0)


def finished_correction(ct: Casetrail, clock: FixedClock, *, complete: bool) -> str:
    clock.set(datetime(2026, 3, 2, 2, tzinfo=UTC))
    opened = ct.service.open_case(
        STREET_WORKER, "correction", STREET, "CorrectionSubjectReceived", reception()
    )
    ct.service.append(STREET_WORKER, opened.id, "SubjectReportedIn", {"reported_on": "2026-03-02"})
    ct.service.append(
        COUNTY_SUPERVISOR,
        opened.id,
        "ElectronicMonitoringStarted",
        {"grounds": "夜間多次離開居住地", "until": "2026-05-01"},
    )
    if complete:
        clock.set(datetime(2026, 8, 26, 2, tzinfo=UTC))
        ct.service.append(
            STREET_WORKER,
            opened.id,
            "CorrectionCompleted",
            {"on": "2026-08-26", "certificate_no": "玄矯解字2026第1號"},
        )
    return opened.id


def grounds(ct: Casetrail, case_id: str) -> list[Any]:
    events = ct.reads.history(AUDITOR, case_id)
    return [e["data"]["grounds"] for e in events if e["type"] == "ElectronicMonitoringStarted"]


def test_monitoring_data_is_erased_a_period_after_the_correction_ends_and_never_while_open(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    ct = casetrail
    ct.settings = ct.settings.with_(monitoring_retention_days=180)
    done = finished_correction(ct, clock, complete=True)
    still_open = finished_correction(ct, clock, complete=False)
    assert grounds(ct, done) == ["夜間多次離開居住地"]

    clock.set(datetime(2026, 8, 26, 2, tzinfo=UTC) + timedelta(days=179))
    assert run_job(ct)["monitoring"] == 0
    clock.advance(timedelta(days=2))
    assert run_retention(ct, dry_run=True)["monitoring"] == [done]
    assert run_job(ct) == {"access_months": 0, "monitoring": 1, "cases": 0}

    assert grounds(ct, done) == [ERASED]
    assert grounds(ct, still_open) == ["夜間多次離開居住地"]
    # Only the monitoring data: the record's person is kept.
    assert ct.reads.case_state(AUDITOR, done)["person"]["name"] == reception()["person"]["name"]
    assert ct.audit.verify().ok
    assert run_job(ct)["monitoring"] == 0


def test_closed_records_of_a_kind_with_a_period_are_erased_after_it(
    casetrail: Casetrail, clock: FixedClock, settings: Settings
) -> None:
    ct = casetrail
    ct.settings = ct.settings.with_(retention_days=(("dispute", 30),))
    closed = dispute(ct, clock, ERASED_PERSON, close=True)
    still_open = dispute(ct, clock, KEPT_PERSON, close=False)
    engine_for(ct).catch_up()

    clock.advance(timedelta(days=29))
    assert run_job(ct)["cases"] == 0
    clock.advance(timedelta(days=2))
    assert run_job(ct) == {"access_months": 0, "monitoring": 0, "cases": 1}

    assert ct.reads.case_state(AUDITOR, closed)["parties"][0]["name"] == ERASED
    assert ct.reads.case_state(AUDITOR, still_open)["parties"][0]["name"] == KEPT_PERSON["name"]
    assert not ct.db.query(f"SELECT key_id FROM {SUBJECTS_TABLE} WHERE key_id = ?", (closed,))
    assert ct.audit.verify().ok
    kept_key = wrapped(ct, still_open)
    stored = every_byte(ct, settings)
    for value in ERASED_PERSON.values():
        assert value.encode() not in stored
    assert kept_key in stored  # the scan sees what the store holds
    assert run_job(ct)["cases"] == 0


def test_a_run_that_fails_half_way_leaves_nothing_done(
    casetrail: Casetrail, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct = casetrail
    ct.settings = ct.settings.with_(retention_days=(("dispute", 0),), access_retention_days=184)
    clock.set(datetime(2026, 1, 10, 2, tzinfo=UTC))
    closed = dispute(ct, clock, ERASED_PERSON, close=True)
    ct.reads.case_state(AUDITOR, closed)
    clock.set(datetime(2026, 9, 1, 2, tzinfo=UTC))
    keys, erasures = key_ids(ct), acts(ct)
    indexed = ct.db.query(f"SELECT COUNT(*) AS n FROM {ACCESS_INDEX_TABLE}")[0]["n"]
    forget = Forgetting.__call__

    def crash_after_the_deletes(self: Forgetting, cur: Any) -> None:
        forget(self, cur)
        raise RuntimeError("the process dies half-way")

    monkeypatch.setattr(Forgetting, "__call__", crash_after_the_deletes)
    with pytest.raises(RuntimeError):
        run_retention(ct)
    assert key_ids(ct) == keys
    assert acts(ct) == erasures
    assert ct.db.query(f"SELECT COUNT(*) AS n FROM {ACCESS_INDEX_TABLE}")[0]["n"] == indexed
    monkeypatch.undo()
    ct.app.mapper.keys.forget(list(keys))  # type: ignore[attr-defined]
    assert ct.reads.case_state(AUDITOR, closed)["parties"][0]["name"] == ERASED_PERSON["name"]

    done = run_retention(ct)
    assert [m["month"] for m in done["access_months"]] == ["2026-01"]
    assert [c["id"] for c in done["cases"]] == [closed]
    assert ct.audit.verify().ok


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CASETRAIL_ACCESS_RETENTION_DAYS", "90"),
        ("CASETRAIL_ACCESS_RETENTION_DAYS", "half a year"),
        ("CASETRAIL_MONITORING_RETENTION_DAYS", "-1"),
        ("CASETRAIL_RETENTION_DAYS", "disputes=30"),
        ("CASETRAIL_RETENTION_DAYS", "dispute=thirty"),
    ],
)
def test_a_bad_retention_setting_is_a_clear_config_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert name in str(refused.value)


def test_retention_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CASETRAIL_ACCESS_RETENTION_DAYS": "200",
            "CASETRAIL_MONITORING_RETENTION_DAYS": "0",
            "CASETRAIL_RETENTION_DAYS": "correction=1825, dispute=365",
        }
    )
    assert settings.access_retention_days == 200
    assert settings.monitoring_retention_days == 0
    assert settings.retention_days == (("correction", 1825), ("dispute", 365))
    assert Settings.from_env({}).access_retention_days == 365


def test_the_command_line_shows_what_would_go_then_erases_it(
    casetrail: Casetrail, clock: FixedClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct = casetrail
    closed = dispute(ct, clock, ERASED_PERSON, close=True)
    still_open = dispute(ct, clock, KEPT_PERSON, close=False)
    # The command's clock is the system's: long after the fixed clock's 2026-03-02.
    monkeypatch.setenv("CASETRAIL_RETENTION_DAYS", "dispute=1")
    code, output = cli(settings, "people", "retention", "--dry-run")
    assert code == 0, output
    planned = json.loads(output)
    assert planned["dry_run"] is True
    assert planned["cases"] == [{"id": closed, "kind": "dispute"}]
    assert closed in key_ids(ct)

    code, output = cli(settings, "people", "retention")
    assert code == 0, output
    assert json.loads(output)["cases"] == [{"id": closed, "kind": "dispute"}]
    ct.app.mapper.keys.forget([closed])  # type: ignore[attr-defined]
    assert ct.reads.case_state(AUDITOR, closed)["parties"][0]["name"] == ERASED
    assert ct.reads.case_state(AUDITOR, still_open)["parties"][0]["name"] == KEPT_PERSON["name"]
    code, output = cli(settings, "audit", "verify")
    assert code == 0, output


KILLED_RUN = """
import sys, time
from datetime import datetime
from pathlib import Path
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock
from projections.erasure import Forgetting
from projections.retention import run_retention

data_dir, url, schema, now, flag = sys.argv[1:6]
settings = Settings(data_dir=Path(data_dir), database_url=url or None,
                    database_schema=schema or None, retention_days=(("dispute", 0),))
ct = bootstrap(settings, clock=FixedClock(datetime.fromisoformat(now)), seed_units=False)
forget = Forgetting.__call__

def then_hang(self, cur):
    forget(self, cur)  # the keys deleted, the act inserted: not yet committed
    Path(flag).touch()
    time.sleep(120)

Forgetting.__call__ = then_hang
run_retention(ct)
"""


def test_a_run_killed_inside_its_transaction_leaves_nothing_done(
    casetrail: Casetrail, clock: FixedClock, settings: Settings, tmp_path: Path
) -> None:
    ct = casetrail
    ct.settings = ct.settings.with_(retention_days=(("dispute", 0),))
    closed = dispute(ct, clock, ERASED_PERSON, close=True)
    clock.advance(timedelta(days=1))
    keys, erasures = key_ids(ct), acts(ct)
    flag = tmp_path / "inside"
    args = [
        str(settings.data_dir),
        settings.database_url or "",
        settings.database_schema or "",
        clock.now().isoformat(),
        str(flag),
    ]
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, *args])
    try:
        deadline = time.monotonic() + 60
        while not flag.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), "the run never reached its transaction"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert key_ids(ct) == keys
    assert acts(ct) == erasures
    assert ct.audit.verify().ok

    done = run_retention(ct)
    assert [c["id"] for c in done["cases"]] == [closed]
    assert closed not in key_ids(ct)
    assert ct.audit.verify().ok


def test_cron_runs_the_retention_job_daily(settings: Settings) -> None:
    scheduled: dict[str, tuple[object, int]] = {}
    register(
        lambda func, queue, **options: scheduled.setdefault(
            options["name"], (func, options["interval"])
        ),
        settings,
    )
    assert scheduled[f"{settings.queue_name}:retention"] == (jobs.retention_job, 86400)


def test_the_store_still_verifies_when_opened_without_its_master_key(
    casetrail: Casetrail, clock: FixedClock, settings: Settings
) -> None:
    case_id = dispute(casetrail, clock, KEPT_PERSON, close=False)
    casetrail.reads.case_state(AUDITOR, case_id)  # a read-access record, its cases sealed
    other_key = base64.b64encode(bytes(range(32))).decode()
    stranger = bootstrap(settings.with_(master_key=other_key), clock=clock, seed_units=False)
    try:
        report = stranger.audit.verify()
        assert report.ok, report.problems[:3]
    finally:
        stranger.close()
