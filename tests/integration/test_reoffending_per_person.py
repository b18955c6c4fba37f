"""One person in several cases (人員, found by the keyed hash of their ID number) counts once
in the re-offending figures of resettlement and correction; different people, or a person
whose ID number was erased, count apart. "Now" is 2026-07-01 (CST)."""

from __future__ import annotations

from typing import Any

from casetrail.bootstrap import Casetrail
from casetrail.personal import ERASED
from domain.case import Actor
from domain.clock import FixedClock
from projections import engine_for
from projections.erasure import erase_person
from projections.privacy import Privacy
from projections.queries import ReadModels
from tests.integration.test_kind_indicators import NOW, Script, at, notice, reception


def received(s: Script, day: str, unit: str, n: int) -> str:
    """A resettlement case of person `n`, released and received on `day`."""
    case = s.open(day, unit, notice(n, day))
    s.step(case, day, "PersonReleased", released_on=day)
    s.step(case, day, "PersonReceived", received_on=day, method="escorted")
    return case


def figures(ct: Casetrail, clock: FixedClock, kind: str, **period: Any) -> dict[str, Any]:
    clock.set(at(NOW))
    engine_for(ct).catch_up()
    return ReadModels(ct).indicators(kind=kind, unit="320100", **period)


def test_a_person_in_two_resettlement_cases_reoffends_once_a_year(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    # Person 7's offence is recorded in both of their cases (two units); person 8's in one.
    first = received(s, "2026-01-05", "320102001", 7)
    second = received(s, "2026-02-01", "320104002", 7)
    other = received(s, "2026-02-01", "320102", 8)
    s.step(first, "2026-05-02", "Reoffended", offence="盜竊罪", on="2026-05-01")
    s.step(second, "2026-05-03", "Reoffended", offence="盜竊罪", on="2026-04-20")
    s.step(other, "2026-05-03", "Reoffended", offence="詐騙罪", on="2026-05-03")
    whole = figures(casetrail, clock, "resettlement")
    assert whole["reoffended"] == 2  # person 7 once, person 8 once
    # Person 7 counts on their earliest offence of the year (04-20, in the second case).
    april = figures(casetrail, clock, "resettlement", from_="2026-04-01", to="2026-04-30")
    may = figures(casetrail, clock, "resettlement", from_="2026-05-01", to="2026-05-31")
    assert (april["reoffended"], may["reoffended"]) == (1, 1)
    qinhuai = ReadModels(casetrail).indicators(kind="resettlement", unit="320104")
    assert qinhuai["reoffended"] == 1  # where the earliest offence was recorded
    xuanwu = ReadModels(casetrail).indicators(kind="resettlement", unit="320102")
    assert xuanwu["reoffended"] == 1  # person 8 only


def test_a_person_reoffending_in_two_years_counts_in_each(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    first = received(s, "2025-06-01", "320102001", 7)
    s.step(first, "2025-09-01", "Reoffended", offence="盜竊罪", on="2025-09-01")
    second = received(s, "2026-02-01", "320102001", 7)
    s.step(second, "2026-03-01", "Reoffended", offence="盜竊罪", on="2026-03-01")
    assert figures(casetrail, clock, "resettlement")["reoffended"] == 2
    assert (
        figures(casetrail, clock, "resettlement", from_="2026-01-01", to="2026-12-31")["reoffended"]
        == 1
    )


def test_a_person_in_two_correction_cases_reoffends_once(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    first = s.open("2026-01-05", "320102001", reception(7, "2026-01-05", "probation", "2027-01-05"))
    second = s.open("2026-02-01", "320104002", reception(7, "2026-02-01", "parole", "2027-02-01"))
    other = s.open("2026-02-01", "320102", reception(8, "2026-02-01", "parole", "2027-02-01"))
    s.step(second, "2026-05-02", "Reoffended", offence="盜竊罪", on="2026-05-01")
    s.step(first, "2026-05-03", "Reoffended", offence="盜竊罪", on="2026-03-01")  # found later
    s.step(other, "2026-05-03", "Reoffended", offence="詐騙罪", on="2026-05-03")
    whole = figures(casetrail, clock, "correction")
    assert whole["reoffended"] == 2
    assert whole["reoffending_per_mille"]["numerator"] == 2
    march = figures(casetrail, clock, "correction", from_="2026-03-01", to="2026-03-31")
    may = figures(casetrail, clock, "correction", from_="2026-05-01", to="2026-05-31")
    assert (march["reoffended"], may["reoffended"]) == (1, 1)  # person 7 on 03-01 only
    qinhuai = ReadModels(casetrail).indicators(kind="correction", unit="320104")
    assert qinhuai["reoffended"] == 0  # person 7's earlier offence moved the count away


def test_two_people_of_one_name_count_apart(casetrail: Casetrail, clock: FixedClock) -> None:
    s = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    for n, unit in ((7, "320102001"), (8, "320104002")):
        data = reception(n, "2026-01-05", "probation", "2027-01-05")
        data["person"]["name"] = "王建國"
        case = s.open("2026-01-05", unit, data)
        s.step(case, "2026-05-02", "Reoffended", offence="盜竊罪", on="2026-05-01")
    assert figures(casetrail, clock, "correction")["reoffended"] == 2


def test_an_erased_or_missing_id_number_names_nobody() -> None:
    privacy = Privacy("k" * 32)
    assert privacy.person_key(ERASED) is None
    assert privacy.person_key(None) is None and privacy.person_key("") is None
    assert privacy.person_key("32010219850505007x") == privacy.person_key("32010219850505007X")
    assert privacy.person_key("320102198505050075") != privacy.person_key("320102198505050085")


def test_an_erased_person_leaves_no_key_in_the_figures_and_keeps_their_count(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    corrected = Script(casetrail, clock, "correction", "CorrectionSubjectReceived")
    assisted = Script(casetrail, clock, "resettlement", "ReleaseNotified")
    cases = []
    for unit in ("320102001", "320104002"):
        case = corrected.open(
            "2026-01-05", unit, reception(7, "2026-01-05", "parole", "2027-01-05")
        )
        corrected.step(case, "2026-03-02", "Reoffended", offence="盜竊罪", on="2026-03-01")
        corrected.step(case, "2026-03-03", "SubjectDied", on="2026-03-03")
        cases.append(case)
    released = received(assisted, "2026-01-05", "320102001", 7)
    assisted.step(released, "2026-03-02", "Reoffended", offence="盜竊罪", on="2026-03-01")
    assisted.step(released, "2026-03-03", "AssistanceEnded", reason="other", ended_on="2026-03-03")
    assert figures(casetrail, clock, "correction")["reoffended"] == 1
    assert figures(casetrail, clock, "resettlement")["reoffended"] == 1
    engine = engine_for(casetrail)
    key = engine.privacy.person_key(reception(7, "", "", "")["person"]["id_number"])
    assert key is not None

    def holding_key() -> list[Any]:
        found: list[Any] = []
        for name, tables in (
            ("correction", ("subjects", "reoffenders", "stays")),
            ("resettlement", ("people", "reoffences", "stays")),
        ):
            t = engine.tables(name, engine.active_generation(name))
            for table in tables:
                column = {"reoffences": "person_year", "stays": "who"}.get(table, "person")
                found += casetrail.db.query(
                    f"SELECT * FROM {t[table]} WHERE {column} "
                    + ("LIKE ?" if table == "reoffences" else "= ?"),
                    (f"{key}|%" if table == "reoffences" else key,),
                )
        return found

    # Three cases, two counted re-offences, and the three cases' stays (projections.population).
    assert len(holding_key()) == 8
    february = {"from_": "2026-02-01", "to": "2026-02-28"}
    assert figures(casetrail, clock, "correction", **february)["under_correction_at_start"] == 1
    erase_person(
        casetrail,
        Actor("u_admin", "admin", "320000"),
        notice(7, "")["person"]["id_number"],
        "PIPL §47",
    )
    assert holding_key() == []
    assert figures(casetrail, clock, "correction")["reoffended"] == 1
    # The two cases no longer join: two people under correction that February.
    assert figures(casetrail, clock, "correction", **february)["under_correction_at_start"] == 2
    assert figures(casetrail, clock, "resettlement")["reoffended"] == 1
