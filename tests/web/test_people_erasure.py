"""Over HTTP: an admin erases a person whose records are closed; the service then shows
their fields as erased, and refuses other roles, bad input and open records."""

from __future__ import annotations

import time

import pytest
import requests

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from tests.dispute_builders import registration
from tests.web.conftest import HOME, Service, Tokens, check

PERSON = {"name": "慕容雪", "id_number": "320102198802021111", "phone": "13955559999"}


@pytest.fixture
def service(served: Service) -> Service:
    return served


@pytest.fixture
def tokens(served_tokens: Tokens) -> Tokens:
    return served_tokens


def closed_dispute(ct: Casetrail, person: dict[str, str]) -> str:
    worker = Actor("u_setup", "caseworker", HOME)
    parties = [{**person, "role": "applicant"}, {"name": "某物業公司", "role": "respondent"}]
    data = registration(parties=parties, summary=f"{person['name']}的漏水糾紛")
    case_id = ct.service.open_case(worker, "dispute", HOME, "DisputeRegistered", data).id
    ct.service.append(worker, case_id, "DisputeWithdrawn", {"reason": "和解"})
    ct.service.append(worker, case_id, "DisputeClosed", {"result_summary": "已和解"})
    return case_id


def test_an_admin_erases_a_person_and_every_read_shows_the_fields_erased(
    service: Service, tokens: Tokens, served_casetrail: Casetrail
) -> None:
    case_id = closed_dispute(served_casetrail, PERSON)
    url = f"{service.url}/people/erasures"
    body = {"id_number": PERSON["id_number"], "reason": "個人信息保護法第47條"}
    for role in ("caseworker", "supervisor", "auditor"):
        refused = requests.post(url, json=body, headers=tokens.headers(role))
        assert check(refused, 403)["error"]["code"] == "role_not_permitted"
    bad = requests.post(
        url, json={"id_number": "12", "reason": "x"}, headers=tokens.headers("admin")
    )
    assert check(bad, 422)["error"]["code"] == "invalid_data"
    unknown = {"id_number": "320102199912129999", "reason": "x"}
    assert requests.post(url, json=unknown, headers=tokens.headers("admin")).status_code == 404
    # An admin whose reach does not cover every record learns nothing: not found.
    _, district_admin = served_casetrail.directory.create_user("鄰區管理員", "admin", "320104")
    beyond = requests.post(url, json=body, headers={"Authorization": f"Bearer {district_admin}"})
    assert check(beyond, 404)["error"]["code"] == "person_not_found"

    erased = check(requests.post(url, json=body, headers=tokens.headers("admin")), 200)
    assert erased["cases"] == [{"id": case_id, "kind": "dispute"}]
    assert PERSON["id_number"] not in str(erased)
    time.sleep(2.1)  # every web process forgets the destroyed key
    auditor = tokens.headers("auditor")
    state = check(requests.get(f"{service.url}/cases/{case_id}", headers=auditor), 200)
    assert state["parties"][0]["name"] == "[erased]" and state["summary"] == "[erased]"
    assert state["parties"][1]["role"] == "respondent" and state["status"] == "closed"
    history = requests.get(f"{service.url}/cases/{case_id}/history", headers=auditor)
    assert all(value not in check(history, 200).__str__() for value in PERSON.values())
    # Done once: the person is no longer found.
    again = requests.post(url, json=body, headers=tokens.headers("admin"))
    assert check(again, 404)["error"]["code"] == "person_not_found"
