"""A dispute handed down (分流指派) is found and counted where it is handled (issue 15), on
SQLite and PostgreSQL: a name search and a lookup by person find it in the handling unit's
subtree as the list shows it there (within jurisdiction and the minors' rules), and its acts
from the hand-down on count at the handling unit as well as at the centre, once at any unit
above both.

The script (China Standard Time; the city is 320100):

| case | centre | registered | handed down to | what follows |
|------|--------|------------|----------------|--------------|
| H1   | 320102 | 03-02      | 320102001 (its own township) 03-03 | agreement 03-05, closed 03-06 |
| H2   | 320102 | 03-02      | 320104002 (another county's street) 03-03 | returned 03-04; open, overdue on 04-20 |
"""

from __future__ import annotations

from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import FixedClock
from projections import engine_for
from projections.people import People
from projections.queries import ReadModels
from tests.dispute_builders import APPLICANT
from tests.integration.test_correction_service import reception
from tests.integration.test_dispute_indicators import CITY_SUPERVISOR, Script, at

COUNTY = "320102"
TOWNSHIP = "320102001"
OTHER_COUNTY = "320104"
OTHER_STREET = "320104002"
H1_NAME = "歐陽春"
H2_NAME = "司馬秋"


def reader(unit: str, role: str = "caseworker") -> Actor:
    return Actor(user_id=f"u_{role}_{unit}", role=role, unit=unit)


def parties(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "role": "applicant"}, dict(APPLICANT, role="respondent")]


@pytest.fixture
def handed_down(casetrail: Casetrail, clock: FixedClock) -> dict[str, str]:
    s = Script(casetrail, clock)
    h1 = s.open("03-02", COUNTY, parties=parties(H1_NAME))
    s.step(h1, "03-03", "DisputeTriaged", responsible_unit=TOWNSHIP)
    s.step(h1, "03-03", "DisputeAssigned", assigned_unit=TOWNSHIP)
    s.step(h1, "03-04", "MediationSessionHeld", reader(TOWNSHIP))
    s.step(h1, "03-05", "AgreementReached", reader(TOWNSHIP))
    s.step(h1, "03-06", "DisputeClosed")
    s.step(h1, "03-07", "FollowUpVisited", visited_on="2026-03-07", satisfaction=5)
    h2 = s.open("03-02", COUNTY, parties=parties(H2_NAME), category="labour")
    s.step(h2, "03-03", "DisputeTriaged", responsible_unit=OTHER_STREET)
    s.step(h2, "03-03", "DisputeAssigned", assigned_unit=OTHER_STREET)
    s.step(h2, "03-04", "DisputeReturned", reader(OTHER_STREET))
    s.step(h2, "03-04", "EarlyWarningRaised", reader(OTHER_STREET), risk="escalation")
    s.step(h2, "03-05", "DisputeTurnedCriminal", CITY_SUPERVISOR, referred_on="2026-03-05")
    clock.set(at("04-20"))
    engine_for(casetrail).catch_up()
    return {"h1": h1, "h2": h2}


def search(ct: Casetrail, unit: str, q: str, role: str = "caseworker") -> list[str]:
    result = ReadModels(ct).cases_for(reader(unit, role), q=q)
    assert result["total"] == len(result["items"])
    return [item["id"] for item in result["items"]]


def lookup(ct: Casetrail, unit: str, name: str) -> list[str]:
    result = People(ReadModels(ct)).lookup(reader(unit), name=name)
    assert result["total"] == len(result["cases"])
    return [item["id"] for item in result["cases"]]


def test_a_name_search_finds_a_dispute_in_the_handling_units_subtree(
    casetrail: Casetrail, handed_down: dict[str, str]
) -> None:
    h1, h2 = handed_down["h1"], handed_down["h2"]
    # The township it was handed down to, and the county above the street of another.
    assert search(casetrail, TOWNSHIP, H1_NAME) == [h1]
    assert search(casetrail, TOWNSHIP, "歐陽") == [h1]  # by its characters too
    assert search(casetrail, OTHER_STREET, H2_NAME) == [h2]
    assert search(casetrail, OTHER_COUNTY, H2_NAME, "supervisor") == [h2]
    # The centre, and a unit above both, find each once.
    assert search(casetrail, COUNTY, H2_NAME) == [h2]
    assert search(casetrail, "320100", H1_NAME) == [h1]
    assert search(casetrail, "320100", H2_NAME) == [h2]
    # Jurisdiction still holds: a unit that neither registered nor handles it finds nothing,
    # nor does the village below the township it was handed to (the list does not show it).
    assert search(casetrail, OTHER_STREET, H1_NAME) == []
    assert search(casetrail, TOWNSHIP, H2_NAME) == []
    assert search(casetrail, "320102001001", H1_NAME) == []
    # The list without a search shows the same.
    listed = ReadModels(casetrail).cases_for(reader(TOWNSHIP))
    assert [item["id"] for item in listed["items"]] == [h1]


def test_a_lookup_by_person_finds_a_dispute_where_it_is_handled(
    casetrail: Casetrail, handed_down: dict[str, str]
) -> None:
    assert lookup(casetrail, TOWNSHIP, H1_NAME) == [handed_down["h1"]]
    assert lookup(casetrail, OTHER_STREET, H2_NAME) == [handed_down["h2"]]
    assert lookup(casetrail, "320100", H2_NAME) == [handed_down["h2"]]
    assert lookup(casetrail, OTHER_STREET, H1_NAME) == []


def test_the_indicators_count_the_handled_acts_at_the_handling_unit_too(
    casetrail: Casetrail, handed_down: dict[str, str]
) -> None:
    def figures(unit: str) -> dict[str, Any]:
        return ReadModels(casetrail).indicators(kind="dispute", unit=unit)

    township, street, county, city = (
        figures(TOWNSHIP),
        figures(OTHER_STREET),
        figures(COUNTY),
        figures("320100"),
    )
    # 統一受理: registered at the centre only.
    assert (township["registered"], street["registered"], county["registered"]) == (0, 0, 2)
    assert city["registered"] == 2 and city["by_category"] == {"neighbourhood": 1, "labour": 1}
    # 歸口辦理: what followed the hand-down counts at the handling unit and at the centre.
    assert township["concluded"] == 1 and township["success_rate"]["numerator"] == 1
    assert township["follow_up_visits"] == 1 and township["on_time_rate"]["numerator"] == 1
    assert (street["returns"], street["overdue_open"], street["criminal_turned"]) == (1, 1, 1)
    assert street["early_warnings"]["escalation"] == 1
    assert (county["concluded"], county["returns"], county["overdue_open"]) == (1, 1, 1)
    # Once at a unit above both (the city holds the county and the other county).
    assert (city["concluded"], city["returns"], city["overdue_open"]) == (1, 1, 1)
    assert (city["criminal_turned"], city["follow_up_visits"]) == (1, 1)
    province = figures("320000")
    assert (province["registered"], province["overdue_open"], province["returns"]) == (2, 1, 1)
    # A unit that neither registered nor handles them counts nothing of them.
    assert figures("320104002")["concluded"] == 0 and figures(TOWNSHIP)["returns"] == 0


def test_a_case_awaiting_a_transfer_is_found_by_the_receiving_unit_but_not_a_minors(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    """The receiving unit lists a case awaiting its answer, so its search finds it; a
    minor's identity stays its own unit's: the receiving unit's search does not find it."""
    clock.set(at("03-02"))
    opened = {}
    for who, birth_date in (("成年人", "1992-03-03"), ("未成年", "2009-01-01")):
        person = {**reception()["person"], "name": f"趙{who}", "birth_date": birth_date}
        case_id = casetrail.service.open_case(
            reader(TOWNSHIP), "correction", TOWNSHIP, "CorrectionSubjectReceived",
            reception(person=person, offence_date="2025-08-01"),
        ).id  # fmt: skip
        casetrail.service.append(
            reader(TOWNSHIP, "supervisor"),
            case_id,
            "TransferProposed",
            {"to_unit": OTHER_STREET, "reason": "經批准遷居"},
        )
        opened[who] = case_id
    engine_for(casetrail).catch_up()
    assert search(casetrail, OTHER_STREET, "趙成年人") == [opened["成年人"]]
    assert search(casetrail, OTHER_STREET, "趙未成年") == []
    assert search(casetrail, TOWNSHIP, "趙未成年") == [opened["未成年"]]
    listed = ReadModels(casetrail).cases_for(reader(OTHER_STREET))
    assert {item["id"] for item in listed["items"]} == set(opened.values())


def test_a_dispute_moved_to_another_centre_counts_there_from_the_acceptance_on(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock)
    moved = s.open("03-02", COUNTY)
    s.step(moved, "03-02", "TransferProposed", reader(COUNTY, "supervisor"), to_unit=OTHER_COUNTY)
    s.step(
        moved, "03-03", "TransferAccepted", reader(OTHER_COUNTY, "supervisor"), to_unit=OTHER_COUNTY
    )
    s.units[moved] = OTHER_COUNTY
    s.mediate(moved, "03-04")
    s.step(moved, "03-05", "AgreementReached")
    s.step(moved, "03-06", "DisputeClosed")
    engine_for(casetrail).catch_up()

    def figures(unit: str) -> tuple[int, int]:
        result = ReadModels(casetrail).indicators(kind="dispute", unit=unit)
        return result["registered"], result["concluded"]

    # Registered (統一受理) where it was registered; concluded at the centre that closed it.
    assert figures(COUNTY) == (1, 0)
    assert figures(OTHER_COUNTY) == (0, 1)
    assert figures("320100") == (1, 1)
