"""Erasure of a person (issue 20): their data keys destroyed, an erasure event with no
personal data in the chain; afterwards no byte of the store, its WAL or its read models
holds their name, ID number or phone (plain or as a keyed hash that still matches), every
read shows the fields as erased, `audit verify` exits 0 and every other case is unchanged."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import psycopg
import pytest
from click.testing import CliRunner

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from casetrail.personal import ERASED, KEYS_TABLE, SUBJECTS_TABLE
from cli.main import main
from domain.case import Actor
from domain.clock import FixedClock, cst_date
from domain.errors import CasetrailError
from evidence.envelope import subject_hash
from projections import engine_for
from projections.erasure import ERASURES_ID, erase_person
from projections.queries import ReadModels
from tests.dispute_builders import registration
from tests.units import TEST_UNITS

WORKER = Actor("u_worker", "caseworker", "320102")
AUDITOR = Actor("u_audit", "auditor", "320000")
ADMIN = Actor("u_admin", "admin", "320000")
ERASED_PERSON = {"name": "欧阳淑芬", "id_number": "320102198001011234", "phone": "13955550001"}
OPEN_PERSON = {"name": "司马建国", "id_number": "320102197505054321", "phone": "13955550002"}
KEPT_PERSON = {"name": "诸葛丽华", "id_number": "32010219900303567X", "phone": "13955550003"}
OTHER = {"name": "上官志强", "id_number": "320102196612128765", "phone": "13955550004"}


def party(person: dict[str, str], role: str) -> dict[str, str]:
    return {**person, "role": role}


def dispute(ct: Casetrail, clock: FixedClock, *people: dict[str, str], close: bool) -> str:
    parties = [party(people[0], "applicant"), *(party(p, "respondent") for p in people[1:])]
    if len(parties) == 1:
        parties.append({"name": "某物業公司", "role": "respondent"})
    summary = f"{people[0]['name']}與鄰居的漏水糾紛"
    data = registration(parties=parties, summary=summary)
    case_id = ct.service.open_case(WORKER, "dispute", "320102", "DisputeRegistered", data).id
    if close:
        clock.advance(timedelta(minutes=5))
        reason = f"{people[0]['name']}撤回"
        ct.service.append(WORKER, case_id, "DisputeWithdrawn", {"reason": reason})
        result = {"result_summary": f"{people[0]['name']}已自行和解"}
        ct.service.append(WORKER, case_id, "DisputeClosed", result, note=people[0]["phone"])
    return case_id


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {"CASETRAIL_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env.update(
            CASETRAIL_DATABASE_URL=settings.database_url,
            CASETRAIL_DATABASE_SCHEMA=settings.database_schema or "",
        )
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def erase_at_console(settings: Settings, id_number: str) -> tuple[int, str]:
    """`casetrail people erase` of the person with this ID number (exit status, output)."""
    return cli(settings, "people", "erase", "--id-number", id_number, "--reason", "PIPL §47")


def every_byte(ct: Casetrail, settings: Settings) -> bytes:
    """The SQLite file and its WAL as they are on disk, or every row of every table of
    the PostgreSQL schema (tables by name, rows sorted: the same rows give the same bytes
    whatever order a scan returns them in)."""
    if settings.database_url is None:
        files = sorted(settings.data_dir.glob("casetrail.sqlite*"))
        assert any(path.name.endswith("-wal") for path in files)
        return b"".join(path.read_bytes() for path in files)
    chunks: list[bytes] = []
    with psycopg.connect(settings.database_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name",
            (settings.database_schema,),
        ).fetchall()
        for (table,) in tables:
            rows = conn.execute(f'SELECT * FROM {settings.database_schema}."{table}"').fetchall()
            chunks.append(table.encode())
            chunks.extend(sorted(b"\t".join(map(as_bytes, row)) for row in rows))
    return b"\n".join(chunks)


def as_bytes(value: object) -> bytes:
    return bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()


def test_an_erased_person_leaves_no_trace_and_the_store_still_verifies(
    casetrail: Casetrail, settings: Settings, clock: FixedClock
) -> None:
    ct = casetrail
    erased = [
        dispute(ct, clock, ERASED_PERSON, OTHER, close=True),
        dispute(ct, clock, ERASED_PERSON, close=True),
    ]
    still_open = dispute(ct, clock, OPEN_PERSON, close=False)
    kept = dispute(ct, clock, KEPT_PERSON, OTHER, close=True)
    engine = engine_for(ct)
    engine.catch_up()
    ct.audit.write_checkpoint(force=True)
    kept_before = (ct.reads.case_state(AUDITOR, kept), ct.reads.history(AUDITOR, kept))
    models = ReadModels(ct)
    assert models.list_cases(q=ERASED_PERSON["name"])["total"] == 2

    # Refused while a record of the person is open: nothing changes.
    code, output = erase_at_console(settings, OPEN_PERSON["id_number"])
    assert code != 0 and "case_open" in output
    assert ct.reads.case_state(AUDITOR, still_open)["parties"][0]["name"] == OPEN_PERSON["name"]

    clock.advance(timedelta(minutes=60))
    code, output = erase_at_console(settings, ERASED_PERSON["id_number"])
    assert code == 0, output
    assert sorted(case["id"] for case in json.loads(output)["cases"]) == sorted(erased)
    time.sleep(2.1)  # another process's cached keys expire (casetrail.personal)

    for case_id in erased:
        state = ct.reads.case_state(AUDITOR, case_id)
        assert state["parties"][0]["name"] == ERASED and state["summary"] == ERASED
        assert all(ERASED_PERSON["name"] not in str(e) for e in ct.reads.history(AUDITOR, case_id))
    assert (ct.reads.case_state(AUDITOR, kept), ct.reads.history(AUDITOR, kept)) == kept_before
    engine.catch_up()
    # The search index forgot the person; the kept person is found as before.
    for query in (ERASED_PERSON["name"], ERASED_PERSON["id_number"], ERASED_PERSON["name"][:2]):
        assert models.list_cases(q=query)["total"] == 0, query
    assert models.list_cases(q=KEPT_PERSON["name"])["total"] == 1
    listed = {item["id"]: item for item in models.list_cases(per_page=100)["items"]}
    assert all(ERASED_PERSON["name"] not in str(listed[case_id]) for case_id in erased)

    code, output = cli(settings, "audit", "verify")
    assert code == 0, output
    assert ct.audit.verify().ok
    # The erasure act is in the chain and holds no personal data.
    erasure = [e for e in ct.reads.feed(AUDITOR, 0, 1000) if e["id"] == str(ERASURES_ID)]
    assert erasure and all(ERASED_PERSON["id_number"] not in str(e) for e in erasure)

    raw = every_byte(ct, settings)
    for value in ERASED_PERSON.values():
        assert value.encode() not in raw, value
        assert json.dumps(value).encode() not in raw, value
    keys = ct.app.mapper.keys  # type: ignore[attr-defined]
    assert subject_hash(keys.master, ERASED_PERSON["id_number"]).encode() not in raw
    for term in engine.privacy.index_terms(
        [ERASED_PERSON["name"]], [ERASED_PERSON["id_number"]], ""
    ):
        assert not ct.db.query(
            f"SELECT case_id FROM {engine.tables('cases', engine.active_generation('cases'))['terms']} "
            "WHERE term = ? AND case_id IN (?, ?)",
            (term, *erased),
        )
    assert not ct.db.query(f"SELECT key_id FROM {KEYS_TABLE} WHERE key_id IN (?, ?)", tuple(erased))
    assert not ct.db.query(
        f"SELECT key_id FROM {SUBJECTS_TABLE} WHERE key_id IN (?, ?)", tuple(erased)
    )
    # The kept person is still there, plain to those who may read it, and findable.
    assert KEPT_PERSON["name"] in str(ct.reads.case_state(AUDITOR, kept))


def test_erasure_is_refused_within_the_kinds_retention_period(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    case_id = dispute(casetrail, clock, ERASED_PERSON, close=True)
    casetrail.settings = casetrail.settings.with_(retention_days=(("dispute", 30),))
    with pytest.raises(CasetrailError) as refused:
        erase_person(casetrail, ADMIN, ERASED_PERSON["id_number"], "PIPL §47")
    assert getattr(refused.value, "code", None) == "within_retention"
    assert (
        casetrail.reads.case_state(AUDITOR, case_id)["parties"][0]["name"] == ERASED_PERSON["name"]
    )
    clock.advance(timedelta(days=31))
    erase_person(casetrail, ADMIN, ERASED_PERSON["id_number"], "PIPL §47")
    assert casetrail.reads.case_state(AUDITOR, case_id)["parties"][0]["name"] == ERASED


def test_administration_acts_and_erasures_wake_the_projection_workers_like_case_events(
    settings: Settings, clock: FixedClock
) -> None:
    """Every accepted append is announced to `on_append` with its position: else the read
    models' tracking stays behind these logs' events (lag > 0) until the cron passes."""
    announced: list[int] = []
    ct = bootstrap(settings, clock=clock, on_append=announced.append)
    ct.directory.load_units(TEST_UNITS)
    try:
        dispute(ct, clock, ERASED_PERSON, close=True)
        assert announced[-1] == ct.reads.head_position()
        before = len(announced)
        ct.directory.create_user("区管理员", "admin", "320102", by=ADMIN)
        assert len(announced) == before + 1
        assert announced[-1] == ct.reads.head_position()
        clock.advance(timedelta(minutes=60))
        erase_person(ct, ADMIN, ERASED_PERSON["id_number"], "PIPL §47")
        assert len(announced) == before + 2
        assert announced[-1] == ct.reads.head_position()
        assert announced == sorted(announced)
        engine_for(ct).catch_up()
        assert all(entry["lag"] == 0 for entry in engine_for(ct).status())
    finally:
        ct.close()


def test_a_record_whose_key_is_gone_still_loads_with_its_dates_erased(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    data = {
        "person": {
            "name": "少年乙",
            "id_number": "320102201001011234",
            "gender": "male",
            "birth_date": "2010-01-01",
            "household_address": "江蘇省南京市玄武區大悲巷2號",
            "residence_address": "江蘇省南京市玄武區大悲巷2號",
        },
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": cst_date(clock.now()).isoformat(),
        "offence_date": "2025-06-01",
        "term_start": cst_date(clock.now()).isoformat(),
        "term_end": "2027-01-01",
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }
    case_id = casetrail.service.open_case(
        WORKER, "correction", "320102", "CorrectionSubjectReceived", data
    ).id
    assert casetrail.reads.case_state(AUDITOR, case_id)["minor"] is True
    with casetrail.db.transaction() as cur:
        cur.execute(f"DELETE FROM {KEYS_TABLE} WHERE key_id = ?", (case_id,))
    casetrail.app.mapper.keys.forget([case_id])  # type: ignore[attr-defined]
    state = casetrail.reads.case_state(AUDITOR, case_id)
    assert state["person"]["birth_date"] == ERASED and state["person"]["gender"] == "male"
    assert state["minor"] is False
    engine_for(casetrail).catch_up()  # the read models project an erased record too
