"""Tamper tests against the database itself: 1,000 random single edits of a store of
thousands of events, on the SQLite file and on PostgreSQL, each applied, committed,
verified and undone. Every one must be detected, and the untouched store verifies clean,
also after a restart.

Each campaign runs in two processes on two private copies of the store (the verifier
reads the whole store for every edit)."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from casetrail.audit.trail import AuditTrail
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock
from tests.conftest import POSTGRES_URL, make_settings, start_of_2026
from tests.integration.audit_support import (
    OTHER_AUDITED_TABLES,
    ConnectionDatabase,
    Outcome,
    PostgresEdits,
    SQLiteEdits,
    build_store,
    case_campaign,
    in_parallel,
    postgres_worker,
    sqlite_worker,
)

CASES = 520  # four events each, plus the read-access events: more than 2,100 events
EDITS = 1000
UNITS = [
    {"code": "320102", "name": "玄武区", "parent": "320100"},
    {"code": "320104", "name": "秦淮区", "parent": "320100"},
]


def built(settings: Settings) -> Casetrail:
    clock = FixedClock(start_of_2026())
    ct = bootstrap(settings, clock=clock)
    ct.directory.load_units(UNITS)
    build_store(ct, clock, CASES)
    return ct


def assert_found_by_one_case_verification(outcome: Outcome, blind: list[str]) -> None:
    """Every edit found but those one-case verification cannot see (docs/hash-chain.md):
    a case's last events removed with their links, a checkpoint before the latest."""
    summary = ", ".join(f"{k}: {d}/{a}" for k, (a, d) in sorted(outcome.by_kind.items()))
    assert outcome.edits >= EDITS
    assert [m for m in outcome.missed if m not in blind] == [], summary
    # Of the case's own rows, only its last event removed with its link goes unseen.
    removed_last = [m for m in blind if m.startswith("m_event_and_link_delete")]
    assert len(removed_last) < outcome.edits // 50, removed_last


def assert_all_detected(outcome: Outcome) -> None:
    summary = ", ".join(f"{k}: {d}/{a}" for k, (a, d) in sorted(outcome.by_kind.items()))
    assert outcome.edits >= EDITS
    assert not outcome.missed, f"undetected edits: {outcome.missed[:10]} ({summary})"
    assert outcome.detected == outcome.edits, summary
    assert outcome.clean_after, "the restored store no longer verifies"


# --- SQLite --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    root = tmp_path_factory.mktemp("campaign")
    settings = Settings(data_dir=root / "var")
    ct = built(settings)
    report = ct.audit.verify()
    assert report.ok and report.log_size > 2000, report.problems[:3]
    ct.close()
    pristine = root / "pristine.sqlite"
    with sqlite3.connect(settings.sqlite_path) as conn:
        conn.execute("VACUUM INTO ?", (str(pristine),))
    yield settings, pristine


@pytest.mark.timeout(900)
def test_every_random_edit_of_the_sqlite_file_is_detected(
    sqlite_store: tuple[Settings, Path],
) -> None:
    settings, pristine = sqlite_store
    half = EDITS // 2
    outcome = in_parallel(
        sqlite_worker,
        [(str(settings.data_dir), str(pristine), half, seed) for seed in (101, 202)],
    )
    assert_all_detected(outcome)


def copy_of_store(settings: Settings, pristine: Path, name: str) -> Path:
    """A data directory of its own holding the pristine database and its signing key."""
    work = settings.data_dir.parent / name / "var"
    work.mkdir(parents=True)
    shutil.copy(pristine, work / "casetrail.sqlite")
    shutil.copy(settings.data_dir / "audit-signing.key", work / "audit-signing.key")
    return work


@pytest.mark.timeout(900)
def test_every_random_edit_of_a_case_is_found_by_verifying_that_case_on_sqlite(
    sqlite_store: tuple[Settings, Path],
) -> None:
    settings, pristine = sqlite_store
    work = copy_of_store(settings, pristine, "case-campaign")
    ct = bootstrap(Settings(data_dir=work), clock=FixedClock(start_of_2026()))
    edits = SQLiteEdits(work / "casetrail.sqlite")
    source = sqlite3.connect(pristine)
    try:
        outcome, blind = case_campaign(
            edits, ct.audit, lambda: source.backup(edits.conn), EDITS, 505
        )
    finally:
        edits.conn.close()
        source.close()
        ct.close()
    assert_found_by_one_case_verification(outcome, blind)


def test_the_untouched_sqlite_store_verifies_clean_after_a_restart(
    sqlite_store: tuple[Settings, Path],
) -> None:
    settings, pristine = sqlite_store
    fresh = copy_of_store(settings, pristine, "restart")
    ct = bootstrap(settings.with_(data_dir=fresh), clock=FixedClock(start_of_2026()))
    try:
        report = ct.audit.verify()
        assert report.ok, report.problems[:5]
        assert report.checked_events == report.log_size > 2000
        assert report.checkpoint is not None and report.checkpoint.size == report.log_size
    finally:
        ct.close()


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_store(
    sqlite_store: tuple[Settings, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, str]]:
    """The same thousands of events in PostgreSQL, then more appended there through the
    service after a gap in the notification ids, and a checkpoint signed over both.

    The bulk is copied row for row from the SQLite store (its chain hashes and signed
    checkpoints do not depend on the backend), because appending thousands of events one
    durable commit at a time takes minutes on this machine's PostgreSQL."""
    sqlite_settings, pristine_file = sqlite_store
    root = tmp_path_factory.mktemp("pg-campaign")
    settings_iter = make_settings("postgres", root)
    settings = next(settings_iter)
    settings.data_dir.mkdir(parents=True)
    shutil.copy(sqlite_settings.data_dir / "audit-signing.key", settings.data_dir)
    schema = settings.database_schema
    clock = FixedClock(start_of_2026())
    ct = bootstrap(settings, clock=clock)
    ct.directory.load_units(UNITS)
    copy_sqlite_rows(pristine_file, schema)
    clock.advance(timedelta(days=30))
    build_store(ct, clock, 15)  # through the PostgreSQL recorder, after the gap
    report = ct.audit.verify()
    assert report.ok and report.log_size > 2000, report.problems[:3]
    ct.close()
    pristine = f"p_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {pristine}")
        for table in (PostgresEdits.events, *OTHER_AUDITED_TABLES):
            conn.execute(f"CREATE TABLE {pristine}.{table} (LIKE {schema}.{table} INCLUDING ALL)")
            conn.execute(f"INSERT INTO {pristine}.{table} SELECT * FROM {schema}.{table}")
    try:
        yield settings, pristine
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {pristine} CASCADE")
        next(settings_iter, None)


def copy_sqlite_rows(source: Path, schema: str | None) -> None:
    with sqlite3.connect(source) as lite, psycopg.connect(POSTGRES_URL) as conn:
        conn.execute(f"SET search_path = {schema}")
        events = lite.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events"
        ).fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {PostgresEdits.events} (notification_id, originator_id, "
                "originator_version, topic, state) VALUES (%s, %s, %s, %s, %s)",
                [(p, uuid.UUID(i), v, t, s) for p, i, v, t, s in events],
            )
            for table in OTHER_AUDITED_TABLES:
                rows = lite.execute(f"SELECT * FROM {table}").fetchall()
                marks = ", ".join(["%s"] * len(rows[0]))
                cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            # The next appends leave a gap in the notification ids, as rolled-back
            # transactions do in PostgreSQL.
            top = max(p for p, *_ in events)
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{PostgresEdits.events}', "
                "'notification_id'), %s)",
                (top + 3,),
            )
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('audit_checkpoints', 'number'), "
                "(SELECT MAX(number) FROM audit_checkpoints))"
            )
        conn.commit()


@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_every_random_edit_of_the_postgres_store_is_detected(
    postgres_store: tuple[Settings, str],
) -> None:
    settings, pristine = postgres_store
    half = EDITS // 2
    outcome = in_parallel(
        postgres_worker,
        [(POSTGRES_URL, pristine, str(settings.data_dir), half, seed) for seed in (303, 404)],
    )
    assert_all_detected(outcome)


@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_every_random_edit_of_a_case_is_found_by_verifying_that_case_on_postgres(
    postgres_store: tuple[Settings, str],
) -> None:
    settings, _ = postgres_store
    ct = bootstrap(settings, clock=FixedClock(start_of_2026()))
    edits = PostgresEdits(POSTGRES_URL, settings.database_schema or "")
    trail = AuditTrail(ct.app, ConnectionDatabase(edits.conn), ct.clock, ct.audit.signer)  # type: ignore[arg-type]
    try:
        outcome, blind = case_campaign(edits, trail, edits.conn.rollback, EDITS, 606, commit=False)
    finally:
        edits.conn.rollback()
        edits.conn.close()
        ct.close()
    assert_found_by_one_case_verification(outcome, blind)


@pytest.mark.postgres
def test_the_untouched_postgres_store_verifies_clean_after_a_restart(
    postgres_store: tuple[Settings, str],
) -> None:
    settings, _ = postgres_store
    ct = bootstrap(settings, clock=FixedClock(start_of_2026()))
    try:
        report = ct.audit.verify()
        assert report.ok, report.problems[:5]
        assert report.checked_events == report.log_size > 2000
    finally:
        ct.close()
