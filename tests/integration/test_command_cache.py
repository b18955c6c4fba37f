"""The command path's cache of open cases (casetrail.application.CaseRepository): an
append from another process is seen before the next command; a closed case leaves the
cache; reads never come from it."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.case import Actor
from domain.clock import FixedClock, cst_date
from domain.errors import VersionConflict
from tests.dispute_builders import event_data, registration

WORKER = Actor("u_worker", "caseworker", "320102")


def cached(ct: Casetrail, case_id: str) -> bool:
    cache = ct.app.repository.cache
    assert cache is not None
    try:
        cache.get(UUID(case_id))
    except KeyError:
        return False
    return True


def assigned(ct: Casetrail) -> str:
    case_id = ct.service.open_case(
        WORKER, "dispute", "320102", "DisputeRegistered", registration()
    ).id
    today = cst_date(ct.service.clock.now())
    for event_type in ("DisputeTriaged", "DisputeAssigned"):
        ct.service.append(WORKER, case_id, event_type, event_data(event_type, today))
    return case_id


def session(ct: Casetrail) -> dict[str, object]:
    return event_data("MediationSessionHeld", cst_date(ct.service.clock.now()))


def test_a_command_sees_what_another_process_appended(
    casetrail: Casetrail, settings: Settings, clock: FixedClock
) -> None:
    case_id = assigned(casetrail)
    assert cached(casetrail, case_id)
    other = bootstrap(settings, clock=clock)
    try:
        appended = other.service.append(WORKER, case_id, "MediationSessionHeld", session(other))
    finally:
        other.close()
    # The cached copy is behind: the command is checked against the case as stored.
    with pytest.raises(VersionConflict):
        casetrail.service.append(
            WORKER,
            case_id,
            "MediationSessionHeld",
            session(casetrail),
            expected_version=appended.version - 1,
        )
    answer = casetrail.service.append(
        WORKER,
        case_id,
        "MediationSessionHeld",
        session(casetrail),
        expected_version=appended.version,
    )
    assert answer.version == appended.version + 1
    assert casetrail.app.get_case(case_id).version == answer.version


def test_a_case_leaves_the_cache_when_it_closes(casetrail: Casetrail, clock: FixedClock) -> None:
    case_id = assigned(casetrail)
    assert cached(casetrail, case_id)
    clock.advance(timedelta(minutes=5))
    casetrail.service.append(WORKER, case_id, "DisputeWithdrawn", {"reason": "撤回"})
    casetrail.service.append(WORKER, case_id, "DisputeClosed", {"result_summary": "已和解"})
    assert not casetrail.app.get_case(case_id).is_open
    assert not cached(casetrail, case_id)
