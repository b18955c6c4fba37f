"""The projection engine on SQLite and PostgreSQL: exactly once, unknown events, personal
data at rest, rebuild and status."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock
from evidence.chain import ChainEntry
from projections import all_projections, engine_for
from projections.engine import Engine
from projections.queries import ReadModels
from projections.readmodel import Tables
from projections.rebuild import plan_groups
from projections.tracking import SHARE_BUCKETS, tracking_name
from tests.dispute_builders import APPLICANT, PERSONAL_DATA, RESPONDENT
from tests.integration.projection_support import bulk_disputes

KEY = "z5TrQwKA3bY1sWl4R6Ng+j8tV2xhKc0pE9mUdFgLs7o="


def test_a_batch_read_before_another_worker_applied_it_is_refused(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 20)
    engine = engine_for(casetrail)
    engine.setup()
    stale = casetrail.app.recorder.select_notifications(
        start=0, limit=100, inclusive_of_start=False
    )
    engine.catch_up()
    before = {name: engine.digest(name) for name in engine.projections}
    for name in engine.projections:
        assert engine.apply_after(name, 1, 0, stale) is None
    assert {name: engine.digest(name) for name in engine.projections} == before
    # The tracking recorder itself refuses a position that does not advance.
    head = engine.head()
    try:
        engine.recorder.insert_tracking(Tracking(tracking_name("cases", 1), head))
    except IntegrityError:
        pass
    else:
        raise AssertionError("a non-advancing tracking record was accepted")


def test_two_processes_catching_up_at_once_apply_each_event_once(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 120)
    other = bootstrap(casetrail.settings, clock=clock)
    try:
        engines = [engine_for(casetrail), engine_for(other)]
        for engine in engines:
            engine.batch_size = 7
            engine.setup()
        threads = [threading.Thread(target=engine.catch_up) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        engine = engines[0]
        engine.batch_size = 500
        assert all(entry["lag"] == 0 for entry in engine.status())
        current = {name: engine.digest(name) for name in engine.projections}
        rebuilt = {name: engine.digest(name, engine.rebuild(name)) for name in engine.projections}
        assert current == rebuilt
        assert ReadModels(casetrail).list_cases()["total"] == 120
    finally:
        other.close()


def test_a_catch_up_decodes_each_event_once_for_every_read_model(
    casetrail: Casetrail, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All read models take one batch together: the log is read and decoded once, not once
    per read model (which made the worker's steady catch-up cost five times a bulk one's)."""
    engine = engine_for(casetrail)
    engine.setup()
    engine.catch_up()
    assert not engine.lagging()
    bulk_disputes(casetrail, clock, 30)
    assert engine.lagging()
    behind = engine.head() - min(entry["position"] for entry in engine.status())
    decoded = []
    decode = engine._decode
    monkeypatch.setattr(engine, "_decode", lambda n: decoded.append(n.id) or decode(n))
    assert engine.catch_up() > 0
    assert all(entry["lag"] == 0 for entry in engine.status())
    assert not engine.lagging()
    assert len(engine.projections) > 1
    assert 0 < len(decoded) <= behind
    assert len(decoded) == len(set(decoded))


def test_a_catch_up_refreshes_the_statistics_of_the_read_models_it_filled_only(
    casetrail: Casetrail, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read model takes the same batches, but each counts its own events applied:
    one that applied few (no correction case here) is not analysed."""
    engine = engine_for(casetrail)
    engine.setup()
    bulk_disputes(casetrail, clock, 30)
    monkeypatch.setattr("projections.engine.ANALYZE_AFTER_EVENTS", 50)
    analysed: list[str] = []
    monkeypatch.setattr(engine, "analyze", lambda name, generation: analysed.append(name))
    engine.catch_up()
    assert "disputes" in analysed and "cases" in analysed
    assert "correction" not in analysed


def test_events_this_build_does_not_know_are_skipped_and_still_tracked(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 3)
    stranger = StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=1,
        topic="casetrail.access_log:CaseRead",
        state=b'{"actor": "u_audit"}',
    )
    entry = ChainEntry("CaseRead", clock.now().isoformat(), "u_audit", "auditor", "320000")
    casetrail.app.recorder.insert_events([stranger], chain=[entry])
    bulk_disputes(casetrail, clock, 2)
    engine = engine_for(casetrail)
    engine.catch_up()
    assert all(entry["lag"] == 0 for entry in engine.status())
    assert ReadModels(casetrail).list_cases()["total"] == 5


def test_with_a_cipher_key_names_and_id_numbers_are_stored_only_encrypted_and_hashed(
    settings: Settings, clock: FixedClock
) -> None:
    ct = bootstrap(settings.with_(cipher_key=KEY), clock=clock)
    try:
        bulk_disputes(ct, clock, 4)
        engine = engine_for(ct)
        engine.catch_up()
        for name, projection in engine.projections.items():
            tables = engine.tables(name, 1)
            for table in projection.tables:
                for row in ct.db.query(f"SELECT * FROM {tables[table]}"):
                    text = repr(row)
                    assert not any(secret in text for secret in PERSONAL_DATA), (name, table)
        models = ReadModels(ct)
        found = models.list_cases(q=RESPONDENT["name"])
        assert found["total"] == 4
        assert found["items"][0]["names"] == [APPLICANT["name"], RESPONDENT["name"]]
        assert models.list_cases(q=APPLICANT["id_number"])["total"] == 4
        assert models.list_cases(q="王")["total"] == 4
        assert models.list_cases(q="王建")["total"] == 0
    finally:
        ct.close()
    if settings.backend == "sqlite":
        # Issue 5: the raw database files hold no plaintext name or ID number.
        raw = b"".join(path.read_bytes() for path in settings.data_dir.glob("casetrail.sqlite*"))
        assert raw
        assert not any(secret.encode() in raw for secret in PERSONAL_DATA)


def test_a_rebuild_switches_atomically_and_drops_the_old_tables_only_after_a_grace_period(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 30)
    engine = engine_for(casetrail)
    engine.catch_up()
    before = engine.digest("cases")
    assert engine.rebuild("cases") == 2
    assert engine.active_generation("cases") == 2
    assert engine.digest("cases") == before
    assert engine.drop_retired() == []
    assert casetrail.db.query(f"SELECT COUNT(*) AS n FROM {Tables('cases', 1)['list']}")
    assert engine.drop_retired(grace_seconds=0) == [("cases", 1)]
    assert engine.position("cases", 1) == 0  # its tracking record went with it
    assert ReadModels(casetrail).list_cases()["total"] == 30


def indexes(ct: Casetrail, table: str) -> set[str]:
    if ct.db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
    else:
        sql = (
            "SELECT indexname AS name FROM pg_indexes WHERE tablename = ? "
            "AND schemaname = current_schema() AND right(indexname, 4) <> 'pkey'"
        )
    return {row["name"].split(".")[-1] for row in ct.db.query(sql, (table,))}


def test_an_interrupted_rebuild_of_all_read_models_resumes_and_ends_with_every_index(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 40)
    engine = engine_for(casetrail)
    engine.catch_up()
    # A first pass stopped after one batch: the new generations have rows and no indexes.
    building = {name: engine._new_generation(name) for name in engine.projections}
    # A log of disputes only: the case list, the dispute indicators and the inbox apply
    # each event.
    assert engine.run_batches(building, limit=25) == (False, 25 * 3)
    list_table = engine.tables("cases", building["cases"])["list"]
    assert indexes(casetrail, list_table) == set()
    bulk_disputes(casetrail, clock, 5)  # and the log moved on meanwhile
    engine.catch_up()
    active = {name: engine.digest(name) for name in engine.projections}
    engine.rebuild_batch_size = 30
    assert engine.rebuild_many() == building
    assert engine.active_generations() == building
    for name, generation in building.items():
        assert engine.digest(name) == active[name], name
        for table in engine.projections[name].tables:
            assert indexes(casetrail, engine.tables(name, generation)[table]) == {
                index.replace(f"_{1}", f"_{generation}")
                for index in indexes(casetrail, engine.tables(name, 1)[table])
            }, (name, table)
    assert indexes(casetrail, list_table)  # the case list's indexes are there now
    assert ReadModels(casetrail).list_cases(q="王")["total"] == 45


def test_status_reports_each_projections_position_the_head_and_the_lag(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    events = bulk_disputes(casetrail, clock, 5)
    models = ReadModels(casetrail)
    assert {entry["lag"] for entry in models.status()} == {events}
    assert models.wait_for(events, timeout=0.05) is False
    engine_for(casetrail).catch_up()
    status = models.status()
    assert [entry["name"] for entry in status] == [
        "cases",
        "disputes",
        "resettlement",
        "correction",
        "inbox",
        "bases",
    ]
    assert all(
        entry["position"] == entry["head"] == events and entry["lag"] == 0 for entry in status
    )
    assert models.wait_for(events, timeout=0.05) is True


def test_a_read_model_of_an_older_layout_is_rebuilt_by_the_next_catch_up(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 12)
    engine = engine_for(casetrail)
    engine.catch_up()
    assert engine.stale() == []
    before = engine.digest("cases")
    # As a store written by the build before the layout of the search terms changed:
    # generation 1 of the case list, with no recorded layout version (version 1).
    casetrail.db.execute_script(["DELETE FROM rm_versions WHERE name = 'cases'"])
    assert engine.stale() == ["cases"]
    assert [e.get("stale") for e in engine.status() if e["name"] == "cases"] == [True]
    bulk_disputes(casetrail, clock, 3)
    engine.catch_up()
    assert engine.stale() == []
    assert engine.active_generation("cases") == 2
    assert engine.active_generations()["disputes"] == 1
    assert engine.digest("cases") != before
    assert ReadModels(casetrail).list_cases(q="王")["total"] == 15


def test_a_backlog_far_larger_than_what_was_applied_is_rebuilt_in_steps(
    casetrail: Casetrail, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import projections.engine as engine_module

    bulk_disputes(casetrail, clock, 10)
    engine = engine_for(casetrail)
    engine.catch_up()
    bulk_disputes(casetrail, clock, 50)
    monkeypatch.setattr(engine_module, "FAR_BEHIND_EVENTS", 100)
    assert engine.far_behind(list(engine.projections)) == list(engine.projections)
    engine.rebuild_batch_size = 40
    # A job's time is up after the first batch: nothing switched, resumed by the next.
    assert engine.catch_up(max_seconds=0) == 0
    assert engine.active_generations() == dict.fromkeys(engine.projections, 1)
    engine.catch_up()
    assert engine.active_generations() == dict.fromkeys(engine.projections, 2)
    assert all(entry["lag"] == 0 for entry in engine.status())
    assert engine.far_behind(list(engine.projections)) == []
    assert ReadModels(casetrail).list_cases()["total"] == 60
    fresh = {name: engine.digest(name, engine.rebuild(name)) for name in engine.projections}
    assert fresh == {name: engine.digest(name, 2) for name in engine.projections}


def test_a_rebuild_in_two_processes_builds_what_one_process_builds(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    bulk_disputes(casetrail, clock, 60)
    engine = engine_for(casetrail)
    engine.catch_up()
    caught_up = {name: engine.digest(name) for name in engine.projections}
    # Small batches, so that the two processes' writes interleave (on SQLite they take
    # turns at the writers' file lock).
    engine.rebuild_batch_size = engine.batch_size = 20
    generations = engine.rebuild_many(processes=2)
    assert engine.active_generations() == generations
    assert all(generation == 2 for generation in generations.values())
    assert {name: engine.digest(name) for name in engine.projections} == caught_up
    assert ReadModels(casetrail).list_cases(q="王")["total"] == 60


def caught_up_engine(casetrail: Casetrail, clock: FixedClock, cases: int) -> Engine:
    """`cases` bulk disputes, and the engine with every read model caught up on them."""
    bulk_disputes(casetrail, clock, cases)
    engine = engine_for(casetrail)
    engine.catch_up()
    return engine


def test_the_case_list_filled_in_shares_by_two_processes_is_what_one_pass_builds(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    engine = caught_up_engine(casetrail, clock, 60)
    caught_up = engine.digest("cases")
    engine.rebuild_batch_size = engine.batch_size = 20
    # The case list alone over two processes: each fills half of its cases.
    assert [shares for _, shares in plan_groups({"cases": 3.0}, {"cases"}, 2)] == [
        {"cases": (0, 500)},
        {"cases": (500, 1000)},
    ]
    assert engine.rebuild_many(["cases"], processes=2) == {"cases": 2}
    assert engine.active_generation("cases") == 2
    assert engine._shares("cases", 2) == {}
    assert engine.digest("cases") == caught_up
    assert ReadModels(casetrail).list_cases(q="王")["total"] == 60


def test_shares_left_by_an_interrupted_rebuild_are_merged_and_whole_batches_wait(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    engine = caught_up_engine(casetrail, clock, 50)
    generation = engine._new_generation("cases")
    halves = [(0, 500), (500, 1000)]
    engine._open_shares("cases", generation, halves)
    # The processes stopped at different places: one share a batch ahead of the other.
    assert engine.run_batches({"cases": generation}, shares={"cases": halves[0]}, limit=40)[1]
    engine.run_batches({"cases": generation}, shares={"cases": halves[1]}, limit=90)
    first, second = (engine._shares("cases", generation)[half] for half in halves)
    assert 0 < first < second
    (status,) = [entry for entry in engine.status() if entry["name"] == "cases"]
    assert status["rebuilding"] == {
        "generation": generation,
        "position": first,
        "shares": {"0-500": first, "500-1000": second},
    }
    # While shares fill the generation, a whole batch would apply their cases again.
    assert engine.run_batches({"cases": generation}, limit=40) == (False, None)
    assert engine.position("cases", generation) == 0
    bulk_disputes(casetrail, clock, 5)  # and the log moved on meanwhile
    engine.catch_up()
    active = engine.digest("cases")
    engine.rebuild_batch_size = 30
    assert engine.rebuild_many(["cases"]) == {"cases": generation}
    assert engine._shares("cases", generation) == {}
    assert engine.active_generation("cases") == generation
    assert engine.digest("cases") == active
    assert ReadModels(casetrail).list_cases(q="王")["total"] == 55


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["cases", "disputes", "resettlement", "correction", "other"]),
        st.floats(min_value=0.05, max_value=10),
        min_size=1,
    ),
    st.integers(min_value=1, max_value=4),
)
def test_a_rebuild_plan_takes_every_read_model_once_and_shares_tile_the_buckets(
    weights: dict[str, float], processes: int
) -> None:
    partitionable = {"cases"} & set(weights)
    groups = plan_groups(weights, partitionable, processes)
    assert 1 <= len(groups) <= processes
    whole = [name for names, _ in groups for name in names]
    assert sorted(whole) == sorted(set(whole))
    ranges = sorted(r for _, shares in groups for r in shares.values())
    if ranges:
        assert "cases" not in whole
        assert ranges[0][0] == 0 and ranges[-1][1] == SHARE_BUCKETS
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(ranges))
        assert len(ranges) > 1
    assert set(whole) | ({"cases"} if ranges else set()) == set(weights)
    if partitionable and processes > 1 and ranges:
        # The shares level the groups they go to (to a bucket's weight).
        loads = [
            sum(names.values())
            + sum(weights["cases"] * (hi - lo) / SHARE_BUCKETS for lo, hi in shares.values())
            for names, shares in groups
            if shares
        ]
        assert max(loads) - min(loads) <= 2 * weights["cases"] / SHARE_BUCKETS + 1e-9


def test_a_batch_decodes_the_kinds_of_the_event_classes_a_read_model_handles() -> None:
    kinds = {projection.name: projection.kinds for projection in all_projections()}
    assert kinds == {
        "cases": None,  # every case event moves its row (status, time, version)
        "disputes": frozenset({"dispute"}),
        "resettlement": frozenset({"resettlement"}),
        "correction": frozenset({"correction"}),
        "inbox": None,  # every case event may move a deadline
        "bases": frozenset({"resettlement"}),
    }
