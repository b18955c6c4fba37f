"""The person across cases (人員): `GET /people` finds, by keyed hash, the cases that name a
person, within the reader's reach and the minors' rules, and records every lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import cst_date
from projections import engine_for
from tests.dispute_builders import registration
from tests.web.conftest import INSIDE, Tokens

QINHUAI_STREET = "320104002"
ID_NUMBER = "320102198505051234"
MINOR_ID = "32010220100101123X"
ADDRESS = "江蘇省南京市玄武區梅園新村街道大悲巷1號"


def today() -> str:
    return cst_date(datetime.now(UTC)).isoformat()


def days_ago(n: int) -> str:
    return (cst_date(datetime.now(UTC)) - timedelta(days=n)).isoformat()


def person(name: str, id_number: str, birth_date: str = "1985-05-05") -> dict[str, Any]:
    return {
        "name": name,
        "id_number": id_number,
        "gender": "male",
        "birth_date": birth_date,
        "household_address": ADDRESS,
        "residence_address": ADDRESS,
    }


def correction(name: str, id_number: str, birth_date: str = "1985-05-05") -> dict[str, Any]:
    return {
        "person": person(name, id_number, birth_date),
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": days_ago(5),
        "offence_date": days_ago(400),
        "term_start": days_ago(5),
        "term_end": days_ago(-300),
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }


def notice(name: str, id_number: str) -> dict[str, Any]:
    return {
        "person": person(name, id_number),
        "release_type": "sentence_completed",
        "institution": "江蘇省某監獄",
        "expected_release_date": days_ago(-60),
        "offence": "盜竊罪",
    }


def open_case(ct: Casetrail, unit: str, kind: str, event_type: str, data: Any) -> str:
    actor = Actor(user_id="u_setup", role="caseworker", unit=unit)
    return ct.service.open_case(actor, kind, unit, event_type, data).id


def lookup(client: FlaskClient, tokens: Tokens, role: str, **params: str) -> Any:
    return client.get("/api/v1/people", query_string=params, headers=tokens.headers(role))


def test_a_person_is_found_across_kinds_within_reach_and_each_lookup_is_recorded(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    ct = web_casetrail
    corrected = open_case(
        ct, INSIDE, "correction", "CorrectionSubjectReceived", correction("趙大", ID_NUMBER)
    )
    released = open_case(ct, INSIDE, "resettlement", "ReleaseNotified", notice("趙大", ID_NUMBER))
    parties = [
        {"role": "applicant", "name": "趙大", "id_number": ID_NUMBER},
        {"role": "respondent", "name": "錢二"},
    ]
    disputed = open_case(
        ct, QINHUAI_STREET, "dispute", "DisputeRegistered", registration(parties=parties)
    )
    open_case(ct, INSIDE, "correction", "CorrectionSubjectReceived", correction("孫三", "1" * 18))
    engine_for(ct).catch_up()

    home = lookup(client, tokens, "caseworker", id_number=ID_NUMBER)
    assert home.status_code == 200, home.text
    found = home.get_json()
    # The district's two cases, not Qinhuai's dispute; not another person's.
    assert {case["id"] for case in found["cases"]} == {corrected, released}
    assert found["total"] == 2 and found["by_kind"] == {"correction": 1, "resettlement": 1}
    province = lookup(client, tokens, "auditor", id_number=ID_NUMBER).get_json()
    assert {case["id"] for case in province["cases"]} == {corrected, released, disputed}
    by_name = lookup(client, tokens, "auditor", name="趙大").get_json()
    assert {case["id"] for case in by_name["cases"]} == {corrected, released, disputed}
    nobody = lookup(client, tokens, "caseworker", id_number="320102199912312222").get_json()
    assert nobody == {"cases": [], "total": 0, "by_kind": {}}

    # Every lookup is recorded: its keyed hash and total, never the text.
    log = client.get("/api/v1/audit/access", headers=tokens.headers("auditor"))
    assert log.status_code == 200, log.text
    assert ID_NUMBER not in log.text and "趙大" not in log.text
    searches = [r["search"] for r in log.get_json()["items"] if r.get("search")]
    assert {s["total"] for s in searches} >= {0, 2, 3}
    assert all(isinstance(s["query"], int) for s in searches)


def test_a_minor_is_found_only_by_those_who_may_know_who_it_is(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    sixteen = days_ago(400)[:4]
    birth = f"{int(sixteen) - 16}-01-01"
    minor = open_case(
        web_casetrail,
        INSIDE,
        "correction",
        "CorrectionSubjectReceived",
        correction("小紅", MINOR_ID, birth),
    )
    engine_for(web_casetrail).catch_up()
    district = lookup(client, tokens, "supervisor", id_number=MINOR_ID).get_json()
    assert district == {"cases": [], "total": 0, "by_kind": {}}
    auditor = lookup(client, tokens, "auditor", id_number=MINOR_ID).get_json()
    assert [case["id"] for case in auditor["cases"]] == [minor]


def test_a_lookup_needs_exactly_one_of_id_number_and_name(
    client: FlaskClient, tokens: Tokens
) -> None:
    for params in ({}, {"id_number": ID_NUMBER, "name": "趙大"}, {"name": " "}):
        answer = lookup(client, tokens, "caseworker", **params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.get_json()["error"]["code"] == "invalid_data"
    assert lookup(client, tokens, "admin", name="趙大").status_code == 403
