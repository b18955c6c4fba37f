"""The first hour of a new user, through the real `casetrail` command: what was seen on the
first version (a demo written into the live store, a new empty store made by a typo in the
data directory, tracebacks for bad settings) and what is seen now."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from casetrail.presence import store_exists
from domain.case import Actor
from tests.conftest import POSTGRES_ENABLED, POSTGRES_SKIP, POSTGRES_URL
from tests.dispute_builders import registration

CASETRAIL = str(Path(sys.executable).parent / "casetrail")


def environ(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without CASETRAIL_ variables, then the store's and `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CASETRAIL_")}
    if settings is not None:
        env["CASETRAIL_DATA_DIR"] = str(settings.data_dir)
        if settings.database_url:
            env["CASETRAIL_DATABASE_URL"] = settings.database_url
            env["CASETRAIL_DATABASE_SCHEMA"] = settings.database_schema or ""
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [CASETRAIL, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout, done.stderr


def event_count(ct: Casetrail) -> int:
    return ct.app.recorder.max_notification_id() or 0


def test_the_demo_refuses_a_store_that_holds_cases_and_names_it(
    casetrail: Casetrail, settings: Settings, caseworker: Actor
) -> None:
    # Seen: `casetrail demo` beside `up` wrote 3,000 back-dated disputes into the live store.
    casetrail.service.open_case(
        caseworker, "dispute", "320102", "DisputeRegistered", registration()
    )
    before = event_count(casetrail)

    code, out, err = casetrail_demo(environ(settings))

    assert code == 2, (out, err)
    assert err.splitlines()[-1].startswith("error (store_not_empty): "), err
    assert (settings.database_schema or str(settings.data_dir)) in err
    assert "--data-dir" in err
    assert event_count(casetrail) == before


def casetrail_demo(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return run(env, "demo", "--scale", "0.0002", *args)


def test_the_demo_fills_a_new_store_given_by_data_dir_and_says_which(tmp_path: Path) -> None:
    target = tmp_path / "demo-store"

    code, out, err = casetrail_demo(environ(), "--data-dir", str(target))

    assert code == 0, err
    assert f"filled the store in {target}" in out
    # Once filled, it is a store that holds cases: a second run is refused.
    code, out, err = casetrail_demo(environ(), "--data-dir", str(target))
    assert code == 2 and f"error (store_not_empty): the store in {target}" in err


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "verify"],
        ["users", "create", "调解员", "--role", "caseworker", "--unit", "320102"],
        ["units", "list"],
        ["projections", "status"],
        ["audit", "public-key"],
    ],
)
def test_commands_on_a_place_without_a_store_refuse_and_create_nothing(
    settings: Settings, command: list[str]
) -> None:
    # Seen: a typo in the data directory made a new empty store and a new signing key;
    # `audit verify` there said "0 events checked ... verified", exit 0.
    code, out, err = run(environ(settings), *command)

    assert code == 2, (out, err)
    assert err.startswith("error (no_store): there is no casetrail store in "), err
    assert (settings.database_schema or str(settings.data_dir)) in err
    assert "verified" not in out
    assert "Traceback" not in err
    assert not store_exists(settings)
    assert not (settings.data_dir / "audit-signing.key").exists()


def test_init_creates_the_store_and_the_first_admin_once(settings: Settings) -> None:
    env = environ(settings)
    code, out, err = run(env, "init")
    assert code == 0, err
    assert "admin token (shown once, keep it): ct_" in out
    assert store_exists(settings)

    code, out, err = run(env, "init")
    assert code == 0, err
    assert "admin token" not in out and "nothing changed" in out

    code, out, err = run(env, "audit", "verify")
    assert code == 0, err
    assert "verified" in out


BAD_SETTINGS = [
    (
        {"CASETRAIL_CATCHUP_INTERVAL": "thirty"},
        "error (bad_config): CASETRAIL_CATCHUP_INTERVAL: 'thirty' is not a whole number",
    ),
    (
        {"CASETRAIL_CIPHER_KEY": "not a key"},
        "error (bad_config): CASETRAIL_CIPHER_KEY: the key is not base64; expected",
    ),
    (
        {"CASETRAIL_CIPHER_KEY": "c2hvcnQ="},
        "error (bad_config): CASETRAIL_CIPHER_KEY: the key decodes to 5 bytes; expected",
    ),
    (
        {"CASETRAIL_MASTER_KEY": "c2hvcnQ="},
        "error (bad_config): CASETRAIL_MASTER_KEY: the key decodes to 5 bytes; expected",
    ),
    (
        {"CASETRAIL_DATABASE_URL": "mysql://root@localhost/casetrail"},
        "error (bad_config): CASETRAIL_DATABASE_URL: the scheme mysql:// is not supported",
    ),
    (
        {"CASETRAIL_REDIS_URL": "http://localhost:6379"},
        "error (bad_config): CASETRAIL_REDIS_URL: http is not a Redis URL",
    ),
    (
        {"CASETRAIL_SIGNING_KEY": "PRIVATE+KEY+x"},
        "error (bad_config): CASETRAIL_SIGNING_KEY: not an Ed25519 signing key",
    ),
]


@pytest.mark.parametrize("command", [["units", "list"], ["init"], ["worker", "--burst"]])
@pytest.mark.parametrize(("variables", "line"), BAD_SETTINGS)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, variables: dict[str, str], line: str, command: list[str]
) -> None:
    # Seen: tracebacks (a ValueError from int(), from base64, from the URL check).
    env = environ(CASETRAIL_DATA_DIR=str(tmp_path / "var"), **variables)

    code, out, err = run(env, *command)

    assert code == 2, (out, err)
    assert err.startswith(line), err
    assert len(err.splitlines()) == 1 and "; expected " in err
    assert not (tmp_path / "var").exists()


def test_every_bad_setting_is_named_at_once(tmp_path: Path) -> None:
    env = environ(
        CASETRAIL_DATA_DIR=str(tmp_path / "var"),
        CASETRAIL_CATCHUP_INTERVAL="0",
        CASETRAIL_PROJECTION_BATCH="many",
        CASETRAIL_DATABASE_URL="mysql://localhost/x",
    )
    code, _, err = run(env, "units", "list")
    assert code == 2
    named = sorted(line.split(":")[1].strip() for line in err.splitlines())
    assert named == [
        "CASETRAIL_CATCHUP_INTERVAL",
        "CASETRAIL_DATABASE_URL",
        "CASETRAIL_PROJECTION_BATCH",
    ], err


def postgres_url(database: str) -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + database


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["units", "list"], ["init"]])
def test_a_postgres_database_that_does_not_exist_is_named_at_once(
    tmp_path: Path, command: list[str]
) -> None:
    # Seen: a 10 s wait, then 72 lines ending "couldn't get a connection after 10.00 sec".
    if not POSTGRES_ENABLED:
        pytest.skip(POSTGRES_SKIP)
    missing = "nodb_" + uuid.uuid4().hex[:8]
    env = environ(
        CASETRAIL_DATA_DIR=str(tmp_path / "var"), CASETRAIL_DATABASE_URL=postgres_url(missing)
    )
    started = time.monotonic()
    code, out, err = run(env, *command)
    assert code == 2, (out, err)
    assert time.monotonic() - started < 8
    assert err.startswith(
        f"error (bad_config): CASETRAIL_DATABASE_URL: the database {missing} does not exist"
    ), err
    assert len(err.splitlines()) == 1


@pytest.mark.postgres
def test_a_postgres_schema_that_does_not_exist_is_named(tmp_path: Path) -> None:
    if not POSTGRES_ENABLED:
        pytest.skip(POSTGRES_SKIP)
    missing = "s_" + uuid.uuid4().hex[:12]
    env = environ(
        CASETRAIL_DATA_DIR=str(tmp_path / "var"),
        CASETRAIL_DATABASE_URL=POSTGRES_URL,
        CASETRAIL_DATABASE_SCHEMA=missing,
    )
    for command in (["units", "list"], ["init"]):
        code, out, err = run(env, *command)
        assert code == 2, (out, err)
        assert err.startswith(
            f"error (bad_config): CASETRAIL_DATABASE_SCHEMA: the schema {missing} does not exist"
        ), err
        assert len(err.splitlines()) == 1
    with psycopg.connect(POSTGRES_URL) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (missing,))
        assert found.fetchone() is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "is not valid JSON (Expecting property name"),
        ('{"units": 3}', "does not hold units"),
        ('[{"code": "320199"}]', "does not hold units"),
    ],
)
def test_units_load_refuses_a_file_that_is_not_units_and_changes_nothing(
    casetrail: Casetrail, settings: Settings, tmp_path: Path, text: str, says: str
) -> None:
    # Seen: a JSONDecodeError traceback and exit 1 (the README says 2).
    before = len(casetrail.directory.units())
    file = tmp_path / "units.json"
    file.write_text(text, encoding="utf-8")

    code, out, err = run(environ(settings), "units", "load", str(file))

    assert code == 2, (out, err)
    assert err.startswith(f"error (bad_input): {file} {says}"), err
    assert len(casetrail.directory.units()) == before
