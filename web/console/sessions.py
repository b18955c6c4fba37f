"""The console's sign-in sessions, kept server-side in the store's database.

The browser holds only a random session id inside Flask's signed cookie; the database
keeps the id's hash, the user it signed in and the hash of the token they signed in with
(never the token). Every request re-checks the user in the directory: a disabled user or
a rotated token ends the session at once, as it ends the API's bearer access.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from casetrail.bootstrap import Casetrail
from casetrail.directory import BadToken, User, hash_token

SECRET_FILE = "console-secret.key"
DEFAULT_SESSION_HOURS = 8.0
TABLE = "console_sessions"


def session_hours() -> float:
    """`CASETRAIL_CONSOLE_SESSION_HOURS` (default 8): how long a sign-in lasts."""
    raw = os.environ.get("CASETRAIL_CONSOLE_SESSION_HOURS", "").strip()
    try:
        hours = float(raw) if raw else DEFAULT_SESSION_HOURS
    except ValueError:
        hours = DEFAULT_SESSION_HOURS
    return hours if hours > 0 else DEFAULT_SESSION_HOURS


def load_secret_key(data_dir: Path) -> bytes:
    """Flask's signing key, one per data directory (mode 0600), made on first start; as
    casetrail.audit.keys does with the log's key, the first of two processes wins."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    for _ in range(100):
        text = path.read_text()
        if text.endswith("\n"):
            break
        time.sleep(0.02)
    return bytes.fromhex(text.strip())


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Signed:
    """A live session: who, and the token a form must carry (CSRF)."""

    user: User
    csrf: str


class Sessions:
    def __init__(self, ct: Casetrail) -> None:
        self.ct = ct
        ct.db.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {TABLE} (id_hash TEXT PRIMARY KEY, "
                "user_id TEXT NOT NULL, token_hash TEXT NOT NULL, csrf TEXT NOT NULL, "
                "expires_at TEXT NOT NULL)"
            ]
        )

    def sign_in(self, token: str) -> tuple[str, User]:
        """A new session for the token's user (BadToken when it is not a valid one)."""
        user = self.ct.directory.authenticate(token)
        session_id = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(hours=session_hours())
        with self.ct.db.transaction() as cur:
            cur.execute(f"DELETE FROM {TABLE} WHERE expires_at < ?", (_now(),))
            cur.execute(
                f"INSERT INTO {TABLE} (id_hash, user_id, token_hash, csrf, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    _digest(session_id),
                    user.id,
                    hash_token(token),
                    secrets.token_urlsafe(24),
                    expires.isoformat(),
                ),
            )
        return session_id, user

    def current(self, session_id: str | None) -> Signed | None:
        if not session_id:
            return None
        row = self.ct.db.query_one(
            f"SELECT user_id, token_hash, csrf, expires_at FROM {TABLE} WHERE id_hash = ?",
            (_digest(session_id),),
        )
        if row is None or str(row["expires_at"]) <= _now():
            return None
        # The directory decides, now: still this token (not rotated), active, not expired.
        try:
            user = self.ct.directory.authenticate_hash(str(row["token_hash"]))
        except BadToken:
            return None
        if not hmac.compare_digest(user.id, str(row["user_id"])):
            return None
        return Signed(user=user, csrf=str(row["csrf"]))

    def sign_out(self, session_id: str | None) -> None:
        if session_id:
            with self.ct.db.transaction() as cur:
                cur.execute(f"DELETE FROM {TABLE} WHERE id_hash = ?", (_digest(session_id),))


def _now() -> str:
    return datetime.now(UTC).isoformat()
