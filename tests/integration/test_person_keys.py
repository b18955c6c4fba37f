"""A record's data key is written in the transaction of the events sealed with it
(issue 20, cost): an opening commits once, and a key whose events were refused is not
kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from eventsourcing.persistence import IntegrityError

from casetrail.bootstrap import Casetrail
from casetrail.personal import KEYS_TABLE, SUBJECTS_TABLE
from domain.case import Actor
from domain.clock import FixedClock
from domain.errors import CasetrailError
from evidence.envelope import subject_hash
from tests.dispute_builders import registration

WORKER = Actor("u_worker", "caseworker", "320102")
AUDITOR = Actor("u_audit", "auditor", "320000")
PERSON = {"name": "欧阳淑芬", "id_number": "320102198001011234", "role": "applicant"}


def key_rows(ct: Casetrail, key_id: str) -> int:
    return len(ct.db.query(f"SELECT key_id FROM {KEYS_TABLE} WHERE key_id = ?", (key_id,)))


def test_an_opening_writes_its_key_and_keyed_id_numbers_with_its_events(
    casetrail: Casetrail,
) -> None:
    ct = casetrail
    parties = [PERSON, {"name": "某物業公司", "role": "respondent"}]
    case_id = ct.service.open_case(
        WORKER, "dispute", "320102", "DisputeRegistered", registration(parties=parties)
    ).id
    assert key_rows(ct, case_id) == 1
    master = ct.app.mapper.keys.master  # type: ignore[attr-defined]
    found = ct.db.query(
        f"SELECT key_id FROM {SUBJECTS_TABLE} WHERE subject = ?",
        (subject_hash(master, PERSON["id_number"]),),
    )
    assert [row["key_id"] for row in found] == [case_id]
    assert ct.reads.case_state(AUDITOR, case_id)["parties"][0]["name"] == PERSON["name"]


def test_a_key_made_for_events_that_are_refused_is_not_kept(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    ct = casetrail
    keys = ct.app.mapper.keys  # type: ignore[attr-defined]
    ct.app.mapper.keys = None  # type: ignore[attr-defined]  # opened as in an older store
    case_id = ct.service.open_case(
        WORKER, "dispute", "320102", "DisputeRegistered", registration()
    ).id
    # Two commands on one version of the case; the second, whose note needs the record's
    # first key, loses the race: neither its events nor that key are stored.
    first, second = ct.app.get_case(case_id), ct.app.get_case(case_id)
    clock.advance(timedelta(minutes=5))
    service = ct.service
    first.record("DisputeWithdrawn", {"reason": "撤回"}, service._context(WORKER, None, None, None))
    service._save(first, WORKER, None, {})
    ct.app.mapper.keys = keys  # type: ignore[attr-defined]
    assert key_rows(ct, case_id) == 0
    ctx = service._context(WORKER, None, "13955550001", None)
    second.record("DisputeWithdrawn", {"reason": "撤回"}, ctx)
    with pytest.raises((IntegrityError, CasetrailError)):
        service._save(second, WORKER, None, {})
    assert key_rows(ct, case_id) == 0
    # The next note made with a key writes it with its event.
    ct.service.append(WORKER, case_id, "DisputeClosed", {"result_summary": "已和解"}, note="x")
    assert key_rows(ct, case_id) == 1
    assert ct.reads.history(AUDITOR, case_id)[-1]["note"] == "x"
