"""Files that hold personal data or secrets are the service user's alone: the data
directory 0700, the SQLite database with its WAL and shared-memory files, exports and
keys 0600 (SQLite creates a new WAL with its database's mode)."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Creates `path` if need be; either way, only its owner may enter it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    path.chmod(PRIVATE_DIR)


def private_sqlite(database: Path) -> None:
    """The database file and the files SQLite keeps beside it, owner-only."""
    for suffix in SQLITE_SUFFIXES:
        path = database.with_name(database.name + suffix)
        if path.exists():
            path.chmod(PRIVATE_FILE)


def write_private(path: Path, text: str | bytes) -> None:
    """Writes `text` (UTF-8, or bytes as they are) to a file only its owner may read,
    replacing any before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8") if isinstance(text, str) else text)
