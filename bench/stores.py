"""Fresh stores for one benchmark run: a SQLite file on the disk (not tmpfs: the fsyncs are
part of the cost) or a new PostgreSQL schema, removed afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from casetrail.config import Settings

POSTGRES_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
WORK_DIR = Path(os.environ.get("BENCH_DIR", "/var/tmp"))


@contextmanager
def fresh_settings(backend: str, label: str) -> Iterator[Settings]:
    """Settings for an empty store of `backend`; everything is removed on exit."""
    root = Path(tempfile.mkdtemp(prefix=f"casetrail-bench-{label}-", dir=WORK_DIR))
    schema = None
    try:
        queue = f"bench-{uuid.uuid4().hex[:10]}"
        if backend == "sqlite":
            yield Settings(data_dir=root / "var", redis_url=REDIS_URL, queue_name=queue)
            return
        import psycopg

        schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        yield Settings(
            data_dir=root / "var",
            database_url=POSTGRES_URL,
            database_schema=schema,
            redis_url=REDIS_URL,
            queue_name=queue,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if schema is not None:
            import psycopg

            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a casetrail process (gunicorn) use these settings."""
    env = {
        "CASETRAIL_DATA_DIR": str(settings.data_dir),
        "CASETRAIL_QUEUE": settings.queue_name,
    }
    if settings.redis_url:
        env["CASETRAIL_REDIS_URL"] = settings.redis_url
    if settings.database_url:
        env["CASETRAIL_DATABASE_URL"] = settings.database_url
    if settings.database_schema:
        env["CASETRAIL_DATABASE_SCHEMA"] = settings.database_schema
    return env


def clear_queue(settings: Settings) -> None:
    """Removes the Redis keys of this run's queue (the appends signalled into it)."""
    import redis

    conn = redis.Redis.from_url(settings.redis_url or REDIS_URL)
    for key in conn.scan_iter(match=f"*{settings.queue_name}*", count=1000):
        conn.delete(key)
