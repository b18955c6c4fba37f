"""Parked events, on SQLite and PostgreSQL. On main a read model that could not decode or
apply an event logged a line and went on, so it drifted unnoticed after a bad deploy; now
the event is parked with its error and position, the read model stops for that case (or
stops, if it cannot isolate it), status shows it, and `casetrail projections parked
list|retry|skip` deals with it (a skip is an act of the administration log)."""

from __future__ import annotations

import json
import subprocess
from typing import Any, ClassVar
from uuid import UUID

from casetrail.administration import ADMINISTRATION_ID
from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from domain.case import CaseEvent
from domain.clock import FixedClock
from projections import engine_for
from projections.cases import CaseList
from projections.engine import Engine
from projections.parking import retry
from projections.readmodel import Batch
from tests.dispute_builders import PERSONAL_DATA
from tests.integration.projection_support import CASETRAIL, bulk_disputes, process_env
from web.app import create_app

# The cases whose events after the opening one the flawed build cannot apply.
FAILING: set[UUID] = set()


class FlawedCaseList(CaseList):
    """The case list of a bad deploy: its handlers raise for the cases in FAILING."""

    name: ClassVar[str] = "flawed_cases"

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        super().apply(b, event, kind, position)  # half-applied, then fails
        if event.originator_id in FAILING and event.originator_version > 1:
            raise ValueError(f"cannot apply {event.data}")  # quotes personal data


def case_positions(ct: Casetrail) -> dict[UUID, list[int]]:
    notifications = ct.app.recorder.select_notifications(start=1, limit=10_000)
    by_case: dict[UUID, list[int]] = {}
    for notification in notifications:
        if notification.originator_id != ADMINISTRATION_ID:
            by_case.setdefault(notification.originator_id, []).append(notification.id)
    return by_case


def case_ids_in(engine: Engine, name: str) -> set[str]:
    """The cases in a case list's rows."""
    table = engine.tables(name, engine.active_generation(name) or 1)["list"]
    return {str(row["case_id"]) for row in engine.db.query(f"SELECT case_id FROM {table}")}


def test_a_case_whose_events_fail_is_parked_in_order_and_retried_once_fixed(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 6)
    positions = case_positions(casetrail)
    broken = next(case for case, found in positions.items() if len(found) >= 3)
    FAILING.add(broken)
    try:
        # Batches of two: the case's later events are parked by later batches too.
        engine = Engine(casetrail, [FlawedCaseList()], batch_size=2)
        engine.catch_up()
        [entry] = engine.status()
        assert entry["lag"] == 0  # the other cases went on
        parked = engine.parked.rows("flawed_cases")
        assert [row["position"] for row in parked] == positions[broken][1:]
        assert {row["case_id"] for row in parked} == {str(broken)}
        assert parked[0]["error"].startswith("ValueError: the handler for ")
        assert "Waiting" in parked[-1]["error"]
        assert not any(value in json.dumps(parked) for value in PERSONAL_DATA)
        assert entry["parked"] == len(parked) and "stopped_at" not in entry
        assert case_ids_in(engine, "flawed_cases") == {str(case) for case in positions}

        # New cases go on; a retry while the code is still broken parks them again.
        bulk_disputes(casetrail, clock, 1)
        engine.catch_up()
        assert len(engine.parked.rows("flawed_cases")) == len(parked)
        still = retry(engine)
        assert still == {"flawed_cases": len(parked)}  # the code is not fixed yet
    finally:
        FAILING.clear()
    # The code fixed: the parked events are applied, in order, and the rows are as a
    # rebuild from the log makes them.
    assert retry(engine) == {}
    assert engine.status()[0].get("parked") is None
    current = engine.digest("flawed_cases")
    assert engine.digest("flawed_cases", engine.rebuild("flawed_cases")) == current


def corrupt(ct: Casetrail, position: int) -> None:
    """What a bad deploy leaves: a stored event this build cannot decode."""
    table = ct.app.recorder.events_table_name
    column = "rowid" if ct.db.dialect == "sqlite" else "notification_id"
    with ct.db.transaction() as cur:
        cur.execute(f"UPDATE {table} SET state = ? WHERE {column} = ?", (b"\x00bad", position))


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CASETRAIL, "projections", *args],
        env=process_env(settings, redis=False),
        capture_output=True,
        text=True,
        timeout=120,
    )


def skipped_acts(ct: Casetrail) -> list[dict[str, Any]]:
    acts = []
    for stored in ct.app.recorder.select_events(ADMINISTRATION_ID):
        event = ct.app.mapper.to_domain_event(stored)
        if type(event).__name__ == "ParkedEventSkipped":
            acts.append({"actor": event.actor, **event.data})
    return acts


def test_an_event_that_cannot_be_decoded_parks_its_case_and_stops_the_indicators(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 5)
    positions = case_positions(casetrail)
    broken = next(case for case, found in positions.items() if len(found) >= 3)
    bad = positions[broken][1]
    corrupt(casetrail, bad)
    engine = engine_for(casetrail)
    engine.catch_up()
    status = {entry["name"]: entry for entry in engine.status()}
    # The case list isolates the case; the dispute indicators cannot, so they stop there.
    assert status["cases"]["lag"] == 0
    assert status["cases"]["parked"] == len(positions[broken]) - 1
    assert status["disputes"]["stopped_at"] == bad
    assert status["disputes"]["position"] == bad - 1
    assert status["disputes"]["parked"] == 1
    assert "parked" not in status["correction"]
    # A rebuild stops at the same event and does not switch: the old tables keep answering.
    engine.rebuild_many(["disputes"])
    assert engine.active_generation("disputes") == 1
    assert engine.parked.stopped_at("disputes", 2) == bad

    # What an operator sees: the API, and `casetrail projections status|parked list`.
    _, token = casetrail.directory.create_user("ops", "supervisor", "320102")
    answer = (
        create_app(casetrail)
        .test_client()
        .get("/api/v1/projections", headers={"Authorization": f"Bearer {token}"})
    )
    assert answer.status_code == 200
    by_name = {entry["name"]: entry for entry in answer.json["projections"]}
    assert by_name["disputes"]["stopped_at"] == bad
    settings = casetrail.settings
    shown = [json.loads(line) for line in cli(settings, "status").stdout.splitlines()]
    assert {e["name"]: e.get("stopped_at") for e in shown}["disputes"] == bad
    listed = [json.loads(line) for line in cli(settings, "parked", "list").stdout.splitlines()]
    first = [row for row in listed if row["position"] == bad]
    models = sorted({row["name"] for row in first})
    assert {"cases", "disputes", "inbox"} <= set(models)
    assert all(row["error"].endswith("cannot be decoded") for row in first)

    # A skip needs a reason, and is recorded with who and why.
    refused = cli(settings, "parked", "skip", "disputes", str(bad))
    assert refused.returncode == 2 and "--reason" in refused.stderr
    unknown = cli(settings, "parked", "skip", "disputes", "999999", "--reason", "x")
    assert unknown.returncode == 2 and "error (parked_event_not_found)" in unknown.stderr
    for name in models:
        done = cli(settings, "parked", "skip", name, str(bad), "--by", "li", "--reason", "bad 1.2")
        assert done.returncode == 0, done.stderr
    acts = skipped_acts(casetrail)
    assert [(a["actor"], a["read_model"], a["position"], a["reason"]) for a in acts] == [
        ("operator:li", name, bad, "bad 1.2") for name in models
    ]
    # The indicators go on after the skipped event; the case's later events are applied.
    assert cli(settings, "parked", "retry").returncode == 0
    engine.catch_up()
    status = {entry["name"]: entry for entry in engine.status()}
    # The inbox rebuilds the case from its stream, which still holds the undecodable
    # event: it rightly keeps the case's later events parked (and says why).
    left = engine.parked.rows()
    assert {row["name"] for row in left} <= {"inbox"}
    assert all(row["error"].endswith("failed") or "Waiting" in row["error"] for row in left)
    del status["inbox"]
    assert {n: (e.get("parked"), e["lag"]) for n, e in status.items()} == {
        n: (None, 0) for n in status
    }
    assert str(broken) in case_ids_in(engine, "cases")
    # The rebuild, resumed, goes past the skipped event (in both generations) and switches.
    engine.rebuild_many(["disputes"])
    assert engine.active_generation("disputes") == 2
