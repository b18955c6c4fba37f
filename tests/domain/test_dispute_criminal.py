"""民轉刑: a dispute that turned into a criminal case (DisputeTurnedCriminal)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import cst_date
from tests.domain.test_dispute import (
    OPEN_STATUSES,
    SUPERVISOR,
    T0,
    WORKER,
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
