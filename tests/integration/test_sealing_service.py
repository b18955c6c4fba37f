"""A sealed record through the service on both stores: its seal and its opening survive the
snapshots a case is reloaded from, and the opening lasts the configured period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.case import Actor
from domain.clock import FixedClock
from domain.errors import NotPermitted
from tests.domain.test_correction import person, reception
from tests.units import TEST_UNITS

WORKER = Actor("u_w", "caseworker", "320102001")
AUDITOR = Actor("u_a", "auditor", "320000")
SUPERVISOR = Actor("u_s", "supervisor", "320102")


@pytest.fixture
def snapshotting(settings: Settings, clock: FixedClock) -> Iterator[Casetrail]:
    ct = bootstrap(settings.with_(snapshot_interval=2, seal_opening_hours=5), clock=clock)
    ct.directory.load_units(TEST_UNITS)
    try:
        yield ct
    finally:
        ct.close()


def test_a_seal_and_its_opening_survive_snapshots(
    snapshotting: Casetrail, clock: FixedClock
) -> None:
    ct = snapshotting
    minor = reception(person=person(birth_date="2009-01-01"), term_end="2026-02-28")
    case_id = ct.service.open_case(
        WORKER, "correction", "320102001", "CorrectionSubjectReceived", minor
    ).id
    ct.service.append(WORKER, case_id, "SubjectReportedIn", {"reported_on": "2026-02-25"})
    sealed = ct.service.append(
        WORKER, case_id, "CorrectionCompleted", {"on": "2026-03-02", "certificate_no": "J"}
    )
    assert (sealed.version, sealed.event["type"]) == (4, "RecordSealed")
    request = {"legal_ground": "statutory_query", "requesting_body": "某單位", "purpose": "查詢"}
    ct.service.append(AUDITOR, case_id, "SealOpeningRequested", request)
    ct.service.append(
        SUPERVISOR, case_id, "SealOpeningApproved", {"legal_ground": "statutory_query"}
    )
    assert ct.app.snapshots is not None  # versions 2, 4 and 6 were snapshotted
    case = ct.app.get_case(case_id)
    assert case.sealed and case.seal_opening["until"] == clock.now() + timedelta(hours=5)
    assert ct.reads.case_state(AUDITOR, case_id)["sealed"] is True
    clock.advance(timedelta(hours=5))
    with pytest.raises(NotPermitted) as refused:
        ct.reads.case_state(AUDITOR, case_id)
    assert refused.value.code == "sealed"
