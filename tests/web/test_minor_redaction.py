"""Over HTTP: a county supervisor reading a 16-year-old's case (handled by a street unit
below) sees no personal field of it, only the gender and an age band (issue 14); the own
unit's staff and the auditor see it all."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from casetrail.bootstrap import Casetrail
from domain.clock import cst_date
from domain.personal import age_band
from projections import engine_for
from tests.web.conftest import INSIDE, Service, Tokens, check
from tests.web.test_kinds_e2e import Caller, days_ago, reception

PERSONAL = (
    "少年甲",
    "32010219900101123X",
    "13800138000",
    "大悲巷1號",  # both addresses
    "常住人口登記卡",  # eligibility evidence
    "按時報到談心",  # a check-in's notes
    "第一次談話",  # an event's note
    "南京市玄武區人民法院",
)


@pytest.fixture
def service(served: Service) -> Service:
    return served


@pytest.fixture
def tokens(served_tokens: Tokens) -> Tokens:
    return served_tokens


def sixteen_year_old() -> str:
    today = cst_date(datetime.now(UTC))
    return (today.replace(year=today.year - 16) - timedelta(days=180)).isoformat()


def test_a_county_supervisor_sees_of_a_minor_only_gender_and_age_band(
    service: Service, tokens: Tokens, served_casetrail: Casetrail
) -> None:
    _, own_token = served_casetrail.directory.create_user("street worker", "caseworker", INSIDE)
    own = Caller(service, own_token)
    birth = sixteen_year_old()
    data = reception("少年甲", birth)
    data["person"]["phone"] = "13800138000"
    data["offence_date"] = days_ago(30)
    case_id = own.open("correction", "CorrectionSubjectReceived", data)
    own.append(case_id, "SubjectReportedIn", reported_on=days_ago(3))
    answer = requests.post(
        f"{own.url}/cases/{case_id}/events",
        json={
            "type": "CheckInRecorded",
            "data": {"on": days_ago(1), "notes": "按時報到談心"},
            "note": "第一次談話",
        },
        headers=own.headers,
    )
    check(answer, 201)

    county = Caller(service, tokens.by_role["supervisor"])  # 320102, above the street
    state = county.state(case_id)
    history = county.history(case_id)
    for shown in (state, history):
        for value in (*PERSONAL, birth):
            assert value not in str(shown), value
    assert state["minor"] is True
    assert state["person"] == {"gender": "female", "age_band": "16-17"}
    assert history[0]["data"]["person"] == {"gender": "female", "age_band": "16-17"}
    assert state["eligibility"]["basis"] == "household"  # a code, not identity
    assert history[2]["data"]["on"] == days_ago(1)

    engine_for(served_casetrail).catch_up()
    listed = check(
        requests.get(f"{county.url}/cases", params={"unit": INSIDE}, headers=county.headers), 200
    )
    item = next(item for item in listed["items"] if item["id"] == case_id)
    assert all(value not in str(item) for value in PERSONAL)

    auditor = Caller(service, tokens.by_role["auditor"])
    for entitled in (own, auditor):
        seen = entitled.state(case_id)
        assert seen["person"]["phone"] == "13800138000" and seen["person"]["birth_date"] == birth
        assert entitled.history(case_id)[2]["note"] == "第一次談話"


def test_an_age_band_says_no_more_than_the_band() -> None:
    today = date(2026, 6, 1)
    assert age_band(date(2010, 6, 2), today) == "14-15"
    assert age_band(date(2010, 6, 1), today) == "16-17"
    assert age_band(date(2008, 6, 1), today) == "18 or over"
    assert age_band(date(2013, 1, 1), today) == "under 14"
