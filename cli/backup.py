"""`casetrail backup DEST` and `casetrail restore SRC --data-dir DIR`: copies of a running
store that prove themselves when restored.

A backup is a directory, 0700, its files 0600:

- `casetrail.sqlite` (SQLite: a consistent copy through SQLite's online backup API, taken
  while the service runs) or `casetrail.sql` (PostgreSQL: `pg_dump --schema` of the store's
  schema, one consistent snapshot);
- `audit-signing.key`, the key that signs the audit log's checkpoints, when it is a file of
  the data directory (a store restored without it could not sign again, nor could its old
  checkpoints be told from forged ones). A key set in `CASETRAIL_SIGNING_KEY` is not
  copied: the operator keeps it, and sets it again for the restored store;
- `manifest.json`: the log's public (verifier) key, the last signed checkpoint and the
  log's head in the copy. The verifier key alone is enough to check the restored log.

Before the copy the backup signs a checkpoint if the log grew since the last one, so the
copy holds a recent one. The backup holds personal data (unencrypted unless
`CASETRAIL_CIPHER_KEY` is set) and the signing key: keep it like the data directory.

Restore refuses a target that is not empty (exit 2, `target_not_empty`), copies the
backup in, then verifies every hash chain and the Merkle log against every signed
checkpoint the copy holds, the manifest's last one included, with the manifest's verifier
key: exit 0 only if all verifies, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psycopg

from casetrail.audit.keys import KEY_FILE
from casetrail.audit.records import CHECKPOINT_TABLE
from casetrail.config import Settings
from casetrail.files import PRIVATE_FILE, private_dir, write_private
from casetrail.presence import SQLITE_EVENTS_TABLE, check_reachable, require_store
from cli.audit import _print_report
from cli.store import open_store, settings_for
from domain.errors import CasetrailError

FORMAT = "casetrail-backup/1"
MANIFEST = "manifest.json"
SQLITE_FILE = "casetrail.sqlite"
DUMP_FILE = "casetrail.sql"


class BackupError(CasetrailError):
    code = "backup_failed"


class TargetNotEmpty(CasetrailError):
    code = "target_not_empty"


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data-dir", default=None, help="Data directory (default: CASETRAIL_DATA_DIR).")
def backup(dest: Path, data_dir: str | None) -> None:
    """A consistent copy of the running store into DEST (a new or empty directory)."""
    settings = settings_for(data_dir)
    dest = dest.resolve()
    if dest.exists() and any(dest.iterdir()):
        raise TargetNotEmpty(f"{dest} is not empty; expected a new or empty directory")
    ct = open_store(settings)
    try:
        ct.audit.write_checkpoint()  # the copy holds a recent signed checkpoint
        verifier_key = ct.audit.public_key
    finally:
        ct.close()
    private_dir(dest)
    if settings.backend == "sqlite":
        copy_sqlite(settings.sqlite_path, dest / SQLITE_FILE)
        manifest = sqlite_manifest(dest / SQLITE_FILE)
    else:
        manifest = {"head": None, "checkpoint": None, "schema": schema_of(settings)}
        dump_postgres(settings, dest / DUMP_FILE)
    key_file = settings.data_dir / KEY_FILE
    if settings.signing_key is None and key_file.is_file():
        write_private(dest / KEY_FILE, key_file.read_text())
        signing = f"included ({KEY_FILE})"
    else:
        signing = "not included: set CASETRAIL_SIGNING_KEY again for the restored store"
    manifest = {
        "format": FORMAT,
        "backend": settings.backend,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "verifier_key": verifier_key,
        "signing_key": signing,
        **manifest,
    }
    write_private(dest / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    click.echo(f"backup of {settings.backend} store written to {dest}")
    if manifest["head"] is not None:
        click.echo(f"log head: {manifest['head']} events")
    click.echo(f"signing key: {signing}")


def copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: every page in one step, under one read transaction, so the
    copy is the database at one moment while writers go on (WAL)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    os.close(fd)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()


def sqlite_manifest(copy: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
        head = conn.execute(f"SELECT MAX(rowid) FROM {SQLITE_EVENTS_TABLE}").fetchone()[0]
        row = conn.execute(
            f"SELECT number, tree_size, note FROM {CHECKPOINT_TABLE} ORDER BY number DESC LIMIT 1"
        ).fetchone()
    checkpoint = None if row is None else {"number": row[0], "tree_size": row[1], "note": row[2]}
    return {"head": int(head or 0), "checkpoint": checkpoint}


def schema_of(settings: Settings) -> str:
    return settings.database_schema or "public"


def dump_postgres(settings: Settings, target: Path) -> None:
    """`pg_dump` of the store's schema: one consistent snapshot (a repeatable-read
    transaction), whatever is appended meanwhile."""
    if shutil.which("pg_dump") is None:
        raise BackupError(
            "pg_dump is not installed; install the PostgreSQL client of the server's "
            f"version, or run: pg_dump --schema={schema_of(settings)} --no-owner "
            f"--no-privileges --file={target} <database URL>"
        )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    os.close(fd)
    command = [
        "pg_dump",
        f"--schema={schema_of(settings)}",
        "--no-owner",
        "--no-privileges",
        f"--file={target}",
        f"--dbname={settings.database_url}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1:]}")


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The new store's data directory (must be new or empty).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verification report as JSON.")
def restore(src: Path, data_dir: Path, as_json: bool) -> None:
    """Restores the backup SRC into a new store and verifies it (exit 1 if it does not).

    PostgreSQL backups go into CASETRAIL_DATABASE_URL's CASETRAIL_DATABASE_SCHEMA, which
    must not hold tables yet."""
    manifest = read_manifest(src)
    settings = settings_for(data_dir)
    target = settings.data_dir
    if target.exists() and any(target.iterdir()):
        raise TargetNotEmpty(f"{target} is not empty; expected a new or empty directory")
    if manifest["backend"] == "sqlite":
        settings = settings.with_(database_url=None, database_schema=None)
    elif settings.backend != "postgres":
        raise BackupError(
            "this is a PostgreSQL backup; set CASETRAIL_DATABASE_URL and a new "
            "CASETRAIL_DATABASE_SCHEMA for the restored store"
        )
    else:
        check_empty_schema(settings)
    private_dir(target)
    if manifest["backend"] == "sqlite":
        copy_sqlite(src / SQLITE_FILE, settings.sqlite_path)
    else:
        load_postgres(src / DUMP_FILE, str(manifest["schema"]), settings)
    if (src / KEY_FILE).is_file() and settings.signing_key is None:
        write_private(target / KEY_FILE, (src / KEY_FILE).read_text())
    require_store(settings)
    click.echo(f"restored {src} into {describe(settings)}")
    sys.exit(0 if verify_restored(settings, manifest, as_json=as_json) else 1)


def read_manifest(src: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((src / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        raise BackupError(
            f"{src} holds no readable {MANIFEST}; expected a casetrail backup"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{src / MANIFEST} is not a {FORMAT} manifest")
    return manifest


def describe(settings: Settings) -> str:
    if settings.backend == "sqlite":
        return str(settings.data_dir)
    return f"schema {schema_of(settings)} of the PostgreSQL database"


def verify_restored(settings: Settings, manifest: dict[str, Any], *, as_json: bool) -> bool:
    """The restored log against every checkpoint it holds and the manifest's, with the
    manifest's verifier key; its head where the backup said."""
    ct = open_store(settings)
    try:
        ok = True
        if ct.audit.public_key != manifest["verifier_key"]:
            click.echo(
                "PROBLEM [signing_key_mismatch] the restored store's signing key is not the "
                "backup's; set CASETRAIL_SIGNING_KEY to the key the backed-up store used"
            )
            ok = False
        head = int(ct.app.recorder.max_notification_id() or 0)
        if manifest["head"] is not None and head != manifest["head"]:
            click.echo(
                f"PROBLEM [head_mismatch] {head} events restored, the backup had {manifest['head']}"
            )
            ok = False
        trusted = [manifest["checkpoint"]["note"]] if manifest.get("checkpoint") else []
        report = ct.audit.verify(None, trusted)
    finally:
        ct.close()
    _print_report(report, as_json=as_json, what="the restored store")
    return ok and report.ok


def check_empty_schema(settings: Settings) -> None:
    """The target schema, made if need be, must hold no tables."""
    check_reachable(settings.with_(database_schema=None))
    schema = schema_of(settings)
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    if tables and tables[0]:
        raise TargetNotEmpty(
            f"schema {schema} already holds {tables[0]} tables; expected a new or empty "
            "CASETRAIL_DATABASE_SCHEMA to restore into"
        )


def load_postgres(dump: Path, schema: str, settings: Settings) -> None:
    """Runs the dump with `psql` in one transaction, its schema renamed to the target's."""
    if shutil.which("psql") is None:
        raise BackupError("psql is not installed; install the PostgreSQL client to restore")
    text = renamed(dump.read_text("utf-8"), schema, schema_of(settings))
    command = [
        "psql",
        "--quiet",
        "--no-psqlrc",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={settings.database_url}",
    ]
    done = subprocess.run(command, input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"psql could not load the dump: {done.stderr.strip()[-500:]}")


def renamed(dump: str, old: str, new: str) -> str:
    """The dump's statements with schema `old` as `new`; the rows (COPY data) untouched."""
    qualified = re.compile(rf"(?<![\w$]){re.escape(old)}\.")
    lines, copying = [f"CREATE SCHEMA IF NOT EXISTS {new};"], False
    for line in dump.splitlines():
        if copying:
            copying = line != "\\."
        elif line.startswith("CREATE SCHEMA "):
            continue
        else:
            copying = line.startswith("COPY ") and line.endswith("FROM stdin;")
            line = qualified.sub(f"{new}.", line)
            line = re.sub(rf"\bSCHEMA {re.escape(old)}\b", f"SCHEMA {new}", line)
        lines.append(line)
    return "\n".join(lines) + "\n"
