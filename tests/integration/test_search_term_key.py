"""The read models' search terms are keyed by a key derived from the store's master key
(HKDF), not a constant: each store its own. A store upgraded from the build that keyed
them with the constant keeps finding people while its read models are rebuilt under the
new key, and afterwards holds no term under the old one. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casetrail.audit.access import search_hash
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from casetrail.personal import ACCESS_KEY_PREFIX, ACCESS_SEARCH_PURPOSE, PersonKeys
from domain.case import Actor
from domain.clock import FixedClock
from projections import engine_for
from projections.engine import Engine
from projections.generations import TERM_KEYS_TABLE
from projections.people import People
from projections.privacy import Privacy, legacy_term_key, normalise
from projections.queries import ReadModels
from tests.integration.test_kind_indicators import NOW, Script, at, person, reception

AUDITOR = Actor("u_aud", "auditor", "320000")
KEYED = ["cases", "correction", "resettlement"]


def two_cases_of_one_person(ct: Casetrail, clock: FixedClock) -> dict[str, Any]:
    """Person 7 in two correction cases (two units), re-offending in both; person 8 once."""
    s = Script(ct, clock, "correction", "CorrectionSubjectReceived")
    first = s.open("2026-01-05", "320102001", reception(7, "2026-01-05", "probation", "2027-01-05"))
    second = s.open("2026-02-01", "320104002", reception(7, "2026-02-01", "parole", "2027-02-01"))
    other = s.open("2026-02-01", "320102", reception(8, "2026-02-01", "parole", "2027-02-01"))
    s.step(second, "2026-05-02", "Reoffended", offence="盜竊罪", on="2026-05-01")
    s.step(first, "2026-05-03", "Reoffended", offence="盜竊罪", on="2026-03-01")
    s.step(other, "2026-05-03", "Reoffended", offence="詐騙罪", on="2026-05-03")
    clock.set(at(NOW))
    return {"cases": {first, second}, "id_number": person(7)["id_number"], "name": "矯正對象7"}


def found(ct: Casetrail, made: dict[str, Any]) -> dict[str, Any]:
    """What the people lookup, the case list's search and the figures answer."""
    people = People(ReadModels(ct))
    by_id = people.lookup(AUDITOR, id_number=made["id_number"])
    by_name = people.lookup(AUDITOR, name=made["name"])
    listed = ReadModels(ct).list_cases(q=made["name"][-3:])  # by characters: 象7
    return {
        "by_id": {case["id"] for case in by_id["cases"]},
        "by_name": {case["id"] for case in by_name["cases"]},
        "listed": listed["total"],
        "reoffended": ReadModels(ct).indicators(kind="correction", unit="320100")["reoffended"],
    }


def terms_held(engine: Engine, privacy: Privacy, made: dict[str, Any]) -> dict[str, int]:
    """How many rows of the active generations hold this privacy's terms of person 7:
    the case list's whole-ID-number term, the correction subjects' person key."""
    db = engine.db
    cases = engine.tables("cases", engine.active_generation("cases") or 0)
    correction = engine.tables("correction", engine.active_generation("correction") or 0)
    term = privacy.term("w:" + normalise(made["id_number"]))
    in_terms = db.query(f"SELECT case_id FROM {cases['terms']} WHERE term = ?", (term,))
    person = privacy.person_key(made["id_number"])
    in_subjects = db.query(f"SELECT * FROM {correction['subjects']} WHERE person = ?", (person,))
    return {"terms": len(in_terms), "subjects": len(in_subjects)}


def test_an_upgraded_store_finds_people_before_during_and_after_its_rebuild_under_the_new_key(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    made = two_cases_of_one_person(casetrail, clock)
    # The build before: read models keyed by the constant, and no table of term keys.
    keys = casetrail.app.mapper.keys  # type: ignore[attr-defined]
    casetrail.app.mapper.keys = None  # type: ignore[attr-defined]
    old = engine_for(casetrail)
    casetrail.app.mapper.keys = keys  # type: ignore[attr-defined]
    assert old.privacy.term_key == legacy_term_key(None) == b"casetrail/search-terms"
    old.catch_up()
    casetrail.db.execute_script([f"DROP TABLE {TERM_KEYS_TABLE}"])
    expected = {"by_id": made["cases"], "by_name": made["cases"], "listed": 2, "reoffended": 2}
    assert found(casetrail, made) == expected
    legacy = old.privacy
    assert terms_held(old, legacy, made) == {"terms": 2, "subjects": 2}

    # This build, started on that store (another process).
    upgraded = bootstrap(casetrail.settings, clock=clock)
    try:
        engine = engine_for(upgraded)
        master: bytes = keys.master
        assert engine.privacy.term_key == PersonKeys(upgraded.db, master).search_term_key()
        assert engine.privacy.term_key_id != legacy.term_key_id
        engine.setup()
        assert sorted(engine.stale()) == KEYED
        # Before the rebuild, the old generations are searched under the key they hold.
        assert found(upgraded, made) == expected
        engine.catch_up()
        assert engine.stale() == []
        generations = engine.active_generations()
        assert {name: generations[name] for name in KEYED} == dict.fromkeys(KEYED, 2)
        assert generations["disputes"] == 1  # no search terms: not rebuilt
        assert found(upgraded, made) == expected
        assert terms_held(engine, legacy, made) == {"terms": 0, "subjects": 0}
        assert terms_held(engine, engine.privacy, made) == {"terms": 2, "subjects": 2}
        # A new event is applied under the new key, and a later start rebuilds nothing.
        Script(upgraded, clock, "correction", "CorrectionSubjectReceived").open(
            NOW, "320102", reception(7, NOW, "parole", "2027-07-01")
        )
        engine.catch_up()
        assert len(found(upgraded, made)["by_id"]) == 3
        assert terms_held(engine, engine.privacy, made) == {"terms": 3, "subjects": 3}
        again = bootstrap(casetrail.settings, clock=clock)
        try:
            assert engine_for(again).stale() == []
        finally:
            again.close()
    finally:
        upgraded.close()


def test_two_stores_key_their_search_terms_apart(
    casetrail: Casetrail, clock: FixedClock, tmp_path: Path
) -> None:
    """Each store's master key (here a second store's, made at its first start) gives its
    own term key: one store's read models cannot be searched with the terms of another,
    nor with the constant of before."""
    made = two_cases_of_one_person(casetrail, clock)
    engine = engine_for(casetrail)
    engine.catch_up()
    second = bootstrap(Settings(data_dir=tmp_path / "second"), clock=clock)
    try:
        elsewhere = engine_for(second).privacy
    finally:
        second.close()
    assert elsewhere.term_key_id != engine.privacy.term_key_id
    assert terms_held(engine, engine.privacy, made) == {"terms": 2, "subjects": 2}
    assert terms_held(engine, elsewhere, made) == {"terms": 0, "subjects": 0}
    assert terms_held(engine, Privacy(None), made) == {"terms": 0, "subjects": 0}


def test_a_search_record_keeps_a_hash_under_its_months_access_key_not_the_index_term(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    """The hash of one query differs from the index's term and from month to month, and
    is reproduced only with the month's access key (destroyed at the month's retention)."""
    made = two_cases_of_one_person(casetrail, clock)
    engine = engine_for(casetrail)
    engine.catch_up()
    people = People(ReadModels(casetrail))
    people.lookup(AUDITOR, id_number=made["id_number"])
    clock.set(at("2026-08-03"))
    people.lookup(AUDITOR, id_number=made["id_number"])
    items, _ = casetrail.audit.access.query(AUDITOR)
    # One item per case a record names: each search's record once, by its position.
    records = {item["position"]: item["search"] for item in items if "search" in item}
    july, august = [records[position] for position in sorted(records)]
    assert july["total"] == august["total"] == 2
    index_term = engine.privacy.term("w:" + normalise(made["id_number"]))
    assert index_term not in (july["query"], august["query"])
    assert july["query"] != august["query"]
    keys = casetrail.app.mapper.keys  # type: ignore[attr-defined]
    for month, record in (("2026-07", july), ("2026-08", august)):
        key = keys.derived(ACCESS_KEY_PREFIX + month, ACCESS_SEARCH_PURPOSE)
        assert search_hash(key, normalise(made["id_number"])) == record["query"]
