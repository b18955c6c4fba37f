"""Dealing with parked events (projections.parked): retry them, in order, once the code is
fixed, or skip one, which is an audited act (an event of the administration log, with who
and why)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from eventsourcing.persistence import Tracking

from domain.case import Actor
from domain.errors import CasetrailError
from projections.engine import Engine, Item
from projections.parked import decode_error
from projections.tracking import tracking_name


class ParkedEventNotFound(CasetrailError):
    status = 404
    code = "parked_event_not_found"


def retry(engine: Engine, name: str | None = None) -> dict[str, int]:
    """Applies the parked events again, case by case in order of position; an event that
    still fails is parked again (and the events of its case after it). A read model that
    stopped resumes from the event it stopped at. Returns {name: events still parked}."""
    engine.setup()
    rows = []
    for row in engine.parked.rows(name):
        active = engine.active_generation(row["name"]) or 0
        if int(row["generation"]) < active:
            # Of a generation a rebuild replaced (its tables dropped): nothing to retry.
            with engine.db.writer(), engine.db.derived_transaction() as cur:
                engine.parked.remove(cur, row["name"], int(row["generation"]), [row["position"]])
        else:
            rows.append(row)
    by_case: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    stopped: set[tuple[str, int]] = set()
    for row in rows:
        key = (row["name"], int(row["generation"]))
        if row["stops"]:
            stopped.add(key)
        else:
            by_case[key][row["case_id"]].append(row)
    for (model, generation), cases in by_case.items():
        for case_rows in cases.values():
            _retry_case(engine, model, generation, case_rows)
    for model, generation in stopped:
        with engine.db.writer(), engine.db.derived_transaction() as cur:
            positions = [
                r["position"]
                for r in rows
                if r["name"] == model and int(r["generation"]) == generation and r["stops"]
            ]
            engine.parked.remove(cur, model, generation, positions)
        if engine.active_generation(model) == generation:
            engine.catch_up([model])
    left: dict[str, int] = defaultdict(int)
    for row in engine.parked.rows(name):
        left[row["name"]] += 1
    return dict(left)


def _retry_case(engine: Engine, name: str, generation: int, rows: list[dict[str, Any]]) -> None:
    items: list[Item] = []
    for row in rows:
        position = int(row["position"])
        found = engine.ct.app.recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            continue
        notification = found[0]
        try:
            event = engine._decode(notification)
        except Exception as exc:
            kind = engine._topic_kinds[notification.topic]
            items.append((position, None, kind, notification.originator_id, decode_error(exc)))
            continue
        if event is not None:
            kind = engine._kinds[type(event)]
            items.append((position, event, kind, event.originator_id, None))
    with engine.db.transaction(commit=False) as reader:
        batch, _, parked, _ = engine._apply_in_memory(
            reader, name, generation, 0, items, None, parked_cases=set()
        )
    with engine.db.writer(), engine.db.derived_transaction() as cur:
        batch.cur = cur
        engine.projections[name].finish(batch)
        batch.flush()
        engine.parked.remove(cur, name, generation, [int(row["position"]) for row in rows])
        engine.parked.add(cur, name, generation, parked)


def skip(engine: Engine, name: str, position: int, by: Actor, reason: str) -> dict[str, Any]:
    """Gives up on one parked event: it is never applied to that read model. Recorded
    first in the administration log (who, why, which event), then removed; a read model
    that stopped at it goes on after it."""
    engine.setup()
    found = [row for row in engine.parked.rows(name) if int(row["position"]) == position]
    if not found:
        raise ParkedEventNotFound(f"No event at position {position} is parked for {name}.")
    row = found[0]
    log = engine.ct.directory.log
    assert log is not None  # bootstrap gives the directory the administration log
    log.record(
        by,
        "ParkedEventSkipped",
        {
            "read_model": name,
            "generations": [int(each["generation"]) for each in found],
            "position": position,
            "event_type": row["event_type"],
            "reason": reason,
        },
    )
    # Every generation that parked it (the active one, and one a rebuild is filling).
    for each in found:
        generation = int(each["generation"])
        with engine.db.writer(), engine.db.derived_transaction() as cur:
            engine.parked.remove(cur, name, generation, [position])
            if each["stops"] and engine.position(name, generation) < position:
                engine.recorder._insert_tracking(
                    cur.raw, Tracking(tracking_name(name, generation), position)
                )
    return row
