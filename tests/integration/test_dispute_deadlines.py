"""A dispute's deadline in the read models is the case's own (issue 15): a supervisor's
extension recorded before triage survives the triage in the case list and the indicators,
on SQLite and PostgreSQL.

Registered 2026-03-02 (ordinary: 10 days, 03-12); extended by a supervisor on 03-05 to
04-20; triaged on 03-06.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import CST, FixedClock
from projections import engine_for
from projections.queries import ReadModels
from tests.dispute_builders import event_data, registration

WORKER = Actor(user_id="u_worker", role="caseworker", unit="320102")
SUPERVISOR = Actor(user_id="u_super", role="supervisor", unit="320102")
EXTENDED_TO = "2026-04-20"


def at(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(f"2026-{day}"), time(9), tzinfo=CST)


def record(
    ct: Casetrail,
    clock: FixedClock,
    case_id: str,
    day: str,
    event_type: str,
    actor: Actor = WORKER,
    **changes: Any,
) -> None:
    clock.set(at(day))
    ct.service.append(actor, case_id, event_type, event_data(event_type, at(day).date(), **changes))


@pytest.fixture
def extended(casetrail: Casetrail, clock: FixedClock) -> str:
    clock.set(at("03-02"))
    case_id = casetrail.service.open_case(
        WORKER, "dispute", "320102", "DisputeRegistered", registration()
    ).id
    record(
        casetrail, clock, case_id, "03-05", "DeadlineExtended", SUPERVISOR, new_deadline=EXTENDED_TO
    )
    record(casetrail, clock, case_id, "03-06", "DisputeTriaged", complexity="ordinary")
    return str(case_id)


def test_an_extension_before_triage_is_the_deadline_of_the_case_list(
    casetrail: Casetrail, clock: FixedClock, extended: str
) -> None:
    clock.set(at("03-20"))  # past the 10-day limit, well within the extension
    engine_for(casetrail).catch_up()
    models = ReadModels(casetrail)
    case = casetrail.reads.case_state(SUPERVISOR, extended)
    assert case["deadline"] == EXTENDED_TO
    assert case["overdue"] is False
    [item] = models.list_cases(kind="dispute")["items"]
    assert (item["deadline"], item["overdue"]) == (case["deadline"], case["overdue"])
    assert models.list_cases(kind="dispute", overdue=True)["total"] == 0
    assert models.indicators(kind="dispute", unit="320102")["overdue_open"] == 0


def test_a_dispute_closed_within_its_extension_is_on_time(
    casetrail: Casetrail, clock: FixedClock, extended: str
) -> None:
    record(casetrail, clock, extended, "03-07", "DisputeAssigned")
    record(casetrail, clock, extended, "03-08", "MediationSessionHeld")
    record(casetrail, clock, extended, "03-20", "AgreementReached")
    record(casetrail, clock, extended, "03-25", "DisputeClosed")
    engine_for(casetrail).catch_up()
    assert casetrail.reads.case_state(SUPERVISOR, extended)["on_time"] is True
    indicators = ReadModels(casetrail).indicators(kind="dispute", unit="320102")
    assert indicators["on_time_rate"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    assert indicators["success_rate"]["numerator"] == 1
