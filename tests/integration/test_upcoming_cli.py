"""`casetrail deadlines upcoming`: the running deadlines of a unit subtree due within the
next days, from the inbox read model, through the command line (real time: the command
reads the system clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from cli.main import main
from domain.case import Actor
from domain.clock import FixedClock, cst_date
from projections import engine_for
from tests.dispute_builders import registration

WORKER = Actor("u_worker", "caseworker", "320100")


def upcoming(settings: Settings, *args: str) -> tuple[int, list[dict]]:
    env = {"CASETRAIL_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env.update(
            CASETRAIL_DATABASE_URL=settings.database_url,
            CASETRAIL_DATABASE_SCHEMA=settings.database_schema or "",
        )
    result = CliRunner().invoke(main, ["deadlines", "upcoming", *args], env=env)
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    return result.exit_code, lines


def test_the_deadlines_due_within_the_days_asked_are_listed_soonest_first(
    casetrail: Casetrail, settings: Settings, clock: FixedClock
) -> None:
    now = datetime.now(UTC)
    opened = {}
    # Registered 25 days ago (its 10-day limit is past: overdue, not upcoming), 5 days ago
    # (due in 5 days) and today (due in 10 days), in two districts.
    for ago, unit in ((25, "320102"), (5, "320102"), (0, "320104")):
        clock.set(now - timedelta(days=ago))
        opened[ago] = casetrail.service.open_case(
            WORKER, "dispute", unit, "DisputeRegistered", registration()
        ).id
    clock.set(now)
    engine_for(casetrail).catch_up()
    today = cst_date(now)

    code, items = upcoming(
        settings, "--unit", "320100", "--days", "30", "--kind", "dispute_time_limit"
    )
    assert code == 0
    assert [(i["case"], i["due"]) for i in items] == [
        (opened[5], (today + timedelta(days=5)).isoformat()),
        (opened[0], (today + timedelta(days=10)).isoformat()),
    ]
    assert items[0]["case_kind"] == "dispute" and items[0]["unit"] == "320102"
    _, soon = upcoming(settings, "--unit", "320100", "--days", "7", "--kind", "dispute_time_limit")
    assert [i["case"] for i in soon] == [opened[5]]
    _, qinhuai = upcoming(settings, "--unit", "320104", "--kind", "dispute_time_limit")
    assert [i["case"] for i in qinhuai] == [opened[0]]
    _, corrections = upcoming(settings, "--unit", "320100", "--case-kind", "correction")
    assert corrections == []
    refused, _ = upcoming(settings, "--unit", "999999")
    assert refused != 0
