"""Deadline sweeps record each warning and each breach exactly once, and resolve them once,
in the hash-chained log beside the cases (issue 16): against a brute-force recomputation for
random case histories and sweep times, with several sweeping processes at once, and without
disturbing a caseworker's `expected_version`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.deadline_truth import BruteForce, chain_counts, recorded
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.case import Actor
from domain.clock import FixedClock, cst_date
from domain.deadlines import parse_leads
from domain.errors import CasetrailError
from projections import engine_for
from tests.dispute_builders import PERSONAL_DATA, event_data, registration
from tests.integration.projection_support import (
    CASETRAIL,
    bulk_disputes,
    process_env,
)
from tests.units import TEST_UNITS
from workers.incremental import IncrementalSweeps, sweep_in_processes
from workers.sweeps import DeadlineSweeper

WORKER = Actor(user_id="u_worker", role="caseworker", unit="320102")
STREET_WORKER = Actor(user_id="u_street", role="caseworker", unit="320102001")
COUNTY_SUPERVISOR = Actor(user_id="u_county", role="supervisor", unit="320102")
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def reception(today: date, decided_days_ago: int, term_days: int) -> dict[str, Any]:
    decided = (today - timedelta(days=decided_days_ago)).isoformat()
    return {
        "person": {
            "name": "趙某某",
            "id_number": "320102199203034567",
            "gender": "male",
            "birth_date": "1992-03-03",
            "household_address": "江蘇省南京市玄武區梅園新村街道大悲巷2號",
            "residence_address": "江蘇省南京市玄武區梅園新村街道大悲巷2號",
        },
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": decided,
        "offence_date": "2025-08-01",
        "term_start": decided,
        "term_end": (today + timedelta(days=term_days)).isoformat(),
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }


def notice(today: date) -> dict[str, Any]:
    return {
        "person": {
            "name": "李某某",
            "id_number": "320102198505052345",
            "gender": "female",
            "birth_date": "1985-05-05",
            "household_address": "江蘇省南京市玄武區梅園新村街道大悲巷1號",
            "residence_address": "江蘇省南京市玄武區梅園新村街道大悲巷1號",
        },
        "release_type": "sentence_completed",
        "institution": "江蘇省某女子監獄",
        "expected_release_date": (today + timedelta(days=40)).isoformat(),
        "offence": "詐騙罪",
    }


def dispute_step(event_type: str, today: date, n: int) -> tuple[Actor, dict[str, Any]]:
    changes: dict[str, Any] = {}
    if event_type == "DisputeTriaged":
        changes["complexity"] = ("ordinary", "major")[n % 2]
    if event_type == "DeadlineExtended":
        changes["new_deadline"] = (today + timedelta(days=n)).isoformat()
        return COUNTY_SUPERVISOR, event_data(event_type, today, **changes)
    return WORKER, event_data(event_type, today, **changes)


def correction_step(event_type: str, today: date, n: int) -> tuple[Actor, dict[str, Any]]:
    day = today.isoformat()
    leave = {
        "destination": "上海市",
        "from": (today + timedelta(days=n % 3)).isoformat(),
        "to": (today + timedelta(days=n % 3 + n % 5)).isoformat(),
    }
    steps: dict[str, tuple[Actor, dict[str, Any]]] = {
        "SubjectReportedIn": (STREET_WORKER, {"reported_on": day}),
        "LeaveRequested": (STREET_WORKER, leave),
        "LeaveApproved": (COUNTY_SUPERVISOR, leave),
        "LeaveReturned": (STREET_WORKER, {**leave, "returned_on": day}),
        "ElectronicMonitoringStarted": (
            COUNTY_SUPERVISOR,
            {"grounds": "Absconding risk.", "until": (today + timedelta(days=n)).isoformat()},
        ),
        "ElectronicMonitoringEnded": (COUNTY_SUPERVISOR, {}),
        "CorrectionCompleted": (STREET_WORKER, {"on": day, "certificate_no": "2026-001"}),
        "SubjectDied": (STREET_WORKER, {"on": day}),
    }
    return steps[event_type]


def resettlement_step(event_type: str, today: date, n: int) -> tuple[Actor, dict[str, Any]]:
    day = today.isoformat()
    steps: dict[str, tuple[Actor, dict[str, Any]]] = {
        "PersonReleased": (WORKER, {"released_on": day}),
        "PersonReceived": (WORKER, {"received_on": day, "method": "self_reported"}),
        "AssistanceEnded": (WORKER, {"reason": "other", "ended_on": day}),
    }
    return steps[event_type]


STEPS = {
    "dispute": (
        dispute_step,
        [
            "DisputeTriaged",
            "DisputeAssigned",
            "MediationSessionHeld",
            "AgreementReached",
            "DeadlineExtended",
            "DisputeWithdrawn",
            "DisputeClosed",
            "FollowUpVisited",
            "JudicialConfirmationRequested",
        ],
    ),
    "correction": (
        correction_step,
        [
            "SubjectReportedIn",
            "LeaveRequested",
            "LeaveApproved",
            "LeaveReturned",
            "ElectronicMonitoringStarted",
            "ElectronicMonitoringEnded",
            "CorrectionCompleted",
            "SubjectDied",
        ],
    ),
    "resettlement": (resettlement_step, ["PersonReleased", "PersonReceived", "AssistanceEnded"]),
}


def open_case(ct: Casetrail, kind: str, today: date, n: int) -> str:
    if kind == "dispute":
        source = ("walk_in", "court")[n % 2]
        return ct.service.open_case(
            WORKER, "dispute", "320102", "DisputeRegistered", registration(source=source)
        ).id
    if kind == "correction":
        data = reception(today, n % 15, 3 + n)
        return ct.service.open_case(
            STREET_WORKER, "correction", "320102001", "CorrectionSubjectReceived", data
        ).id
    return ct.service.open_case(
        WORKER, "resettlement", "320102", "ReleaseNotified", notice(today)
    ).id


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Casetrail, FixedClock]]:
    clock = FixedClock(START)
    ct = bootstrap(Settings(data_dir=tmp_path_factory.mktemp("sweeps") / "var"), clock=clock)
    ct.directory.load_units(TEST_UNITS)
    try:
        yield ct, clock
    finally:
        ct.close()


event_step = st.tuples(st.just("event"), st.integers(0, 5), st.integers(0, 8), st.integers(1, 40))
# (sweep, again, how): 0 the given cases, 1 incremental, 2 incremental after the inbox
# read model caught up (its due days drive the sweeps that time alone makes due).
sweep_step = st.tuples(st.just("sweep"), st.booleans(), st.integers(0, 2))
step = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(sorted(STEPS)), st.integers(0, 40)),
    event_step,
    event_step,
    st.tuples(st.just("advance"), st.integers(0, 5), st.integers(0, 23)),
    sweep_step,
    sweep_step,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=3, max_size=60))
def test_recorded_warnings_and_breaches_equal_the_brute_force_set(
    shared: tuple[Casetrail, FixedClock], steps: list[tuple[Any, ...]]
) -> None:
    ct, clock = shared
    clock.set(START)
    leads = parse_leads("dispute_time_limit=3,report_in=2,leave_return=1,monitoring_end=5")
    sweeper = DeadlineSweeper(ct.app, ct.db, clock, leads)
    incremental = IncrementalSweeps(ct, sweeper, name=uuid4().hex)
    brute = BruteForce(ct, leads)
    cases: list[tuple[str, str]] = []
    for what, a, b, *rest in [*steps, ("advance", 9, 0), ("sweep", False, 2)]:
        today = cst_date(clock.now())
        if what == "open":
            cases.append((open_case(ct, a, today, b), a))
        elif what == "event" and cases:
            case_id, kind = cases[a % len(cases)]
            make, types = STEPS[kind]
            # The first of the types from `b` on that the rules accept (a refused one
            # appends nothing): histories move on rather than stall.
            for offset in range(len(types)):
                event_type = types[(b + offset) % len(types)]
                actor, data = make(event_type, today, rest[0])
                try:
                    ct.service.append(actor, case_id, event_type, data)
                    break
                except CasetrailError:
                    continue
        elif what == "advance":
            clock.advance(timedelta(days=a, hours=b))
        elif what == "sweep":
            ids = [case_id for case_id, _ in cases]
            if b == 0:
                sweeper.sweep(ids, chunk=3)
            else:
                if b == 2:
                    engine_for(ct).catch_up()
                incremental.sweep(universe=set(ids))
            if a:  # a second sweep at the same moment records nothing
                assert sweeper.sweep(ids).as_dict()["warnings"] == 0
            brute.sweep_at(ids, today)
    ids = [case_id for case_id, _ in cases]
    found = recorded(sweeper, ids)
    assert found["warning"] == brute.warnings
    assert found["breach"] == brute.breaches
    assert found["resolved"] == brute.resolved
    assert chain_counts(ct, ids) == {
        "DeadlineWarned": len(brute.warnings),
        "DeadlineBreached": len(brute.breaches),
        "DeadlineResolved": len(brute.resolved),
    }


def test_recording_leaves_a_caseworkers_expected_version_valid(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    clock.set(START)
    case_id = casetrail.service.open_case(
        WORKER, "dispute", "320102", "DisputeRegistered", registration()
    ).id
    sweeper = DeadlineSweeper(casetrail.app, casetrail.db, clock, {})
    clock.advance(timedelta(days=8))
    assert sweeper.sweep().warnings == 1
    clock.advance(timedelta(days=3))
    assert sweeper.sweep().breaches == 1
    # The caseworker still holds version 1: the sweep wrote beside the case, not on it.
    casetrail.service.append(
        WORKER, case_id, "DisputeWithdrawn", {"reason": "Settled."}, expected_version=1
    )
    casetrail.service.append(
        WORKER, case_id, "DisputeClosed", {"result_summary": "Withdrawn."}, expected_version=2
    )
    assert sweeper.sweep().resolutions == 1
    [breach, warning] = sweeper.records()
    assert (warning["record"], warning["due"], warning["detected_on"]) == (
        "warning",
        "2026-03-12",
        "2026-03-10",
    )
    assert breach["resolution"]["resolution"] == "met_late"
    assert sweeper.records(state="resolved") == [breach, warning]
    assert sweeper.records(state="breached") == []
    assert casetrail.audit.verify().ok


def test_an_extension_resolves_the_warning_and_the_new_due_day_is_warned_again(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    clock.set(START)
    case_id = casetrail.service.open_case(
        WORKER, "dispute", "320102", "DisputeRegistered", registration()
    ).id
    sweeper = DeadlineSweeper(casetrail.app, casetrail.db, clock, {})
    clock.advance(timedelta(days=9))
    assert sweeper.sweep().warnings == 1
    casetrail.service.append(
        COUNTY_SUPERVISOR,
        case_id,
        "DeadlineExtended",
        {"new_deadline": "2026-03-25", "reason": "Expert assessment pending."},
    )
    assert sweeper.sweep().resolutions == 1
    [old] = sweeper.records()
    assert old["resolution"]["resolution"] == "extended"
    clock.advance(timedelta(days=12))
    assert sweeper.sweep().warnings == 1
    assert [r["due"] for r in sweeper.records(state="warning")] == ["2026-03-25"]


def test_the_records_carry_no_personal_data(casetrail: Casetrail, clock: FixedClock) -> None:
    clock.set(START)
    casetrail.service.open_case(WORKER, "dispute", "320102", "DisputeRegistered", registration())
    clock.advance(timedelta(days=12))
    sweeper = DeadlineSweeper(casetrail.app, casetrail.db, clock, {})
    sweeper.sweep()
    text = repr(sweeper.records())
    assert "dispute_time_limit" in text
    assert not any(value in text for value in PERSONAL_DATA)


def test_sweeps_from_several_processes_at_once_record_each_deadline_once(
    casetrail: Casetrail, settings: Settings, tmp_path: Path
) -> None:
    # Real time: the processes read the system clock. Disputes registered over the last
    # month: some overdue, some due soon (a long lead), some closed.
    now = datetime.now(UTC)
    clock = FixedClock(now - timedelta(days=30))
    bulk_disputes(casetrail, clock, 120)
    lead = "dispute_time_limit=12,follow_up=40"
    env = process_env(settings, redis=False, CASETRAIL_DEADLINE_LEAD_DAYS=lead)
    processes = [
        subprocess.Popen(
            [CASETRAIL, "deadlines", "sweep"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=300)[0].decode() for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    ids = DeadlineSweeper(casetrail.app, casetrail.db, clock, {}).case_ids()
    brute = BruteForce(casetrail, parse_leads(lead))
    brute.sweep_at(ids, cst_date(datetime.now(UTC)))
    assert brute.warnings and brute.breaches
    assert chain_counts(casetrail, ids) == {
        "DeadlineWarned": len(brute.warnings),
        "DeadlineBreached": len(brute.breaches),
        "DeadlineResolved": 0,
    }
    assert casetrail.audit.verify().ok


def test_a_full_sweep_shared_between_processes_records_each_deadline_once(
    casetrail: Casetrail, settings: Settings
) -> None:
    # The nightly full sweep in two spawned processes, each over half the cases, with the
    # parent's clock and leads; then once more in one: nothing is recorded twice.
    now = datetime.now(UTC)
    clock = FixedClock(now - timedelta(days=30))
    bulk_disputes(casetrail, clock, 120)
    clock.set(now)
    leads = parse_leads("dispute_time_limit=12,follow_up=40")
    sweeper = DeadlineSweeper(casetrail.app, casetrail.db, clock, leads)
    ids = sweeper.case_ids()
    report = sweep_in_processes(settings, sweeper, ids, 2)
    assert report.cases == len(ids)
    brute = BruteForce(casetrail, leads)
    brute.sweep_at(ids, cst_date(now))
    assert brute.warnings and brute.breaches
    assert (report.warnings, report.breaches) == (len(brute.warnings), len(brute.breaches))
    again = sweeper.sweep(ids)
    assert (again.warnings, again.breaches) == (0, 0)
    assert recorded(sweeper, ids) == {
        "warning": brute.warnings,
        "breach": brute.breaches,
        "resolved": set(),
    }


def test_an_incremental_sweep_takes_only_the_cases_that_changed(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    clock.set(START)
    ids = [
        casetrail.service.open_case(
            WORKER, "dispute", "320102", "DisputeRegistered", registration()
        ).id
        for _ in range(3)
    ]
    sweeps = IncrementalSweeps(casetrail)
    assert sweeps.sweep()["mode"] == "full"
    engine_for(casetrail).catch_up()
    assert sweeps.sweep() == {**sweeps.sweep(), "cases": 0}  # nothing changed
    actor, data = dispute_step("DisputeTriaged", cst_date(clock.now()), 0)
    casetrail.service.append(actor, ids[0], "DisputeTriaged", data)
    engine_for(casetrail).catch_up()
    assert sweeps.sweep()["cases"] == 1
    clock.advance(timedelta(days=8))  # every dispute's limit is now within its lead
    report = sweeps.sweep()
    assert (report["mode"], report["cases"], report["warnings"]) == ("incremental", 3, 3)
    assert sweeps.sweep()["cases"] == 0
    clock.advance(timedelta(days=3))  # and past it
    report = sweeps.sweep()
    assert (report["cases"], report["breaches"]) == (3, 3)
    assert sweeps.sweep(full=True)["cases"] == 3
