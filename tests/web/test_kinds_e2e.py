"""End to end over HTTP: the lifecycles of resettlement and correction cases, and a
minor's identity shown only to the own unit's staff and to auditors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from casetrail.bootstrap import Casetrail
from domain.clock import cst_date
from projections import engine_for
from tests.web.conftest import INSIDE, Service, Tokens, check

IN_PROVINCE = "江蘇省南京市玄武區梅園新村街道大悲巷1號"
VILLAGE = "320102001001"


@pytest.fixture
def service(served: Service) -> Service:
    return served


@pytest.fixture
def tokens(served_tokens: Tokens) -> Tokens:
    return served_tokens


def days_ago(n: int) -> str:
    return (cst_date(datetime.now(UTC)) - timedelta(days=n)).isoformat()


def person(name: str, birth_date: str = "1990-01-01") -> dict[str, Any]:
    return {
        "name": name,
        "id_number": "32010219900101123X",
        "gender": "female",
        "birth_date": birth_date,
        "household_address": IN_PROVINCE,
        "residence_address": IN_PROVINCE,
    }


class Caller:
    def __init__(self, service: Service, token: str) -> None:
        self.url = service.url
        self.headers = {"Authorization": f"Bearer {token}"}

    def open(self, kind: str, event_type: str, data: dict[str, Any], unit: str = INSIDE) -> str:
        body = {"kind": kind, "unit": unit, "type": event_type, "data": data}
        return str(
            check(requests.post(f"{self.url}/cases", json=body, headers=self.headers), 201)["id"]
        )

    def append(self, case_id: str, event_type: str, **data: Any) -> dict[str, Any]:
        body = {"type": event_type, "data": data}
        answer = requests.post(
            f"{self.url}/cases/{case_id}/events", json=body, headers=self.headers
        )
        return dict(check(answer, 201))

    def state(self, case_id: str) -> dict[str, Any]:
        return dict(check(requests.get(f"{self.url}/cases/{case_id}", headers=self.headers), 200))

    def history(self, case_id: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/cases/{case_id}/history", headers=self.headers)
        return list(check(answer, 200)["events"])


def test_a_released_person_is_notified_received_helped_placed_and_the_assistance_ends(
    service: Service, tokens: Tokens, served_casetrail: Casetrail
) -> None:
    worker = Caller(service, tokens.by_role["caseworker"])
    supervisor = Caller(service, tokens.by_role["supervisor"])
    _, village_token = served_casetrail.directory.create_user("村幫教負責人", "supervisor", VILLAGE)
    village_supervisor = Caller(service, village_token)
    case_id = worker.open(
        "resettlement",
        "ReleaseNotified",
        {
            "person": person("周某某"),
            "release_type": "sentence_completed",
            "institution": "江蘇省某監獄",
            "expected_release_date": days_ago(3),
            "offence": "盜竊罪",
        },
    )
    worker.append(case_id, "PreReleaseAssistanceProvided", provided_on=days_ago(4), notes="談話")
    worker.append(case_id, "PersonReleased", released_on=days_ago(3))
    worker.append(case_id, "PersonReceived", received_on=days_ago(2), method="escorted")
    worker.append(case_id, "AssistanceCategorised", category="key", risk_level="medium")
    worker.append(
        case_id, "AssistanceActivityRecorded", held_on=days_ago(1), kind="visit", notes="家訪"
    )
    worker.append(case_id, "SkillTrainingCompleted", course="電工", completed_on=days_ago(1))
    worker.append(case_id, "PersonPlaced", placement="employment", placed_on=days_ago(1))
    # 委托幫教: proposed by the supervisor here, accepted by the receiving unit's.
    supervisor.append(case_id, "TransferProposed", to_unit=VILLAGE, reason="居住地社區就近幫教")
    village_supervisor.append(case_id, "TransferAccepted", to_unit=VILLAGE)
    worker.append(case_id, "AssistanceEnded", reason="other", ended_on=days_ago(0))

    state = worker.state(case_id)
    assert state["kind"] == "resettlement" and state["version"] == 11
    assert state["status"] == "closed" and state["unit"] == VILLAGE  # delegated, then ended
    history = worker.history(case_id)
    assert [event["type"] for event in history][-1] == "AssistanceEnded"
    auditor = Caller(service, tokens.by_role["auditor"])
    assert auditor.state(case_id)["status"] == state["status"]


def reception(name: str, birth_date: str) -> dict[str, Any]:
    return {
        "person": person(name, birth_date),
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": days_ago(5),
        "offence_date": days_ago(400),
        "term_start": days_ago(5),
        "term_end": days_ago(0),
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }


def test_a_correction_subject_is_received_supervised_and_released_on_schedule(
    service: Service, tokens: Tokens
) -> None:
    worker = Caller(service, tokens.by_role["caseworker"])
    supervisor = Caller(service, tokens.by_role["supervisor"])
    case_id = worker.open(
        "correction", "CorrectionSubjectReceived", reception("吳某", "1990-01-01")
    )
    worker.append(case_id, "SubjectReportedIn", reported_on=days_ago(3))
    worker.append(
        case_id,
        "CorrectionTeamFormed",
        officer={"name": "執法人員甲", "gender": "female"},
        social_worker={"name": "社工乙", "gender": "female"},
        volunteers=[{"name": "志願者丙", "gender": "male"}],
    )
    supervisor.append(case_id, "SupervisionLevelSet", level="ordinary")
    worker.append(case_id, "CheckInRecorded", on=days_ago(2), notes="按時報到")
    worker.append(case_id, "EducationSessionRecorded", on=days_ago(2), notes="法治教育")
    supervisor.append(case_id, "ReprimandIssued", violation="未按時報告", on=days_ago(1))
    worker.append(case_id, "CorrectionCompleted", on=days_ago(0), certificate_no="玄矯解字001號")

    state = supervisor.state(case_id)
    assert state["kind"] == "correction" and state["version"] == 8
    assert state["status"] == "completed", state["status"]
    assert state["minor"] is False and state["person"]["name"] == "吳某"


def test_a_minors_name_is_shown_to_the_own_units_staff_and_auditors_only(
    service: Service, tokens: Tokens, served_casetrail: Casetrail
) -> None:
    _, own_token = served_casetrail.directory.create_user("street caseworker", "caseworker", INSIDE)
    own = Caller(service, own_token)
    sixteen = date.fromisoformat(days_ago(400)).replace(year=date.today().year - 17).isoformat()
    case_id = own.open("correction", "CorrectionSubjectReceived", reception("小明", sixteen))

    for caller in (own, Caller(service, tokens.by_role["auditor"])):
        assert caller.state(case_id)["person"]["name"] == "小明"
        assert caller.history(case_id)[0]["data"]["person"]["name"] == "小明"
    district = Caller(service, tokens.by_role["supervisor"])  # above the case's unit
    state = district.state(case_id)
    assert state["minor"] is True and "小明" not in str(state)
    # A search by the name finds the case for those who may know whose it is, and tells
    # nobody else that such a case exists (no item, no count).
    engine_for(served_casetrail).catch_up()  # no worker runs here
    for caller, found in ((own, 1), (Caller(service, tokens.by_role["auditor"]), 1), (district, 0)):
        answer = requests.get(f"{caller.url}/cases", params={"q": "小明"}, headers=caller.headers)
        listed = check(answer, 200)
        assert listed["total"] == found and len(listed["items"]) == found, caller.headers
        # Nor by the total of a page the case is not on.
        answer = requests.get(
            f"{caller.url}/cases", params={"q": "小明", "page": 2}, headers=caller.headers
        )
        assert check(answer, 200)["total"] == found, caller.headers
    assert "小明" not in str(district.history(case_id))
    assert state["person"]["gender"] == "female"  # what is not identity stays
