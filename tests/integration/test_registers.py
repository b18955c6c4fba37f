"""The registers (名冊) events name, on SQLite and PostgreSQL: admins keep their own
subtree's entries, each act in the administration log; an event that names an entry must
name a registered, active one of the right kind on the case's branch of the unit tree;
events recorded with names only stay valid; the bases' occupancy against capacity."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import FixedClock
from domain.errors import CasetrailError, InvalidData, NotPermitted, RuleViolation
from projections import engine_for
from projections.bases_query import base_occupancy
from projections.queries import ReadModels
from store.chain_links import CHAIN_TABLE
from tests.dispute_builders import event_data, registration
from tests.integration.steps import REGISTRAR, Steps, at

XUANWU = "320102"
XUANWU_STREET = "320102001"
QINHUAI = "320104"
XUANWU_ADMIN = Actor(user_id="u_xw_admin", role="admin", unit=XUANWU)
WORKER = Actor(user_id="u_worker", role="caseworker", unit=XUANWU)
SUPERVISOR = Actor(user_id="u_super", role="supervisor", unit="320100")


def refused(code: str, error: type[CasetrailError], act: Any) -> CasetrailError:
    with pytest.raises(error) as raised:
        act()
    assert raised.value.code == code
    return raised.value


def register_acts(ct: Casetrail) -> list[tuple[str, str]]:
    rows = ct.db.query(
        f"SELECT event_type, actor FROM {CHAIN_TABLE} WHERE event_type LIKE ? ORDER BY position",
        ("RegisterEntry%",),
    )
    return [(row["event_type"], row["actor"]) for row in rows]


# --- keeping the registers ----------------------------------------------------------------


def test_a_district_admin_keeps_the_registers_of_their_own_subtree_only(
    casetrail: Casetrail,
) -> None:
    registers = casetrail.registers
    base = registers.add("base", XUANWU_STREET, "梅园基地", by=XUANWU_ADMIN, capacity=8)
    assert (base.kind, base.unit, base.capacity, base.active) == ("base", XUANWU_STREET, 8, True)
    assert base.id.startswith("base_")

    refused(
        "outside_jurisdiction",
        NotPermitted,
        lambda: registers.add("base", QINHUAI, "夫子庙基地", by=XUANWU_ADMIN, capacity=5),
    )
    refused(
        "role_not_permitted",
        NotPermitted,
        lambda: registers.add("base", XUANWU, "基地", by=WORKER, capacity=5),
    )
    qinhuai = registers.add("base", QINHUAI, "夫子庙基地", by=REGISTRAR, capacity=5)
    # Another district's entry is not found by this admin (ids outside are not told).
    refused(
        "register_entry_not_found",
        CasetrailError,
        lambda: registers.change(qinhuai.id, by=XUANWU_ADMIN, capacity=6),
    )
    refused(
        "register_entry_not_found",
        CasetrailError,
        lambda: registers.retire(qinhuai.id, by=XUANWU_ADMIN, reason="关闭"),
    )

    changed = registers.change(base.id, by=XUANWU_ADMIN, capacity=12, name="梅园过渡性安置基地")
    assert (changed.capacity, changed.name) == (12, "梅园过渡性安置基地")
    retired = registers.retire(base.id, by=XUANWU_ADMIN, reason="场地到期")
    assert retired.active is False
    assert registers.retire(base.id, by=XUANWU_ADMIN, reason="again").active is False
    refused(
        "register_entry_retired",
        RuleViolation,
        lambda: registers.change(base.id, by=XUANWU_ADMIN, capacity=3),
    )
    # Every act is an event of the administration log, with the admin who did it; the
    # refusals and the repeated retirement recorded nothing.
    assert register_acts(casetrail) == [
        ("RegisterEntryAdded", XUANWU_ADMIN.user_id),
        ("RegisterEntryAdded", REGISTRAR.user_id),
        ("RegisterEntryChanged", XUANWU_ADMIN.user_id),
        ("RegisterEntryRetired", XUANWU_ADMIN.user_id),
    ]
    assert casetrail.audit.verify(None).ok
    # The district's users read their branch: their own entries and those above them.
    worker_sees = {e.id for e in registers.visible(WORKER)}
    assert worker_sees == {base.id}


def test_a_register_entry_is_checked_before_anything_is_recorded(casetrail: Casetrail) -> None:
    registers = casetrail.registers
    bad = [
        ({"kind": "base", "name": "无容量基地"}, "capacity"),
        ({"kind": "base", "name": "基地", "capacity": 0}, "capacity"),
        ({"kind": "mediator", "name": "王调解员", "capacity": 3}, "capacity"),
        ({"kind": "correction_staff", "name": "李矫正"}, "post"),
        ({"kind": "mediator", "name": "张调解员", "post": "officer"}, "post"),
        ({"kind": "base", "name": "", "capacity": 3}, "name"),
    ]
    for fields, field in bad:
        kind, name = fields.pop("kind"), fields.pop("name")
        error = refused(
            "invalid_data",
            InvalidData,
            lambda kind=kind, name=name, fields=fields: registers.add(
                kind, XUANWU, name, by=REGISTRAR, **fields
            ),
        )
        assert field in error.details
    refused(
        "invalid_data",
        InvalidData,
        lambda: registers.add("shelter", XUANWU, "收容所", by=REGISTRAR),
    )
    registers.add("base", XUANWU, "基地", by=REGISTRAR, entry_id="NJ-XW-01", capacity=3)
    refused(
        "register_entry_exists",
        CasetrailError,
        lambda: registers.add(
            "base", XUANWU, "基地", by=REGISTRAR, entry_id="NJ-XW-01", capacity=3
        ),
    )
    # A mediator's committee must be a registered committee of the mediator's branch.
    refused(
        "unknown_mediation_committee",
        RuleViolation,
        lambda: registers.add("mediator", XUANWU, "王调解员", by=REGISTRAR, committee="NJ-XW-01"),
    )
    assert [act for act, _ in register_acts(casetrail)] == ["RegisterEntryAdded"]


# --- what events name -----------------------------------------------------------------------


def notice() -> dict[str, Any]:
    return {
        "person": {
            "name": "钱某某",
            "id_number": "320102198505052345",
            "gender": "male",
            "birth_date": "1985-05-05",
            "household_address": "江苏省南京市玄武区梅园新村街道大悲巷1号",
            "residence_address": "江苏省南京市玄武区梅园新村街道大悲巷1号",
        },
        "release_type": "sentence_completed",
        "institution": "江苏省某监狱",
        "expected_release_date": "2026-04-15",
        "offence": "盗窃罪",
    }


def received_person(ct: Casetrail, clock: FixedClock, unit: str = XUANWU_STREET) -> Steps:
    clock.set(at("2026-03-02"))
    opened = ct.service.open_case(WORKER, "resettlement", unit, "ReleaseNotified", notice())
    steps = Steps(ct, Actor("u_auditor", "auditor", "320000"), opened.id)
    clock.set(at("2026-04-15"))
    steps.append(WORKER, "PersonReleased", released_on="2026-04-15")
    steps.append(WORKER, "PersonReceived", received_on="2026-04-15", method="escorted")
    return steps


def at_base(base_id: str) -> dict[str, Any]:
    return {"placement": "transitional_base", "placed_on": "2026-04-15", "base_id": base_id}


def test_a_placement_at_a_base_names_a_registered_active_base_of_the_cases_branch(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    registers = casetrail.registers
    steps = received_person(casetrail, clock)
    steps.refused(WORKER, "PersonPlaced", "unknown_base", **at_base("NJ-XW-09"))
    committee = registers.add("mediation_committee", XUANWU, "玄武区调委会", by=REGISTRAR)
    steps.refused(WORKER, "PersonPlaced", "unknown_base", **at_base(committee.id))
    qinhuai = registers.add("base", QINHUAI, "夫子庙基地", by=REGISTRAR, capacity=5)
    steps.refused(WORKER, "PersonPlaced", "register_entry_outside_unit", **at_base(qinhuai.id))
    closed = registers.add("base", XUANWU, "旧基地", by=REGISTRAR, capacity=5)
    registers.retire(closed.id, by=REGISTRAR, reason="关闭")
    steps.refused(WORKER, "PersonPlaced", "register_entry_retired", **at_base(closed.id))

    # A base of the district serves its streets; one of the city serves them too.
    county = registers.add("base", XUANWU, "玄武基地", by=REGISTRAR, capacity=5)
    steps.append(WORKER, "PersonPlaced", **at_base(county.id))
    assert steps.state()["base_id"] == county.id
    steps.append(WORKER, "PlacementEnded", ended_on="2026-04-15", reason="就业")
    city = registers.add("base", "320100", "南京市基地", by=REGISTRAR, capacity=5)
    steps.append(WORKER, "PersonPlaced", **at_base(city.id))


def test_dispute_events_name_registered_committees_and_mediators_or_names_only(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    registers = casetrail.registers
    committee = registers.add("mediation_committee", XUANWU_STREET, "梅园调委会", by=REGISTRAR)
    mediator = registers.add(
        "mediator", XUANWU_STREET, "王调解员", by=REGISTRAR, committee=committee.id
    )
    elsewhere = registers.add("mediator", QINHUAI, "秦淮调解员", by=REGISTRAR)
    clock.set(at("2026-03-02"))
    today = clock.now().date()
    opened = casetrail.service.open_case(
        WORKER, "dispute", XUANWU, "DisputeRegistered", registration()
    )
    steps = Steps(casetrail, Actor("u_auditor", "auditor", "320000"), opened.id)
    steps.append(WORKER, "DisputeTriaged", **event_data("DisputeTriaged", today))
    assigned = {**event_data("DisputeAssigned", today), "assigned_unit": XUANWU_STREET}
    steps.refused(WORKER, "DisputeAssigned", "unknown_mediation_committee",
                  **assigned, committee_id=mediator.id)  # fmt: skip
    steps.refused(WORKER, "DisputeAssigned", "unknown_mediator",
                  **assigned, committee_id=committee.id, mediator_ids=[mediator.id, "md_none"])  # fmt: skip
    steps.append(
        WORKER, "DisputeAssigned", **assigned, committee_id=committee.id, mediator_ids=[mediator.id]
    )
    session = event_data("MediationSessionHeld", today)
    steps.refused(WORKER, "MediationSessionHeld", "register_entry_outside_unit",
                  **session, mediator_ids=[elsewhere.id])  # fmt: skip
    steps.append(WORKER, "MediationSessionHeld", **session, mediator_ids=[mediator.id])
    # Names only, as every event before the registers: still accepted.
    steps.append(WORKER, "MediationSessionHeld", **session)
    registers.retire(mediator.id, by=REGISTRAR, reason="退休")
    steps.refused(WORKER, "MediationSessionHeld", "register_entry_retired",
                  **session, mediator_ids=[mediator.id])  # fmt: skip
    # The events that named the retired mediator stay readable, as recorded.
    sessions = [e for e in steps.history() if e["type"] == "MediationSessionHeld"]
    assert sessions[0]["data"]["mediator_ids"] == [mediator.id]


def test_a_correction_team_names_registered_staff_in_their_posts(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    registers = casetrail.registers
    officer = registers.add(
        "correction_staff", XUANWU_STREET, "刘警官", by=REGISTRAR, post="officer"
    )
    social = registers.add(
        "correction_staff", XUANWU_STREET, "张社工", by=REGISTRAR, post="social_worker"
    )
    clock.set(at("2026-03-02"))
    reception = {
        "person": {**notice()["person"], "id_number": "320102199203034567"},
        "correction_type": "probation",
        "deciding_authority": "南京市玄武区人民法院",
        "decision_effective_on": "2026-02-27",
        "offence_date": "2025-08-01",
        "term_start": "2026-02-27",
        "term_end": "2026-08-26",
        "eligibility": {"basis": "household", "evidence": "常住人口登记卡"},
    }
    opened = casetrail.service.open_case(
        WORKER, "correction", XUANWU_STREET, "CorrectionSubjectReceived", reception
    )
    steps = Steps(casetrail, Actor("u_auditor", "auditor", "320000"), opened.id)
    team = {
        "officer": {"name": "刘警官", "gender": "male", "staff_id": officer.id},
        "social_worker": {"name": "张社工", "gender": "female", "staff_id": social.id},
        "volunteers": [{"name": "志愿者甲", "gender": "male"}],
    }
    swapped = {
        **team,
        "officer": {**team["officer"], "staff_id": social.id},
    }
    steps.refused(WORKER, "CorrectionTeamFormed", "staff_post_mismatch", **swapped)
    unknown = {**team, "social_worker": {**team["social_worker"], "staff_id": "cs_none"}}
    steps.refused(WORKER, "CorrectionTeamFormed", "unknown_correction_staff", **unknown)
    steps.append(WORKER, "CorrectionTeamFormed", **team)
    assert steps.state()["team"]["officer"]["staff_id"] == officer.id


# --- occupancy against capacity -------------------------------------------------------------


def test_the_occupancy_list_counts_people_at_each_base_against_its_capacity(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    registers = casetrail.registers
    small = registers.add("base", XUANWU, "小基地", by=REGISTRAR, entry_id="NJ-XW-01", capacity=1)
    registers.add("base", QINHUAI, "夫子庙基地", by=REGISTRAR, entry_id="NJ-QH-01", capacity=4)
    first = received_person(casetrail, clock)
    second = received_person(casetrail, clock, unit=XUANWU)
    third = received_person(casetrail, clock)
    first.append(WORKER, "PersonPlaced", **at_base(small.id))
    # Over capacity is accepted (docs/domain.md): the base is listed over capacity.
    second.append(WORKER, "PersonPlaced", **at_base(small.id))
    third.append(WORKER, "PersonPlaced", **at_base(small.id))
    third.append(WORKER, "PlacementEnded", ended_on="2026-04-15", reason="返家")

    # A base id an event named before the registers (written as an older version did).
    case = casetrail.app.get_case(third.case_id)
    case.trigger_event(
        type(case)._by_name["PersonPlaced"],
        data=at_base("OLD-BASE-7"),
        actor=WORKER.user_id,
        actor_role=WORKER.role,
        actor_unit=WORKER.unit,
        reason=None,
        note=None,
        idempotency_key=None,
    )
    casetrail.service._save(case, WORKER, None, {})

    engine_for(casetrail).catch_up()
    models = ReadModels(casetrail)
    district = base_occupancy(models, SUPERVISOR, unit=XUANWU)
    assert district["bases"] == [
        {
            "base_id": "NJ-XW-01",
            "name": "小基地",
            "unit": XUANWU,
            "registered": True,
            "active": True,
            "capacity": 1,
            "occupancy": 2,
            "free": 0,
            "over_capacity": True,
        },
        {
            "base_id": "OLD-BASE-7",
            "name": None,
            "unit": None,
            "registered": False,
            "active": None,
            "capacity": None,
            "occupancy": 1,
            "free": None,
            "over_capacity": None,
        },
    ]
    assert district["totals"] == {
        "bases": 1,
        "capacity": 1,
        "occupancy": 3,
        "over_capacity": 1,
        "unregistered": 1,
    }
    city = base_occupancy(models, SUPERVISOR)
    assert [b["base_id"] for b in city["bases"]] == ["NJ-XW-01", "NJ-QH-01", "OLD-BASE-7"]
    assert city["totals"]["capacity"] == 5
    # Registering the old id makes it a registered base with its people.
    registers.add("base", XUANWU, "旧基地", by=REGISTRAR, entry_id="OLD-BASE-7", capacity=2)
    again = base_occupancy(models, SUPERVISOR, unit=XUANWU)
    assert [(b["base_id"], b["occupancy"], b["over_capacity"]) for b in again["bases"]] == [
        ("NJ-XW-01", 2, True),
        ("OLD-BASE-7", 1, False),
    ]
    # A retired base is listed only when asked, with the people still there.
    registers.retire("NJ-XW-01", by=REGISTRAR, reason="关闭")
    assert [b["base_id"] for b in base_occupancy(models, SUPERVISOR, unit=XUANWU)["bases"]] == [
        "OLD-BASE-7"
    ]
    with_retired = base_occupancy(models, SUPERVISOR, unit=XUANWU, include_retired=True)
    assert with_retired["bases"][0]["occupancy"] == 2
    refused(
        "outside_jurisdiction",
        NotPermitted,
        lambda: base_occupancy(models, WORKER, unit=QINHUAI),
    )


def test_admins_racing_for_one_id_register_it_once(casetrail: Casetrail) -> None:
    def add(n: int) -> str:
        try:
            casetrail.registers.add(
                "base", XUANWU, f"基地{n}", by=REGISTRAR, entry_id="NJ-RACE", capacity=3
            )
            return "added"
        except CasetrailError as error:
            return error.code

    with ThreadPoolExecutor(8) as pool:
        results = sorted(pool.map(add, range(8)))
    assert results == ["added"] + ["register_entry_exists"] * 7
    assert [act for act, _ in register_acts(casetrail)] == ["RegisterEntryAdded"]
