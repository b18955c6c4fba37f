"""The user lifecycle from the server's command line: what an operator does when an admin's
token is lost, a user leaves or moves; every act lands in the hash-chained administration
log, named after the operator's login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from domain.errors import CasetrailError
from store.chain_links import CHAIN_TABLE

CASETRAIL = str(Path(sys.executable).with_name("casetrail"))


def run(data: Path, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CASETRAIL_")}
    env["CASETRAIL_DATA_DIR"] = str(data)
    done = subprocess.run(
        [CASETRAIL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def token_of(output: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("token:"))


def test_an_operator_rotates_a_lost_token_disables_and_moves_users_and_each_act_is_logged(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    run(data, "init")
    created = run(data, "users", "create", "王调解员", "--role", "caseworker", "--unit", "320100")
    user_id = created.split()[1]
    first = token_of(created)

    listed = [json.loads(line) for line in run(data, "users", "list").splitlines()]
    assert {"id": user_id, "name": "王调解员", "role": "caseworker", "unit": "320100",
            "active": True} in listed  # fmt: skip

    second = token_of(run(data, "users", "rotate-token", user_id))
    run(data, "users", "change", user_id, "--role", "supervisor")
    run(data, "users", "disable", user_id)

    ct = bootstrap(Settings.from_env().with_(data_dir=data))
    try:
        with pytest.raises(CasetrailError) as old:
            ct.directory.authenticate(first)
        assert old.value.code == "unauthorized"
        with pytest.raises(CasetrailError) as disabled:
            ct.directory.authenticate(second)
        assert disabled.value.code == "user_disabled"
        acts = [
            row["event_type"]
            for row in ct.db.query(
                f"SELECT event_type, actor FROM {CHAIN_TABLE} WHERE actor LIKE 'cli:%' "
                "ORDER BY position"
            )
        ]
        assert [act for act in acts if act != "AdministrationOpened"] == [
            "UserCreated",
            "UserTokenRotated",
            "UserChanged",
            "UserDisabled",
        ]
        assert ct.audit.verify(None).ok
    finally:
        ct.close()

    run(data, "users", "enable", user_id)
    ct = bootstrap(Settings.from_env().with_(data_dir=data))
    try:
        assert ct.directory.authenticate(second).role == "supervisor"
    finally:
        ct.close()
