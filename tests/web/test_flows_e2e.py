"""The work that crosses units, over HTTP against the running service: a dispute handed down
from the county centre to a township (分流指派), a case that changes hands only when the
receiving unit accepts (移交), and the move-read-move-back attack on a minor's identity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from casetrail.bootstrap import Casetrail
from domain.clock import cst_date
from projections import engine_for
from tests.dispute_builders import event_data, registration
from tests.web.conftest import HOME, INSIDE, Service, Tokens, check

QINHUAI_STREET = "320104002"
IN_PROVINCE = "江蘇省南京市玄武區梅園新村街道大悲巷1號"


@pytest.fixture
def service(served: Service) -> Service:
    return served


@pytest.fixture
def tokens(served_tokens: Tokens) -> Tokens:
    return served_tokens


def today() -> date:
    return cst_date(datetime.now(UTC))


class Caller:
    def __init__(self, service: Service, token: str) -> None:
        self.url = service.url
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, headers=self.headers, timeout=10)

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=10)

    def append(self, case_id: str, event_type: str, data: Any) -> requests.Response:
        return self.post(f"/cases/{case_id}/events", {"type": event_type, "data": data})

    def record(self, case_id: str, event_type: str, **changes: Any) -> dict[str, Any]:
        data = event_data(event_type, today(), **changes)
        return dict(check(self.append(case_id, event_type, data), 201))


def user(ct: Casetrail, service: Service, role: str, unit: str) -> Caller:
    _, token = ct.directory.create_user(f"{role} of {unit}", role, unit)
    return Caller(service, token)


def error_code(response: requests.Response, status: int) -> str:
    return str(check(response, status)["error"]["code"])


def listed(caller: Caller, **params: Any) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in check(caller.get("/cases", **params), 200)["items"]}


def test_the_county_registers_the_township_mediates_the_county_closes_and_follows_up(
    service: Service, tokens: Tokens, served_casetrail: Casetrail
) -> None:
    county = Caller(service, tokens.by_role["caseworker"])  # the 調處服務中心 of 玄武区
    township = user(served_casetrail, service, "caseworker", INSIDE)
    stranger = Caller(service, tokens.outside["caseworker"])
    opened = county.post(
        "/cases",
        {"kind": "dispute", "unit": HOME, "type": "DisputeRegistered", "data": registration()},
    )
    case_id = str(check(opened, 201)["id"])
    county.record(case_id, "DisputeTriaged")
    # Before the hand-down the township has no part in it.
    held = event_data("MediationSessionHeld", today())
    assert error_code(township.append(case_id, "MediationSessionHeld", held), 404)
    county.record(case_id, "DisputeAssigned", assigned_unit=INSIDE)

    township.record(case_id, "MediationSessionHeld")
    township.record(case_id, "AgreementReached")
    # Closing is the centre's (限期辦結): the township cannot.
    closing = event_data("DisputeClosed", today())
    assert error_code(township.append(case_id, "DisputeClosed", closing), 403) == (
        "outside_jurisdiction"
    )
    county.record(case_id, "DisputeClosed")
    county.record(case_id, "FollowUpVisited")

    state = check(township.get(f"/cases/{case_id}"), 200)
    assert (state["status"], state["unit"], state["assigned_unit"]) == ("closed", HOME, INSIDE)
    history = check(county.get(f"/cases/{case_id}/history"), 200)["events"]
    assert [(e["type"], e["actor_unit"]) for e in history][3:5] == [
        ("MediationSessionHeld", INSIDE),
        ("AgreementReached", INSIDE),
    ]
    # Both units list it; a stranger learns nothing of it.
    engine_for(served_casetrail).catch_up()
    assert case_id in listed(township, kind="dispute")
    assert case_id in listed(county, kind="dispute", unit=INSIDE)
    assert case_id in listed(county, kind="dispute")
    assert error_code(stranger.get(f"/cases/{case_id}"), 404) == "case_not_found"
    assert error_code(stranger.append(case_id, "FollowUpVisited", {}), 404) == "case_not_found"


def reception(name: str, birth_date: str) -> dict[str, Any]:
    start = today() - timedelta(days=5)
    return {
        "person": {
            "name": name,
            "id_number": "32010220100101123X",
            "gender": "male",
            "birth_date": birth_date,
            "household_address": IN_PROVINCE,
            "residence_address": IN_PROVINCE,
        },
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": start.isoformat(),
        "offence_date": (today() - timedelta(days=400)).isoformat(),
        "term_start": start.isoformat(),
        "term_end": (today() + timedelta(days=300)).isoformat(),
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }


def correction_case(caller: Caller, name: str, birth_date: str) -> str:
    body = {
        "kind": "correction",
        "unit": INSIDE,
        "type": "CorrectionSubjectReceived",
        "data": reception(name, birth_date),
    }
    return str(check(caller.post("/cases", body), 201)["id"])


def test_a_case_moves_only_when_a_supervisor_of_the_receiving_unit_accepts(
    service: Service, tokens: Tokens, served_casetrail: Casetrail
) -> None:
    street = user(served_casetrail, service, "caseworker", INSIDE)
    street_lead = user(served_casetrail, service, "supervisor", INSIDE)
    qinhuai_lead = user(served_casetrail, service, "supervisor", QINHUAI_STREET)
    qinhuai_worker = user(served_casetrail, service, "caseworker", QINHUAI_STREET)
    case_id = correction_case(street, "遷居者", "1990-01-01")

    moved = {"to_unit": QINHUAI_STREET, "approved_on": today().isoformat()}
    assert error_code(street_lead.append(case_id, "ResidenceChanged", moved), 422) == (
        "transfer_required"
    )
    # Before a proposal the receiving unit does not even see the case.
    assert error_code(qinhuai_lead.get(f"/cases/{case_id}"), 404) == "case_not_found"
    proposal = {"to_unit": QINHUAI_STREET, "reason": "經批准遷居秦淮區"}
    assert error_code(street.append(case_id, "TransferProposed", proposal), 403) == (
        "supervisor_only"
    )
    check(street_lead.append(case_id, "TransferProposed", proposal), 201)

    # Until accepted the case stays put; both units list it, marked.
    assert check(street.get(f"/cases/{case_id}"), 200)["unit"] == INSIDE
    engine_for(served_casetrail).catch_up()
    for caller in (street, qinhuai_lead):
        assert listed(caller, kind="correction")[case_id]["transfer_to"] == QINHUAI_STREET
    # The receiving unit's supervisor answers; nothing else of the case is theirs yet.
    check_in = {"on": today().isoformat(), "notes": "報到"}
    assert error_code(qinhuai_worker.append(case_id, "CheckInRecorded", check_in), 403) == (
        "outside_jurisdiction"
    )
    answer = {"to_unit": QINHUAI_STREET}
    assert error_code(street_lead.append(case_id, "TransferAccepted", answer), 403) == (
        "outside_jurisdiction"
    )
    check(qinhuai_lead.append(case_id, "TransferAccepted", answer), 201)

    state = check(qinhuai_worker.get(f"/cases/{case_id}"), 200)
    assert state["unit"] == QINHUAI_STREET and state["pending_transfer"] is None
    history = check(qinhuai_worker.get(f"/cases/{case_id}/history"), 200)["events"]
    assert [(e["type"], e["actor_unit"]) for e in history[-2:]] == [
        ("TransferProposed", INSIDE),
        ("TransferAccepted", QINHUAI_STREET),
    ]
    # The old street no longer reaches it.
    assert error_code(street.get(f"/cases/{case_id}"), 404) == "case_not_found"
    engine_for(served_casetrail).catch_up()
    assert listed(qinhuai_worker, kind="correction")[case_id]["transfer_to"] is None
    assert case_id not in listed(street, kind="correction")


def test_a_declined_transfer_leaves_the_case_where_it_was(
    service: Service, served_casetrail: Casetrail
) -> None:
    street = user(served_casetrail, service, "caseworker", INSIDE)
    street_lead = user(served_casetrail, service, "supervisor", INSIDE)
    qinhuai_lead = user(served_casetrail, service, "supervisor", QINHUAI_STREET)
    case_id = correction_case(street, "未遷者", "1990-01-01")
    proposal = {"to_unit": QINHUAI_STREET, "reason": "擬遷居"}
    check(street_lead.append(case_id, "TransferProposed", proposal), 201)
    check(qinhuai_lead.append(case_id, "TransferDeclined", {"to_unit": QINHUAI_STREET}), 201)
    assert check(street.get(f"/cases/{case_id}"), 200)["unit"] == INSIDE
    assert error_code(qinhuai_lead.get(f"/cases/{case_id}"), 404) == "case_not_found"


def test_a_parent_unit_caseworker_cannot_move_a_minor_into_view(
    service: Service, tokens: Tokens, served_casetrail: Casetrail
) -> None:
    """The attack of issue 14: move the case into one's own unit, read the name, move it
    back. Each step is refused, and the read never shows who the minor is."""
    street = user(served_casetrail, service, "caseworker", INSIDE)
    sixteen = today().replace(year=today().year - 17).isoformat()
    case_id = correction_case(street, "小剛", sixteen)
    district = Caller(service, tokens.by_role["caseworker"])  # above the street
    district_lead = Caller(service, tokens.by_role["supervisor"])

    moved = {"to_unit": HOME, "approved_on": today().isoformat()}
    assert error_code(district.append(case_id, "ResidenceChanged", moved), 422) == (
        "transfer_required"
    )
    delegated = {"to_unit": HOME, "reason": "x"}
    assert error_code(district.append(case_id, "TransferProposed", delegated), 403) == (
        "supervisor_only"
    )
    # Not even the district's supervisor pulls a case up into their own unit.
    assert error_code(district_lead.append(case_id, "TransferProposed", delegated), 422) == (
        "transfer_up_the_chain"
    )
    for caller in (district, district_lead):
        state = check(caller.get(f"/cases/{case_id}"), 200)
        assert state["unit"] == INSIDE and state["minor"] is True
        assert "小剛" not in str(state) and "32010220100101123X" not in str(state)
        history = check(caller.get(f"/cases/{case_id}/history"), 200)
        assert "小剛" not in str(history)
