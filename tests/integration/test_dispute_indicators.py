"""Dispute indicators and the case list, from the read models, against values computed by
hand from a scripted set of six disputes, on SQLite and PostgreSQL.

The script (all days in China Standard Time; the city is 320100):

| case | unit          | registered | path                                           | closed | deadline |
|------|---------------|------------|------------------------------------------------|--------|----------|
| D1   | 320102001     | 03-02      | ordinary; agreement                            | 03-05  | 03-12 on time |
| D2   | 320102        | 03-02      | cross-region (20 days); failed → litigation 03-10 | 03-25 | 03-22 late |
| D3   | 320104002     | 03-03      | collective, labour; returned 03-04; agreement  | 03-31  | 03-13 late |
| D4   | 320102001001  | 03-31      | labour; refused 04-01                          | 04-01  | 04-10 on time |
| D5   | 320102        | 04-01      | open, untriaged                                | —      | 04-11 (overdue on 04-20) |
| D6   | 320104        | 04-02      | open, extended by a supervisor                 | —      | 04-30 |
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import CST, FixedClock
from projections import engine_for
from projections.queries import ReadModels
from tests.dispute_builders import APPLICANT, event_data, registration

CITY_WORKER = Actor(user_id="u_city", role="caseworker", unit="320100")
CITY_SUPERVISOR = Actor(user_id="u_city_sup", role="supervisor", unit="320100")


def at(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(f"2026-{day}"), time(9), tzinfo=CST)


class Script:
    def __init__(self, ct: Casetrail, clock: FixedClock) -> None:
        self.ct = ct
        self.clock = clock
        self.units: dict[str, str] = {}

    def open(self, day: str, unit: str, **changes: Any) -> str:
        self.clock.set(at(day))
        changes.setdefault("center_unit", unit)  # the centre registers it (統一受理)
        case_id = self.ct.service.open_case(
            CITY_WORKER, "dispute", unit, "DisputeRegistered", registration(**changes)
        ).id
        self.units[case_id] = unit
        return case_id

    def step(
        self, case_id: str, day: str, event_type: str, actor: Actor = CITY_WORKER, **changes: Any
    ) -> None:
        self.clock.set(at(day))
        if event_type == "DisputeAssigned":
            # Handled where it was registered (a hand-down elsewhere lists it there too).
            changes.setdefault("assigned_unit", self.units[case_id])
        data = event_data(event_type, at(day).date(), **changes)
        self.ct.service.append(actor, case_id, event_type, data)

    def mediate(self, case_id: str, day: str, complexity: str = "ordinary") -> None:
        self.step(case_id, day, "DisputeTriaged", complexity=complexity)
        self.step(case_id, day, "DisputeAssigned")
        self.step(case_id, day, "MediationSessionHeld")


@pytest.fixture
def scripted(casetrail: Casetrail, clock: FixedClock) -> ReadModels:
    s = Script(casetrail, clock)
    d1 = s.open("03-02", "320102001")
    s.mediate(d1, "03-03")
    s.step(d1, "03-04", "AgreementReached")
    s.step(d1, "03-05", "DisputeClosed")

    d2 = s.open("03-02", "320102", scope="cross_region")
    s.mediate(d2, "03-03", complexity="major")
    s.step(d2, "03-10", "MediationFailed", referral="litigation")
    s.step(d2, "03-25", "DisputeClosed")

    d3 = s.open("03-03", "320104002", people_involved=6, category="labour")
    s.step(d3, "03-03", "DisputeTriaged")
    s.step(d3, "03-03", "DisputeAssigned")
    s.step(d3, "03-04", "DisputeReturned")
    s.step(d3, "03-05", "JointHandlingConvened")
    s.step(d3, "03-05", "DisputeAssigned")
    s.step(d3, "03-06", "MediationSessionHeld")
    s.step(d3, "03-07", "AgreementReached")
    s.step(d3, "03-31", "DisputeClosed")

    d4 = s.open("03-31", "320102001001", category="labour")
    s.step(d4, "04-01", "MediationRefused")
    s.step(d4, "04-01", "DisputeClosed")

    s.open(
        "04-01",
        "320102",
        parties=[{"name": "张伟", "role": "applicant"}, {"name": "赵敏", "role": "respondent"}],
    )
    d6 = s.open("04-02", "320104")
    s.step(d6, "04-03", "DeadlineExtended", actor=CITY_SUPERVISOR, new_deadline="2026-04-30")

    clock.set(at("04-20"))
    engine_for(casetrail).catch_up()
    return ReadModels(casetrail)


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    value = round(numerator / denominator, 6) if denominator else None
    return {"value": value, "numerator": numerator, "denominator": denominator}


def figures(result: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "registered",
        "concluded",
        "success_rate",
        "on_time_rate",
        "overdue_open",
        "returns",
        "referrals_to_litigation",
        "collective",
        "by_category",
    )
    return {key: result[key] for key in keys}


def test_the_city_indicators_cover_every_dispute_below_it(scripted: ReadModels) -> None:
    assert figures(scripted.indicators(kind="dispute", unit="320100")) == {
        "registered": 6,
        "concluded": 4,
        "success_rate": rate(2, 3),  # D1, D3 agreements; D2 failed; D4's refusal excluded
        "on_time_rate": rate(2, 4),  # D1 and D4 within their limits
        "overdue_open": 1,  # D5
        "returns": 1,
        "referrals_to_litigation": 1,
        "collective": 1,
        "by_category": {"labour": 2, "neighbourhood": 4},
    }


def test_a_district_sees_its_own_subtree_only(scripted: ReadModels) -> None:
    xuanwu = figures(scripted.indicators(kind="dispute", unit="320102"))
    assert xuanwu == {
        "registered": 4,
        "concluded": 3,
        "success_rate": rate(1, 2),
        "on_time_rate": rate(2, 3),
        "overdue_open": 1,
        "returns": 0,
        "referrals_to_litigation": 1,
        "collective": 0,
        "by_category": {"labour": 1, "neighbourhood": 3},
    }
    street = figures(scripted.indicators(kind="dispute", unit="320102001"))
    assert street["registered"] == 2 and street["concluded"] == 2
    assert street["success_rate"] == rate(1, 1) and street["on_time_rate"] == rate(2, 2)
    assert street["overdue_open"] == 0
    qinhuai = figures(scripted.indicators(kind="dispute", unit="320104"))
    assert qinhuai == {
        "registered": 2,
        "concluded": 1,
        "success_rate": rate(1, 1),
        "on_time_rate": rate(0, 1),
        "overdue_open": 0,
        "returns": 1,
        "referrals_to_litigation": 0,
        "collective": 1,
        "by_category": {"labour": 1, "neighbourhood": 1},
    }


def test_a_period_counts_what_happened_within_its_days_inclusive(scripted: ReadModels) -> None:
    march = scripted.indicators(
        kind="dispute", unit="320100", from_=date(2026, 3, 1), to=date(2026, 3, 31)
    )
    assert figures(march) == {
        "registered": 4,
        "concluded": 3,
        "success_rate": rate(2, 3),
        "on_time_rate": rate(1, 3),
        "overdue_open": 1,  # "now", whatever the period
        "returns": 1,
        "referrals_to_litigation": 1,
        "collective": 1,
        "by_category": {"labour": 2, "neighbourhood": 2},
    }
    april = figures(
        scripted.indicators(kind="dispute", unit="320100", from_="2026-04-01", to="2026-04-30")
    )
    assert april["registered"] == 2 and april["concluded"] == 1
    assert april["success_rate"] == rate(0, 0) and april["on_time_rate"] == rate(1, 1)
    last_of_march = figures(
        scripted.indicators(kind="dispute", unit="320100", from_="2026-03-31", to="2026-03-31")
    )
    assert last_of_march["registered"] == 1  # D4
    assert last_of_march["concluded"] == 1  # D3
    assert last_of_march["on_time_rate"] == rate(0, 1)
    before = figures(scripted.indicators(kind="dispute", unit="320100", to="2026-03-01"))
    assert before["registered"] == 0 and before["concluded"] == 0


def test_overdue_is_decided_by_the_clock_at_query_time(
    scripted: ReadModels, clock: FixedClock
) -> None:
    clock.set(at("04-11"))
    assert scripted.indicators(kind="dispute", unit="320100")["overdue_open"] == 0
    assert scripted.list_cases(overdue=True)["total"] == 0
    clock.set(at("05-01"))
    assert scripted.indicators(kind="dispute", unit="320100")["overdue_open"] == 2
    assert scripted.list_cases(overdue=True, unit="320104")["total"] == 1


def test_the_case_list_filters_by_kind_unit_status_category_and_name(
    scripted: ReadModels,
) -> None:
    everything = scripted.list_cases(kind="dispute")
    assert everything["total"] == 6 and everything["page"] == 1
    assert [item["opened_at"] for item in everything["items"]] == sorted(
        (item["opened_at"] for item in everything["items"]), reverse=True
    )
    assert scripted.list_cases(unit="320102")["total"] == 4
    assert scripted.list_cases(unit="320102001001")["total"] == 1
    assert scripted.list_cases(status="closed")["total"] == 4
    assert scripted.list_cases(category="labour", unit="320104")["total"] == 1
    overdue = scripted.list_cases(overdue=True)
    assert overdue["total"] == 1
    assert overdue["items"][0]["overdue"] is True
    assert overdue["items"][0]["deadline"] == "2026-04-11"
    assert scripted.list_cases(overdue=False)["total"] == 5
    found = scripted.list_cases(q="张伟")
    assert found["total"] == 1 and found["items"][0]["names"] == ["张伟", "赵敏"]
    assert scripted.list_cases(q="赵")["total"] == 1
    assert scripted.list_cases(q=APPLICANT["name"][:2])["total"] == 5
    assert scripted.list_cases(q=APPLICANT["id_number"])["total"] == 5
    assert scripted.list_cases(q="不存在的人")["total"] == 0
    page = scripted.list_cases(per_page=4, page=2)
    assert page["total"] == 6 and page["page"] == 2 and len(page["items"]) == 2
