"""The registers from the server's command line: an operator adds, lists, changes and
retires entries, each act in the administration log under their login; a refusal is one
line and exit status 2; `casetrail bases occupancy` lists the bases against capacity."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from store.chain_links import CHAIN_TABLE
from tests.integration.test_users_cli import CASETRAIL, run


def test_an_operator_keeps_the_registers_and_lists_the_bases_occupancy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "init")
    added = json.loads(
        run(
            data,
            "registers",
            "add",
            "base",
            "320100",
            "南京市过渡性安置基地",
            "--capacity",
            "3",
            "--id",
            "NJ-01",
        )
    )
    assert (added["id"], added["unit"], added["capacity"]) == ("NJ-01", "320100", 3)
    run(data, "registers", "add", "mediation_committee", "320100", "南京市人民调解委员会")

    env = {key: value for key, value in os.environ.items() if not key.startswith("CASETRAIL_")}
    env["CASETRAIL_DATA_DIR"] = str(data)
    no_capacity = subprocess.run(
        [CASETRAIL, "registers", "add", "base", "320100", "无容量基地"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert no_capacity.returncode == 2
    assert "invalid_data" in no_capacity.stderr

    changed = json.loads(run(data, "registers", "change", "NJ-01", "--capacity", "4"))
    assert changed["capacity"] == 4
    listed = [
        json.loads(line) for line in run(data, "registers", "list", "--kind", "base").splitlines()
    ]
    assert [entry["id"] for entry in listed] == ["NJ-01"]

    lines = [json.loads(line) for line in run(data, "bases", "occupancy").splitlines()]
    assert lines[0]["base_id"] == "NJ-01"
    assert (lines[0]["capacity"], lines[0]["occupancy"]) == (4, 0)
    assert lines[-1]["totals"]["bases"] == 1

    retired = json.loads(run(data, "registers", "retire", "NJ-01", "--reason", "场地到期"))
    assert retired["active"] is False
    assert run(data, "registers", "list", "--kind", "base", "--active") == ""

    ct = bootstrap(Settings.from_env().with_(data_dir=data))
    try:
        acts = [
            row["event_type"]
            for row in ct.db.query(
                f"SELECT event_type FROM {CHAIN_TABLE} WHERE actor LIKE ? ORDER BY position",
                ("cli:%",),
            )
        ]
        assert [act for act in acts if act != "AdministrationOpened"] == [
            "RegisterEntryAdded",
            "RegisterEntryAdded",
            "RegisterEntryChanged",
            "RegisterEntryRetired",
        ]
        assert ct.audit.verify(None).ok
    finally:
        ct.close()
