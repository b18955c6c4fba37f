"""The application service on real stores: SQLite files and PostgreSQL schemas.

Every test runs on both backends (`casetrail` is parametrized by conftest); the
PostgreSQL runs need CASETRAIL_TEST_POSTGRES=1.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from casetrail.events import Appended
from casetrail.service import CaseService
from domain.case import Actor
from domain.clock import CST, FixedClock, cst_date
from domain.dispute import Dispute
from domain.errors import CasetrailError
from evidence.chain import GENESIS
from tests.dispute_builders import PERSONAL_DATA, event_data, registration

THREADS = 16


def open_dispute(service: CaseService, actor: Actor, unit: str = "320102", **kw: Any) -> str:
    return service.open_case(actor, "dispute", unit, "DisputeRegistered", registration(), **kw).id


def append(ct: Casetrail, actor: Actor, case_id: str, event_type: str, **kw: Any) -> Appended:
    data = event_data(event_type, cst_date(ct.clock.now()))
    return ct.service.append(actor, case_id, event_type, data, **kw)


def walk(ct: Casetrail, actor: Actor, case_id: str, *event_types: str) -> None:
    for event_type in event_types:
        append(ct, actor, case_id, event_type)


def stream_versions(ct: Casetrail, case_id: str) -> list[int]:
    return [event.originator_version for event in ct.app.events.get(uuid.UUID(case_id))]


def refused(
    ct: Casetrail, auditor: Actor, case_id: str, command: Callable[[], Any], code: str
) -> CasetrailError:
    """Runs a command that must be refused with `code`, and checks that it appended nothing:
    the case's history and the global head are as they were."""
    history = ct.reads.history(auditor, case_id)
    # Reads may be logged in the store (the audit trail's access log), so the head is
    # taken right around the command, with no read in between.
    head = ct.reads.head_position()
    with pytest.raises(CasetrailError) as refusal:
        command()
    assert ct.reads.head_position() == head
    assert refusal.value.code == code, refusal.value.message
    assert ct.reads.history(auditor, case_id) == history
    return refusal.value


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Runs `work(i)` in `count` threads released together; each result or the error raised."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


# --- open, append, read ----------------------------------------------------------------------


def test_opening_a_case_records_its_first_event_with_the_metadata(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    opened = casetrail.service.open_case(
        caseworker,
        "dispute",
        "320102",
        "DisputeRegistered",
        registration(),
        reason="walk-in at the center",
        note="first visit",
        idempotency_key="open-1",
    )
    assert (opened.kind, opened.version, opened.replayed) == ("dispute", 1, False)
    event = opened.event
    assert event["type"] == "DisputeRegistered"
    assert event["id"] == opened.id
    assert event["version"] == 1
    assert event["position"] == opened.position >= 1
    assert event["recorded_at"] == casetrail.clock.now().isoformat()
    assert (event["actor"], event["actor_role"], event["actor_unit"]) == (
        "u_worker",
        "caseworker",
        "320102",
    )
    assert (event["reason"], event["note"], event["idempotency_key"]) == (
        "walk-in at the center",
        "first visit",
        "open-1",
    )
    # The registering centre is the unit it was opened at (filled in: gap 13).
    assert event["data"] == {**registration(), "center_unit": "320102"}
    assert event["unit"] == "320102"
    assert event["prev_hash"] == GENESIS
    assert len(event["hash"]) == 64
    state = casetrail.reads.case_state(auditor, opened.id)
    assert (state["status"], state["version"], state["unit"]) == ("registered", 1, "320102")


def test_a_case_lives_through_its_events_and_its_history_lists_them_chained(
    casetrail: Casetrail, caseworker: Actor, supervisor: Actor, auditor: Actor
) -> None:
    clock: Any = casetrail.clock
    case_id = open_dispute(casetrail.service, caseworker)
    for event_type in ("DisputeTriaged", "DisputeAssigned", "MediationSessionHeld"):
        clock.advance(timedelta(days=1))
        append(casetrail, caseworker, case_id, event_type)
    append(casetrail, supervisor, case_id, "SupervisionOrdered", reason="slow progress")
    walk(casetrail, caseworker, case_id, "AgreementReached", "DisputeClosed")
    state = casetrail.reads.case_state(caseworker, case_id)
    assert (state["status"], state["version"], state["on_time"]) == ("closed", 7, True)
    history = casetrail.reads.history(auditor, case_id)
    assert [e["type"] for e in history] == [
        "DisputeRegistered",
        "DisputeTriaged",
        "DisputeAssigned",
        "MediationSessionHeld",
        "SupervisionOrdered",
        "AgreementReached",
        "DisputeClosed",
    ]
    assert [e["version"] for e in history] == list(range(1, 8))
    assert [e["prev_hash"] for e in history] == [GENESIS] + [e["hash"] for e in history[:-1]]
    assert history[4]["actor_role"] == "supervisor"
    assert history[4]["reason"] == "slow progress"
    positions = [e["position"] for e in history]
    assert positions == sorted(positions)


def test_the_state_as_of_a_version_is_the_case_as_it_was(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    walk(casetrail, caseworker, case_id, "DisputeTriaged", "DisputeAssigned")
    past = casetrail.reads.case_state(auditor, case_id, as_of_version=2)
    assert (past["status"], past["version"]) == ("triaged", 2)
    assert casetrail.reads.case_state(auditor, case_id, as_of_version=3)["status"] == "assigned"
    for version in (0, 4):
        with pytest.raises(CasetrailError) as refusal:
            casetrail.reads.case_state(auditor, case_id, as_of_version=version)
        assert refusal.value.code == "case_not_found"
        assert refusal.value.details["current_version"] == 3


def test_the_state_as_of_a_time_is_the_case_as_it_was_then(
    casetrail: Casetrail, clock: FixedClock, caseworker: Actor, auditor: Actor
) -> None:
    opened_at = clock.now()
    case_id = open_dispute(casetrail.service, caseworker)
    clock.advance(timedelta(hours=5))
    append(casetrail, caseworker, case_id, "DisputeTriaged")
    triaged_at = clock.now()
    clock.advance(timedelta(days=20))
    append(casetrail, caseworker, case_id, "DisputeAssigned")
    reads = casetrail.reads

    def status_at(moment: datetime) -> str:
        return str(reads.case_state(auditor, case_id, as_of=moment)["status"])

    assert status_at(opened_at) == "registered"
    assert status_at(opened_at + timedelta(hours=4, minutes=59)) == "registered"
    assert status_at(triaged_at) == "triaged"
    # A moment given in CST is the same moment.
    assert status_at(triaged_at.astimezone(CST)) == "triaged"
    assert status_at((triaged_at - timedelta(microseconds=1)).astimezone(CST)) == "registered"
    assert status_at(clock.now() - timedelta(microseconds=1)) == "triaged"
    assert status_at(clock.now()) == "assigned"
    # The past is judged by its own clock: on the day it was triaged it was not overdue.
    assert reads.case_state(auditor, case_id, as_of=triaged_at)["overdue"] is False
    assert reads.case_state(auditor, case_id)["overdue"] is True
    assert reads.case_state(auditor, case_id, as_of=clock.now(), as_of_version=1)["version"] == 1
    with pytest.raises(CasetrailError) as refusal:
        reads.case_state(auditor, case_id, as_of=opened_at - timedelta(seconds=1))
    assert refusal.value.code == "case_not_found"
    with pytest.raises(CasetrailError) as refusal:
        reads.case_state(auditor, case_id, as_of=datetime(2026, 3, 3))
    assert refusal.value.code == "invalid_data"


def test_the_feed_lists_every_case_in_append_order_for_auditors(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    service = casetrail.service
    start = casetrail.reads.head_position()
    first = open_dispute(service, caseworker)
    second = open_dispute(service, caseworker, unit="320102001")
    append(casetrail, caseworker, first, "DisputeTriaged")
    append(casetrail, caseworker, second, "DisputeTriaged")
    head = casetrail.reads.head_position()
    feed = casetrail.reads.feed(auditor, after=start, limit=100)
    assert [(e["id"], e["version"]) for e in feed] == [
        (first, 1),
        (second, 1),
        (first, 2),
        (second, 2),
    ]
    assert all(e["kind"] == "dispute" for e in feed)
    positions = [e["position"] for e in feed]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert head == positions[-1]
    page = casetrail.reads.feed(auditor, after=positions[0], limit=2)
    assert [e["position"] for e in page] == positions[1:3]
    # Past the last case event there is no case event (reads may have been logged since).
    later = casetrail.reads.feed(auditor, after=positions[-1], limit=10)
    assert [e for e in later if e["kind"] == "dispute"] == []
    with pytest.raises(CasetrailError) as refusal:
        casetrail.reads.feed(caseworker, after=0, limit=10)
    assert (refusal.value.code, refusal.value.status) == ("auditors_only", 403)


def test_a_case_that_does_not_exist_is_not_found(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    for case_id in (str(uuid.uuid4()), "not-a-case-id"):
        with pytest.raises(CasetrailError) as refusal:
            append(casetrail, caseworker, case_id, "DisputeTriaged")
        assert (refusal.value.code, refusal.value.status) == ("case_not_found", 404)
        with pytest.raises(CasetrailError) as refusal:
            casetrail.reads.case_state(auditor, case_id)
        assert refusal.value.code == "case_not_found"


def test_a_case_opens_only_with_its_kinds_opening_event(
    casetrail: Casetrail, caseworker: Actor
) -> None:
    service = casetrail.service
    head = casetrail.reads.head_position()
    with pytest.raises(CasetrailError) as refusal:
        service.open_case(caseworker, "dispute", "320102", "DisputeTriaged", registration())
    assert refusal.value.code == "wrong_opening_event"
    with pytest.raises(CasetrailError) as refusal:
        service.open_case(caseworker, "quarrel", "320102", "DisputeRegistered", registration())
    assert refusal.value.code == "invalid_data"
    assert "kind" in refusal.value.details
    assert casetrail.reads.head_position() == head


# --- jurisdiction, roles, units ------------------------------------------------------------------


def test_a_caseworker_acts_on_cases_of_their_unit_and_below(
    casetrail: Casetrail, caseworker: Actor
) -> None:
    village_case = open_dispute(casetrail.service, caseworker, unit="320102001001")
    append(casetrail, caseworker, village_case, "DisputeTriaged")
    province = Actor(user_id="u_province", role="supervisor", unit="320000")
    append(casetrail, province, village_case, "SupervisionOrdered")
    assert casetrail.reads.case_state(caseworker, village_case)["version"] == 3


@pytest.mark.parametrize("unit", ["320104", "320102001", "320104002"])
def test_a_caseworker_outside_the_subtree_is_answered_that_there_is_no_such_case(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor, unit: str
) -> None:
    # 404 as for an unknown id: a stranger does not learn that the case exists.
    case_id = open_dispute(casetrail.service, caseworker)
    outsider = Actor(user_id="u_outsider", role="caseworker", unit=unit)
    error = refused(
        casetrail,
        auditor,
        case_id,
        lambda: append(casetrail, outsider, case_id, "DisputeTriaged"),
        "case_not_found",
    )
    assert error.status == 404
    for read in (casetrail.reads.case_state, casetrail.reads.history):
        with pytest.raises(CasetrailError) as refusal:
            read(outsider, case_id)
        assert (refusal.value.code, refusal.value.status) == ("case_not_found", 404)
    head = casetrail.reads.head_position()
    with pytest.raises(CasetrailError) as refusal:
        open_dispute(casetrail.service, outsider, unit="320102")
    # A unit is no secret: opening a case in another's unit stays 403.
    assert (refusal.value.code, refusal.value.status) == ("outside_jurisdiction", 403)
    assert casetrail.reads.head_position() == head


def test_auditors_read_their_units_subtree_but_write_nothing(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker, unit="320102001001")
    assert casetrail.reads.case_state(auditor, case_id)["status"] == "registered"
    district_auditor = Actor(user_id="u_audit1", role="auditor", unit="320102")
    assert len(casetrail.reads.history(district_auditor, case_id)) == 1
    other_district_auditor = Actor(user_id="u_audit2", role="auditor", unit="320104")
    for read in (casetrail.reads.case_state, casetrail.reads.history):
        with pytest.raises(CasetrailError) as refusal:
            read(other_district_auditor, case_id)
        assert refusal.value.code == "case_not_found"
    with pytest.raises(CasetrailError) as refusal:
        casetrail.reads.feed(district_auditor, after=0, limit=10)
    assert refusal.value.code == "outside_jurisdiction"
    error = refused(
        casetrail,
        auditor,
        case_id,
        lambda: append(casetrail, auditor, case_id, "DisputeTriaged"),
        "role_cannot_write",
    )
    assert error.status == 403
    head = casetrail.reads.head_position()
    with pytest.raises(CasetrailError) as refusal:
        open_dispute(casetrail.service, auditor)
    assert refusal.value.code == "role_cannot_write"
    assert casetrail.reads.head_position() == head


def test_an_admin_cannot_write_case_events(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    admin = Actor(user_id="u_admin", role="admin", unit="320000")
    refused(
        casetrail,
        auditor,
        case_id,
        lambda: append(casetrail, admin, case_id, "DisputeTriaged"),
        "role_cannot_write",
    )


def test_unknown_units_are_refused(casetrail: Casetrail, caseworker: Actor, auditor: Actor) -> None:
    service = casetrail.service
    head = casetrail.reads.head_position()
    with pytest.raises(CasetrailError) as refusal:
        open_dispute(service, caseworker, unit="320102999")
    assert refusal.value.code == "unknown_unit"
    with pytest.raises(CasetrailError) as refusal:
        service.open_case(
            caseworker,
            "dispute",
            "320102",
            "DisputeRegistered",
            registration(center_unit="320102999"),
        )
    # The centre is the unit it is registered at: another, existing or not, is refused.
    assert refusal.value.code == "center_unit_mismatch"
    assert casetrail.reads.head_position() == head
    case_id = open_dispute(service, caseworker)
    error = refused(
        casetrail,
        auditor,
        case_id,
        lambda: service.append(
            caseworker,
            case_id,
            "DisputeTriaged",
            event_data(
                "DisputeTriaged", cst_date(casetrail.clock.now()), responsible_unit="320102777"
            ),
        ),
        "invalid_data",
    )
    assert "responsible_unit" in error.details


REFUSALS: dict[str, tuple[str, str, dict[str, Any], str]] = {
    # name: (actor fixture, event type, data changes, code)
    "rule": ("caseworker", "DisputeAssigned", {}, "not_allowed_in_status"),
    "schema": ("caseworker", "DisputeTriaged", {"colour": "red"}, "invalid_data"),
    "supervisor_only": ("caseworker", "SupervisionOrdered", {}, "supervisor_only"),
    "extension_beyond_limit": (
        "supervisor",
        "DeadlineExtended",
        {"new_deadline": "2026-05-03"},
        "extension_beyond_limit",
    ),
    "unknown_type": ("caseworker", "DisputeExploded", {}, "unknown_event_type"),
}


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refused_command_appends_nothing(
    casetrail: Casetrail, request: pytest.FixtureRequest, auditor: Actor, refusal: str
) -> None:
    actor_name, event_type, changes, code = REFUSALS[refusal]
    actor: Actor = request.getfixturevalue(actor_name)
    writer: Actor = request.getfixturevalue("caseworker")
    case_id = open_dispute(casetrail.service, writer)
    today = cst_date(casetrail.clock.now())
    data = event_data(event_type, today, **changes) if event_type != "DisputeExploded" else {}
    refused(
        casetrail,
        auditor,
        case_id,
        lambda: casetrail.service.append(
            actor, case_id, event_type, data, idempotency_key=f"k-{refusal}"
        ),
        code,
    )
    # A refusal does not spend its idempotency key: the corrected command goes through.
    accepted = append(casetrail, writer, case_id, "DisputeTriaged", idempotency_key=f"k-{refusal}")
    assert accepted.version == 2


def test_an_append_behind_the_stream_is_a_conflict_naming_the_current_version(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    append(casetrail, caseworker, case_id, "DisputeTriaged", expected_version=1)
    error = refused(
        casetrail,
        auditor,
        case_id,
        lambda: append(casetrail, caseworker, case_id, "DisputeAssigned", expected_version=1),
        "version_conflict",
    )
    assert error.status == 409
    assert error.details == {"current_version": 2, "expected_version": 1}


# --- concurrency and idempotency -------------------------------------------------------------------


def test_of_sixteen_appends_at_one_expected_version_exactly_one_wins(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    walk(casetrail, caseworker, case_id, "DisputeTriaged", "DisputeAssigned")

    def hearing(i: int) -> Appended:
        return append(casetrail, caseworker, case_id, "HearingHeld", expected_version=3)

    results = in_threads(THREADS, hearing)
    won = [r for r in results if isinstance(r, Appended)]
    lost = [r for r in results if not isinstance(r, Appended)]
    assert len(won) == 1, results
    assert won[0].version == 4
    assert len(lost) == THREADS - 1
    for error in lost:
        assert isinstance(error, CasetrailError), error
        assert error.code == "version_conflict"
        assert error.details["current_version"] == 4
    assert stream_versions(casetrail, case_id) == [1, 2, 3, 4]
    history = casetrail.reads.history(auditor, case_id)
    assert [e["version"] for e in history] == [1, 2, 3, 4]
    assert [e["prev_hash"] for e in history[1:]] == [e["hash"] for e in history[:-1]]
    assert casetrail.reads.case_state(auditor, case_id)["hearings"] == 1


def test_sixteen_appends_without_expected_version_all_land_without_gap_or_duplicate(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    results = in_threads(
        THREADS, lambda i: append(casetrail, caseworker, case_id, "EarlyWarningRaised")
    )
    assert all(isinstance(r, Appended) for r in results), results
    assert sorted(r.version for r in results) == list(range(2, THREADS + 2))
    assert stream_versions(casetrail, case_id) == list(range(1, THREADS + 2))
    assert len(casetrail.reads.case_state(auditor, case_id)["early_warnings"]) == THREADS
    history = casetrail.reads.history(auditor, case_id)
    assert [e["prev_hash"] for e in history[1:]] == [e["hash"] for e in history[:-1]]
    assert len({e["position"] for e in history}) == len(history)


@pytest.mark.parametrize("with_expected_version", [False, True])
def test_sixteen_concurrent_retries_of_one_key_append_one_event_and_get_one_answer(
    casetrail: Casetrail, caseworker: Actor, with_expected_version: bool
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    expected = 1 if with_expected_version else None
    data = event_data("DisputeTriaged", cst_date(casetrail.clock.now()))

    def retry(i: int) -> Appended:
        return casetrail.service.append(
            caseworker,
            case_id,
            "DisputeTriaged",
            data,
            expected_version=expected,
            idempotency_key="triage-once",
        )

    results = in_threads(THREADS, retry)
    assert all(isinstance(r, Appended) for r in results), results
    answers = {(r.id, r.version, r.position, r.event["hash"]) for r in results}
    assert len(answers) == 1
    assert [r.replayed for r in results].count(False) == 1
    assert stream_versions(casetrail, case_id) == [1, 2]
    assert results[0].event["idempotency_key"] == "triage-once"


def test_a_sequential_retry_returns_the_first_answer(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    first = append(casetrail, caseworker, case_id, "EarlyWarningRaised", idempotency_key="k")
    casetrail.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    head = casetrail.reads.head_position()
    again = append(casetrail, caseworker, case_id, "EarlyWarningRaised", idempotency_key="k")
    assert again.replayed is True
    assert (again.id, again.version, again.position, again.event) == (
        first.id,
        first.version,
        first.position,
        first.event,
    )
    assert casetrail.reads.head_position() == head


def test_a_retry_the_case_would_now_refuse_still_gets_the_first_answer(
    casetrail: Casetrail, caseworker: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    first = append(casetrail, caseworker, case_id, "DisputeTriaged", idempotency_key="t")
    append(casetrail, caseworker, case_id, "DisputeAssigned")
    head = casetrail.reads.head_position()
    again = append(casetrail, caseworker, case_id, "DisputeTriaged", idempotency_key="t")
    assert (again.replayed, again.version, again.event) == (True, first.version, first.event)
    assert casetrail.reads.head_position() == head


def test_the_same_key_with_another_payload_is_refused(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    append(casetrail, caseworker, case_id, "EarlyWarningRaised", idempotency_key="k")
    today = cst_date(casetrail.clock.now())
    other = event_data("EarlyWarningRaised", today, risk="criminal_risk")
    error = refused(
        casetrail,
        auditor,
        case_id,
        lambda: casetrail.service.append(
            caseworker, case_id, "EarlyWarningRaised", other, idempotency_key="k"
        ),
        "idempotency_key_reused",
    )
    assert error.details == {"idempotency_key": "k"}
    refused(
        casetrail,
        auditor,
        case_id,
        lambda: open_dispute(casetrail.service, caseworker, idempotency_key="k"),
        "idempotency_key_reused",
    )


def test_an_idempotency_key_belongs_to_its_user(casetrail: Casetrail, caseworker: Actor) -> None:
    case_id = open_dispute(casetrail.service, caseworker)
    colleague = Actor(user_id="u_colleague", role="caseworker", unit="320102")
    first = append(casetrail, caseworker, case_id, "EarlyWarningRaised", idempotency_key="k")
    second = append(casetrail, colleague, case_id, "EarlyWarningRaised", idempotency_key="k")
    assert (first.version, second.version, second.replayed) == (2, 3, False)


def test_sixteen_concurrent_retries_of_opening_a_case_open_one_case(
    casetrail: Casetrail, caseworker: Actor, auditor: Actor
) -> None:
    service = casetrail.service
    head = casetrail.reads.head_position()

    def retry(i: int) -> Appended:
        return service.open_case(
            caseworker,
            "dispute",
            "320102",
            "DisputeRegistered",
            registration(),
            idempotency_key="open-once",
        )

    results = in_threads(THREADS, retry)
    assert all(isinstance(r, Appended) for r in results), results
    assert len({(r.id, r.position) for r in results}) == 1
    feed = casetrail.reads.feed(auditor, after=head, limit=100)
    assert [(e["type"], e["id"]) for e in feed] == [("DisputeRegistered", results[0].id)]


# --- snapshots -----------------------------------------------------------------------------------------


LONG_CASE_EVENTS = 300


def test_a_long_case_loads_from_a_snapshot_and_its_past_stays_readable(
    casetrail: Casetrail,
    caseworker: Actor,
    auditor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = casetrail.service
    case_id = open_dispute(service, caseworker)
    walk(casetrail, caseworker, case_id, "DisputeTriaged", "DisputeAssigned")
    hearings_by_version: dict[int, int] = {3: 0}
    for n in range(4, LONG_CASE_EVENTS + 1):
        event_type = ("HearingHeld", "PublicNoticePosted", "EarlyWarningRaised")[n % 3]
        append(casetrail, caseworker, case_id, event_type)
        previous = hearings_by_version[n - 1]
        hearings_by_version[n] = previous + (event_type == "HearingHeld")
    snapshots = casetrail.app.snapshots
    assert snapshots is not None
    snapshot_versions = [s.originator_version for s in snapshots.get(uuid.UUID(case_id))]
    assert snapshot_versions == [50, 100, 150, 200, 250, 300]

    # Loading the case now reads the latest snapshot and (almost) no events.
    recorder = casetrail.app.events.recorder
    read: list[int] = []
    select_events = recorder.select_events

    def counting(*args: Any, **kwargs: Any) -> Any:
        events = select_events(*args, **kwargs)
        read.append(len(events))
        return events

    monkeypatch.setattr(recorder, "select_events", counting)
    state = casetrail.reads.case_state(auditor, case_id)
    assert state["version"] == LONG_CASE_EVENTS
    assert state["hearings"] == hearings_by_version[LONG_CASE_EVENTS]
    assert sum(read) <= 1
    read.clear()
    assert casetrail.reads.case_state(auditor, case_id, as_of_version=120)["version"] == 120
    assert sum(read) <= 20
    monkeypatch.undo()

    for version in (1, 3, 49, 50, 51, 120, 250, 299, 300):
        past = casetrail.reads.case_state(auditor, case_id, as_of_version=version)
        assert past["version"] == version
        assert past["hearings"] == hearings_by_version.get(version, 0)
        # The snapshot-backed state equals the state replayed from the events alone.
        replayed: Any = None
        for event in casetrail.app.events.get(uuid.UUID(case_id), lte=version):
            replayed = event.mutate(replayed)  # type: ignore[attr-defined]
        assert isinstance(replayed, Dispute)
        assert past == replayed.state(replayed.last_event_at)


# --- durability and personal data ----------------------------------------------------------------------


def test_an_accepted_command_is_durable_when_answered(casetrail: Casetrail) -> None:
    if casetrail.settings.backend == "sqlite":
        pool = casetrail.app.factory.datastore.pool  # type: ignore[attr-defined]
        connections = [pool.get_connection() for _ in range(3)]
        try:
            for connection in connections:
                raw = connection._sqlite_conn
                assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
                assert raw.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        finally:
            for connection in connections:
                pool.put_connection(connection)
    else:
        rows = casetrail.db.query("SHOW synchronous_commit")
        assert rows == [{"synchronous_commit": "on"}]
    casetrail.app.factory.check_durability()  # type: ignore[attr-defined]


def test_personal_data_appears_in_no_log_record(
    casetrail: Casetrail,
    caseworker: Actor,
    supervisor: Actor,
    auditor: Actor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    service = casetrail.service
    case_id = open_dispute(service, caseworker, idempotency_key="open")
    open_dispute(service, caseworker, idempotency_key="open")  # a replay
    with pytest.raises(CasetrailError):  # a refusal whose data holds personal data
        bad = registration()
        bad["parties"][0]["id_number"] = "not-an-id"
        service.open_case(caseworker, "dispute", "320102", "DisputeRegistered", bad)
    walk(casetrail, caseworker, case_id, "DisputeTriaged", "DisputeAssigned")
    append(casetrail, supervisor, case_id, "SupervisionOrdered")
    walk(casetrail, caseworker, case_id, "MediationSessionHeld", "AgreementReached")
    with pytest.raises(CasetrailError):
        append(casetrail, caseworker, case_id, "AgreementReached")
    walk(casetrail, caseworker, case_id, "JudicialConfirmationRequested", "DisputeClosed")
    casetrail.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    append(casetrail, caseworker, case_id, "FollowUpVisited")
    state = casetrail.reads.case_state(auditor, case_id)
    casetrail.reads.case_state(auditor, case_id, as_of_version=2)
    casetrail.reads.history(auditor, case_id)
    casetrail.reads.feed(auditor, after=0, limit=100)
    assert state["status"] == "closed"
    # The capture itself works at DEBUG level, so an empty record list means nothing logged.
    logging.getLogger("casetrail.service").debug("capture probe")
    assert any(record.getMessage() == "capture probe" for record in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + str(record.exc_text or "")
        for personal in PERSONAL_DATA:
            assert personal not in text, (record.name, record.getMessage())


def test_a_dispute_is_registered_by_the_centre_it_is_opened_at(
    casetrail: Casetrail, caseworker: Actor
) -> None:
    """統一受理 (gap 13): `center_unit` is the unit the dispute is opened at; left out, the
    case fills it in; another unit — the one above, one below, a sibling — is refused and
    nothing is appended."""
    service = casetrail.service
    city_worker = Actor(user_id="u_city", role="caseworker", unit="320100")
    head = casetrail.reads.head_position()
    for unit, centre in (("320102", "320100"), ("320102", "320102001"), ("320100", "320104")):
        with pytest.raises(CasetrailError) as refusal:
            service.open_case(
                city_worker, "dispute", unit, "DisputeRegistered", registration(center_unit=centre)
            )
        assert refusal.value.code == "center_unit_mismatch"
        assert refusal.value.status == 422
        assert refusal.value.details == {"center_unit": centre, "unit": unit}
    assert casetrail.reads.head_position() == head
    named = service.open_case(
        caseworker, "dispute", "320102", "DisputeRegistered", registration(center_unit="320102")
    )
    filled = service.open_case(caseworker, "dispute", "320102", "DisputeRegistered", registration())
    for opened in (named, filled):
        assert opened.event["data"]["center_unit"] == "320102"
        assert casetrail.reads.case_state(caseworker, opened.id)["center_unit"] == "320102"
