"""RFC 3161 timestamps of the checkpoints, from the TSA at `CASETRAIL_TSA_URL`: asked for in
the cron's checkpoint job (like the witnesses' cosignatures), kept beside the checkpoint."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import urllib.request

from casetrail.db import Database
from evidence.timestamp import TimestampError, read_token, timestamp_request, token_of_response

TIMESTAMP_TABLE = "audit_timestamps"
log = logging.getLogger("casetrail.audit")


def create_tables(db: Database) -> None:
    db.execute_script(
        [
            f"CREATE TABLE IF NOT EXISTS {TIMESTAMP_TABLE} (checkpoint_number BIGINT PRIMARY KEY, "
            "token TEXT NOT NULL)"
        ]
    )


def timestamps(db: Database) -> dict[int, str]:
    """The stored tokens (base64 DER), by checkpoint number."""
    rows = db.query(f"SELECT checkpoint_number, token FROM {TIMESTAMP_TABLE}")
    return {int(row["checkpoint_number"]): str(row["token"]) for row in rows}


def stamp(db: Database, url: str, number: int, note: str) -> bool:
    """Asks the TSA for a token over the signed note; keeps it if it answers this request
    (the nonce and the messageImprint are checked here; the signature offline)."""
    nonce = secrets.randbits(63)
    request = urllib.request.Request(
        url,
        data=timestamp_request(note.encode(), nonce),
        headers={"Content-Type": "application/timestamp-query"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            token = token_of_response(response.read())
        answered, _ = read_token(token)
        if answered.nonce != nonce or answered.imprint != hashlib.sha256(note.encode()).digest():
            raise TimestampError("the TSA's answer is not for this request")
    except (OSError, ValueError) as error:  # TimestampError is a ValueError
        log.warning("no timestamp for checkpoint #%s (%s)", number, error)
        return False
    with db.transaction() as cur:
        cur.execute(f"DELETE FROM {TIMESTAMP_TABLE} WHERE checkpoint_number = ?", (number,))
        cur.execute(
            f"INSERT INTO {TIMESTAMP_TABLE} (checkpoint_number, token) VALUES (?, ?)",
            (number, base64.b64encode(token).decode()),
        )
    return True
