"""`casetrail store migrate` (issue 20): a store written without per-person keys (no
cipher, or the old global CASETRAIL_CIPHER_KEY) rewritten into a new store with them. The
old store is not touched (its files, or every row of its schema, are the same after); every
event of the new store decodes to the old one; the new store verifies, holds no name in the
clear, and can erase a person; a bad source is refused in one line, writing nothing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner, Result
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import PersistenceError

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from casetrail.personal import ERASED, KEYS_TABLE, SUBJECTS_TABLE
from cli.main import main
from cli.old_store import open_old
from domain.clock import FixedClock
from tests.conftest import make_settings
from tests.integration.audit_support import build_store
from tests.integration.test_erasure import (
    ADMIN,
    AUDITOR,
    ERASED_PERSON,
    KEPT_PERSON,
    OTHER,
    WORKER,
    cli,
    dispute,
    erase_at_console,
    every_byte,
)
from tests.units import TEST_UNITS


def old_style_store(settings: Settings, clock: FixedClock) -> tuple[Casetrail, dict[str, Any]]:
    """A store as casetrail wrote it before per-person keys: the bootstrap of today, then
    the keys detached and their tables dropped (no setting turns them off: only stores
    from before them lack them). Holds cases, an administration act, a read-access record
    and an idempotency key, and a signed checkpoint over all of it."""
    ct = bootstrap(settings, clock=clock)
    ct.app.mapper.keys = None  # type: ignore[attr-defined]
    ct.db.execute_script([f"DROP TABLE {KEYS_TABLE}", f"DROP TABLE {SUBJECTS_TABLE}"])
    ct.directory.load_units(TEST_UNITS)
    _, token = ct.directory.create_user("王審計", "auditor", "320000", by=ADMIN)
    erased = dispute(ct, clock, ERASED_PERSON, OTHER, close=True)
    kept = dispute(ct, clock, KEPT_PERSON, OTHER, close=True)
    clock.advance(timedelta(minutes=5))
    ct.reads.case_state(AUDITOR, kept)  # a read-access record, with its index rows
    retried = ct.service.append(
        WORKER, kept, "FollowUpVisited", FOLLOW_UP, idempotency_key="visit-1"
    )
    long = build_store(ct, clock, 1)[0]
    for _ in range(48):  # 52 events: a snapshot at version 50
        ct.service.append(WORKER, long, "MediationSessionHeld", SESSION)
    checkpoint = ct.audit.write_checkpoint(force=True)
    cases = {case: events_of(ct, case) for case in (erased, kept, long)}
    made = {"erased": erased, "kept": kept, "cases": cases, "token": token, "retried": retried}
    return ct, made | {"checkpoint": checkpoint}


SESSION = {
    "held_on": "2026-03-02",
    "mediators": ["王调解"],
    "attendees": ["欧阳淑芬"],
    "notes": "…",
}
FOLLOW_UP = {"visited_on": "2026-03-02", "satisfaction": 5, "agreement_performed": True}


def events_of(ct: Casetrail, case_id: str) -> list[dict[str, Any]]:
    """The case's events as the application decodes them (every field)."""
    return [
        {"class": type(event).__name__, **event.__dict__}
        for event in ct.app.events.get(UUID(case_id))
    ]


def fingerprint(settings: Settings) -> dict[str, str]:
    """SHA-256 of every file of the data directory (SQLite's `-shm` index aside: SQLite
    may update it for a reader), or of every row of every table of the schema."""
    if settings.database_url is None:
        return {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(settings.data_dir.iterdir())
            if not path.name.endswith("-shm")
        }
    return {"rows": hashlib.sha256(every_byte(None, settings)).hexdigest()}  # type: ignore[arg-type]


def migrate(old: Settings, new: Settings, *extra: str, env: dict[str, str] | None = None) -> Result:
    args = ["store", "migrate", "--from", str(old.data_dir), "--data-dir", str(new.data_dir)]
    if old.database_url:
        args += ["--from-database-url", old.database_url, "--from-schema", str(old.database_schema)]
    variables = {"CASETRAIL_DATA_DIR": str(new.data_dir), **(env or {})}
    if new.database_url:
        variables |= {
            "CASETRAIL_DATABASE_URL": new.database_url,
            "CASETRAIL_DATABASE_SCHEMA": str(new.database_schema),
        }
    return CliRunner().invoke(main, [*args, *extra], env=variables, catch_exceptions=False)


@pytest.fixture
def new_settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    yield from make_settings(backend, tmp_path / "new")


@pytest.mark.parametrize("old_open", [False, True], ids=["old-closed", "old-open"])
def test_an_old_store_is_rewritten_with_per_person_keys_and_left_as_it_was(
    settings: Settings, new_settings: Settings, clock: FixedClock, old_open: bool
) -> None:
    old, made = old_style_store(settings, clock)
    if not old_open:
        old.close()  # SQLite: no WAL left; opened immutable
    elif settings.backend == "sqlite":
        assert settings.sqlite_path.with_name("casetrail.sqlite-wal").exists()
    before = fingerprint(settings)
    try:
        result = migrate(settings, new_settings)
    finally:
        after = fingerprint(settings)
        old.close()
    assert result.exit_code == 0, result.output
    assert after == before  # nothing of the old store written, nothing made beside it
    assert "every event decodes as in the old store" in result.output
    assert " and 1 snapshots " in result.output

    new = bootstrap(new_settings, clock=clock)
    try:
        for case_id, events in made["cases"].items():
            assert events_of(new, case_id) == events
        raw = (
            every_byte(new, new_settings)
            if new_settings.database_url
            else b"".join(
                path.read_bytes() for path in new_settings.data_dir.glob("casetrail.sqlite*")
            )
        )
        for person in (ERASED_PERSON, KEPT_PERSON, OTHER):
            for value in person.values():
                assert value.encode() not in raw, value
                assert json.dumps(value).encode() not in raw, value
        # The migration act names the old log's last checkpoint.
        act = [e for e in new.reads.feed(AUDITOR, 0, 1000) if e["type"] == "StoreMigrated"]
        assert len(act) == 1
        named = act[0]["data"]["from"]["checkpoint"]
        assert (named["root"], named["size"]) == (
            made["checkpoint"].root_hash,
            made["checkpoint"].tree_size,
        )
        assert act[0]["data"]["events"] == act[0]["data"]["from"]["log_size"] == named["size"]
        # Users, their tokens and the idempotency keys came along.
        assert new.directory.authenticate(made["token"]).name == "王審計"
        again = new.service.append(
            WORKER, made["kept"], "FollowUpVisited", FOLLOW_UP, idempotency_key="visit-1"
        )
        assert again.version == made["retried"].version
    finally:
        new.close()

    code, output = cli(new_settings, "audit", "verify")
    assert code == 0, output
    code, output = cli(new_settings, "projections", "catch-up")  # built from the new log
    assert code == 0, output
    clock.advance(timedelta(hours=2))
    code, output = erase_at_console(new_settings, ERASED_PERSON["id_number"])
    assert code == 0, output
    new = bootstrap(new_settings, clock=clock)
    try:
        state = new.reads.case_state(AUDITOR, made["erased"])
        assert state["parties"][0]["name"] == ERASED
        assert (
            new.reads.case_state(AUDITOR, made["kept"])["parties"][0]["name"] == KEPT_PERSON["name"]
        )
    finally:
        new.close()
    code, output = cli(new_settings, "audit", "verify")
    assert code == 0, output


def test_a_store_under_the_old_cipher_key_is_read_with_it_and_migrated(
    tmp_path: Path, clock: FixedClock
) -> None:
    key = AESCipher.create_key(num_bytes=32)
    settings = Settings(data_dir=tmp_path / "old", cipher_key=key)
    old, made = old_style_store(settings, clock)
    old.close()
    new_settings = Settings(data_dir=tmp_path / "new")
    before = fingerprint(settings)
    refused = migrate(settings, new_settings)
    assert refused.exit_code == 2, refused.output
    assert (
        "error (cannot_decode)" in refused.output and "CASETRAIL_FROM_CIPHER_KEY" in refused.output
    )
    assert not new_settings.data_dir.exists()

    result = migrate(settings, new_settings, env={"CASETRAIL_FROM_CIPHER_KEY": key})
    assert result.exit_code == 0, result.output
    assert fingerprint(settings) == before
    new = bootstrap(new_settings, clock=clock)
    try:
        for case_id, events in made["cases"].items():
            assert events_of(new, case_id) == events
    finally:
        new.close()


def test_a_source_that_cannot_be_migrated_is_refused_in_one_line_and_nothing_is_written(
    tmp_path: Path, clock: FixedClock
) -> None:
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "casetrail.sqlite").write_bytes(b"this is not a database" * 100)
    keyed = Settings(data_dir=tmp_path / "keyed")  # today's store: per-person keys already
    bootstrap(keyed, clock=clock).close()
    old_settings = Settings(data_dir=tmp_path / "old")
    old, _ = old_style_store(old_settings, clock)
    old.close()
    behind = Settings(data_dir=tmp_path / "behind")  # appended to since its checkpoint
    late, made = old_style_store(behind, clock)
    late.service.append(WORKER, made["kept"], "FollowUpVisited", FOLLOW_UP)
    late.close()
    tampered = Settings(data_dir=tmp_path / "tampered")  # an event's bytes rewritten
    old_style_store(tampered, clock)[0].close()
    with sqlite3.connect(tampered.sqlite_path) as conn:
        conn.execute(
            "UPDATE stored_events SET state = CAST(REPLACE(CAST(state AS TEXT), ?, ?) AS BLOB)",
            (ERASED_PERSON["name"], "某某某"),
        )
    occupied = Settings(data_dir=tmp_path / "occupied")
    occupied.data_dir.mkdir()
    (occupied.data_dir / "notes.txt").write_text("mine")
    new = Settings(data_dir=tmp_path / "new")
    cases = [
        (Settings(data_dir=tmp_path / "nowhere"), new, "no_store"),
        (Settings(data_dir=garbage), new, "bad_source"),
        (keyed, new, "has_person_keys"),
        (old_settings, occupied, "target_not_empty"),
        (behind, new, "checkpoint_behind"),
        (tampered, new, "source_does_not_verify"),
    ]
    before = fingerprint(old_settings)
    for source, target, code in cases:
        result = migrate(source, target)
        assert result.exit_code == 2, result.output
        lines = result.output.splitlines()
        assert lines[-1].startswith(f"error ({code}): "), result.output
        assert "Traceback" not in result.output and "error (" not in "".join(lines[:-1])
    assert not new.data_dir.exists()
    assert (occupied.data_dir / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".*migrating*"))
    assert fingerprint(old_settings) == before


def test_the_old_store_is_opened_so_that_its_database_refuses_every_write(
    settings: Settings, clock: FixedClock
) -> None:
    old, _ = old_style_store(settings, clock)
    old.close()
    before = fingerprint(settings)
    reader = open_old(settings)
    try:
        with pytest.raises(PersistenceError):  # the writers' turn is refused at once
            reader.db.execute_script(["DELETE FROM units"])
        refused = pytest.raises(Exception, match=r"read.?only")  # and the database refuses
        with refused, reader.db.datastore.transaction(commit=True) as cur:
            cur.execute("DELETE FROM units")
        assert reader.db.query("SELECT COUNT(*) AS n FROM units")[0]["n"] > 0
    finally:
        reader.close()
    assert fingerprint(settings) == before
