"""民轉刑: a dispute that turned into a criminal case (DisputeTurnedCriminal)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import cst_date
from domain.dispute import DisputeTurnedCriminal
from tests.dispute_builders import event_data
from tests.domain.test_dispute import (
    OPEN_STATUSES,
    SUPERVISOR,
    T0,
    WORKER,
    ctx,
    day,
    in_status,
    record,
    refused,
    register,
)


@pytest.mark.parametrize("status", [*OPEN_STATUSES, "closed"])
def test_a_supervisor_records_the_turn_in_any_status(status: str) -> None:
    case = record(in_status(status), "DisputeTurnedCriminal", actor=SUPERVISOR)
    assert case.turned_criminal_on == cst_date(T0)
    assert case.status == status  # the dispute's own course is not changed


def test_a_caseworker_cannot_record_the_turn() -> None:
    refused(register(), "DisputeTurnedCriminal", "supervisor_only", actor=WORKER)


def test_the_turn_is_recorded_once() -> None:
    case = record(register(), "DisputeTurnedCriminal", actor=SUPERVISOR)
    refused(case, "DisputeTurnedCriminal", "already_turned_criminal", actor=SUPERVISOR)


def test_the_referral_date_is_neither_future_nor_before_registration() -> None:
    before = (cst_date(T0) - timedelta(days=1)).isoformat()
    refused(
        register(),
        "DisputeTurnedCriminal",
        "date_out_of_order",
        actor=SUPERVISOR,
        referred_on=before,
    )
    future = (cst_date(T0) + timedelta(days=1)).isoformat()
    refused(
        register(),
        "DisputeTurnedCriminal",
        "date_in_future",
        actor=SUPERVISOR,
        referred_on=future,
    )
    late = record(register(), "DisputeTurnedCriminal", now=day(3), actor=SUPERVISOR)
    assert late.turned_criminal_on == cst_date(day(3))


def test_the_receiving_body_is_one_of_the_listed() -> None:
    refused(
        register(),
        "DisputeTurnedCriminal",
        "invalid_data",
        actor=SUPERVISOR,
        receiving_body="village_elder",
    )


def test_the_turn_is_graded_major_or_ordinary() -> None:
    # The seed counts the major ones (重大刑事案件): the grade is required and one of two.
    major = record(register(), "DisputeTurnedCriminal", actor=SUPERVISOR, grade="major")
    assert major.turned_criminal_grade == "major"
    ordinary = record(register(), "DisputeTurnedCriminal", actor=SUPERVISOR)
    assert ordinary.turned_criminal_grade == "ordinary"
    for grade in ("serious", "", None):
        refused(register(), "DisputeTurnedCriminal", "invalid_data", actor=SUPERVISOR, grade=grade)
    ungraded = event_data("DisputeTurnedCriminal", cst_date(T0))
    del ungraded["grade"]
    refused(register(), "DisputeTurnedCriminal", "invalid_data", data=ungraded, actor=SUPERVISOR)


def test_a_turn_recorded_before_grading_replays_ungraded() -> None:
    # Stored before `grade` existed: replayed as it is, with no grade (not "ordinary").
    case = register()
    data = event_data("DisputeTurnedCriminal", cst_date(T0))
    del data["grade"]
    case.trigger_event(
        DisputeTurnedCriminal, data=data, timestamp=T0, **ctx(T0, SUPERVISOR).metadata()
    )
    assert case.turned_criminal_on == cst_date(T0)
    assert case.turned_criminal_grade is None
