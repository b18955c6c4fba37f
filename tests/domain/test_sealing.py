"""Sealing of minors' records (domain.sealing), on the aggregate alone: when a correction
seals, who opens a sealed record, for how long, and what a sealed record refuses."""

from __future__ import annotations

from datetime import timedelta

from domain.case import Actor, Context
from domain.clock import FixedClock
from domain.correction import Correction
from domain.errors import NotPermitted
from tests.domain.test_correction import at, on_day, person, received, refused

AUDITOR = Actor(user_id="u_audit", role="auditor", unit="320000")
SUPERVISOR = Actor(user_id="u_super", role="supervisor", unit="320102")
REQUEST = {"legal_ground": "statutory_query", "requesting_body": "某單位", "purpose": "依規定查詢"}
GROUND = {"legal_ground": "statutory_query"}
PERIOD = timedelta(hours=10)


def completed(clock: FixedClock, birth_date: str) -> Correction:
    case = received(clock, person=person(birth_date=birth_date), term_end="2026-02-28")
    case.record("SubjectReportedIn", {"reported_on": "2026-02-25"}, at(clock))
    case.record("CorrectionCompleted", {"on": "2026-03-02", "certificate_no": "J1"}, at(clock))
    return case


def by(actor: Actor, clock: FixedClock) -> Context:
    return Context(actor=actor, now=clock.now(), seal_opening=PERIOD)


def test_a_minor_is_sealed_when_correction_is_completed_and_an_adult_is_not(
    clock: FixedClock,
) -> None:
    on_day(clock, "2026-03-02")
    minor = completed(clock, "2009-01-01")  # 16 at the offence (2025-06-01)
    assert [type(e).__name__ for e in minor.pending_events][-2:] == [
        "CorrectionCompleted",
        "RecordSealed",
    ]
    assert minor.sealed and minor.state(clock.now())["sealed"] is True
    adult = completed(clock, "1990-01-01")
    assert not adult.sealed
    assert type(adult.pending_events[-1]).__name__ == "CorrectionCompleted"
    refused(adult, "SealOpeningRequested", REQUEST, by(AUDITOR, clock), "not_sealed")


def test_an_opening_needs_two_people_and_ends_by_itself(clock: FixedClock) -> None:
    on_day(clock, "2026-03-02")
    case = completed(clock, "2009-01-01")
    refused(case, "SealOpeningApproved", GROUND, by(SUPERVISOR, clock), "no_opening_request")
    case.record("SealOpeningRequested", REQUEST, by(AUDITOR, clock))
    same = Actor(user_id=AUDITOR.user_id, role="supervisor", unit="320102")
    refused(
        case,
        "SealOpeningApproved",
        GROUND,
        by(same, clock),
        "approval_by_same_person",
        NotPermitted,
    )
    case.record("SealOpeningApproved", GROUND, by(SUPERVISOR, clock))
    assert case.seal_opening is not None
    assert case.seal_opening["until"] == clock.now() + PERIOD
    assert case.opening_for(AUDITOR.user_id, clock.now()) is not None
    assert case.opening_for(SUPERVISOR.user_id, clock.now()) is not None
    assert case.opening_for("u_someone_else", clock.now()) is None
    assert case.opening_for(AUDITOR.user_id, clock.now() + PERIOD) is None
    clock.advance(PERIOD)
    refused(case, "SealOpeningClosed", {}, by(AUDITOR, clock), "opening_expired")


def test_a_request_left_unanswered_lapses(clock: FixedClock) -> None:
    on_day(clock, "2026-03-02")
    case = completed(clock, "2009-01-01")
    case.record("SealOpeningRequested", REQUEST, by(AUDITOR, clock))
    clock.advance(PERIOD)
    refused(case, "SealOpeningApproved", GROUND, by(SUPERVISOR, clock), "opening_expired")
    case.record("SealOpeningRequested", REQUEST, by(AUDITOR, clock))  # a new one may follow


def test_a_sealed_record_takes_nothing_but_its_seal_events(clock: FixedClock) -> None:
    on_day(clock, "2026-03-02")
    case = completed(clock, "2009-01-01")
    refused(case, "SubjectDied", {"on": "2026-03-02"}, by(SUPERVISOR, clock), "sealed")
    refused(
        case,
        "RecordSealed",
        {"trigger": "x", "legal_basis": "x"},
        by(SUPERVISOR, clock),
        "recorded_by_the_case",
        NotPermitted,
    )
    refused(
        case,
        "SealOpeningRequested",
        REQUEST,
        by(SUPERVISOR, clock),
        "role_not_permitted",
        NotPermitted,
    )
