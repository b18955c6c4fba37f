"""Sealing of minors' records (犯罪記錄封存, 刑事訴訟法 §286; issue 20 item 3), over HTTP on
both stores: a minor's correction is completed and the record is sealed; it leaves the
lists, the search and the lookup by person while the indicators still count it; an auditor
asks to open it and a supervisor, another person, approves; the two read it, every read in
the access log; the opening expires by itself, a second one is closed early, and the record
is sealed again. An adult's record is never sealed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.clock import FixedClock, cst_date
from projections import engine_for
from projections.parked import Parked
from tests.web.conftest import INSIDE, PROVINCE, Tokens, create_users
from web.app import create_app

MINOR_NAME = "少年乙"
MINOR_ID = "32010220090101123X"
ADULT_NAME = "成年丙"
ADULT_ID = "320102198001011234"
ADDRESS = "江蘇省南京市玄武區梅園新村街道大悲巷1號"
OPENING_HOURS = 24


class World:
    """The app on a store whose clock the test moves, with its users' tokens."""

    def __init__(self, ct: Casetrail, clock: FixedClock, client: FlaskClient, tokens: Tokens):
        self.ct, self.clock, self.client, self.tokens = ct, clock, client, tokens
        # The street unit's own caseworker (the minor's case is theirs).
        _, self.street = ct.directory.create_user("street worker", "caseworker", INSIDE)
        self.requester, self.requester_token = ct.directory.create_user(
            "requesting auditor", "auditor", PROVINCE
        )
        self.root_admin, _ = ct.directory.create_user("root admin", "admin", PROVINCE)

    def days_ago(self, n: int) -> str:
        return (cst_date(self.clock.now()) - timedelta(days=n)).isoformat()

    def headers(self, who: str) -> dict[str, str]:
        token = {"street": self.street, "requester": self.requester_token}.get(who)
        return {"Authorization": f"Bearer {token or self.tokens.by_role[who]}"}

    def open(self, name: str, id_number: str, birth_date: str) -> str:
        data = {
            "person": {
                "name": name,
                "id_number": id_number,
                "gender": "male",
                "birth_date": birth_date,
                "household_address": ADDRESS,
                "residence_address": ADDRESS,
            },
            "correction_type": "probation",
            "deciding_authority": "南京市玄武區人民法院",
            "decision_effective_on": self.days_ago(400),
            "offence_date": self.days_ago(450),
            "term_start": self.days_ago(400),
            "term_end": self.days_ago(1),
            "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
        }
        body = {"kind": "correction", "unit": INSIDE, "type": "CorrectionSubjectReceived"}
        answer = self.client.post(
            "/api/v1/cases", json={**body, "data": data}, headers=self.headers("street")
        )
        assert answer.status_code == 201, answer.json
        return str(answer.json["id"])

    def append(self, who: str, case_id: str, type_: str, status: int, **data: Any) -> Any:
        answer = self.client.post(
            f"/api/v1/cases/{case_id}/events",
            json={"type": type_, "data": data},
            headers=self.headers(who),
        )
        assert answer.status_code == status, answer.json
        return answer.json

    def complete(self, case_id: str) -> Any:
        self.append("street", case_id, "SubjectReportedIn", 201, reported_on=self.days_ago(395))
        return self.append(
            "street", case_id, "CorrectionCompleted", 201, on=self.days_ago(0), certificate_no="J1"
        )

    def get(self, who: str, path: str, status: int = 200, **params: str) -> Any:
        engine_for(self.ct).catch_up()
        answer = self.client.get(f"/api/v1{path}", query_string=params, headers=self.headers(who))
        assert answer.status_code == status, (path, answer.json)
        return answer.json

    def visible(self, case_id: str) -> dict[str, bool]:
        """Where the case shows: the lists of its unit's caseworker, the county supervisor
        and the auditor, the search by name, the lookup by ID number and by name."""
        found = {}
        for who in ("street", "supervisor", "auditor"):
            items = self.get(who, "/cases", kind="correction", per_page="100")["items"]
            found[f"list:{who}"] = case_id in {item["id"] for item in items}
        for who in ("street", "auditor"):
            searched = self.get(who, "/cases", q=MINOR_NAME)
            found[f"search:{who}"] = case_id in {item["id"] for item in searched["items"]}
        for key, value in (("id_number", MINOR_ID), ("name", MINOR_NAME)):
            people = self.get("auditor", "/people", **{key: value})
            found[f"people:{key}"] = case_id in {item["id"] for item in people["cases"]}
        return found

    def list_total(self, who: str) -> int:
        return int(self.get(who, "/cases", kind="correction")["total"])

    def access(self, case_id: str) -> list[dict[str, Any]]:
        return list(self.get("auditor", "/audit/access", case=case_id)["items"])

    def feed(self, case_id: str) -> list[dict[str, Any]]:
        events = self.get("auditor", "/audit/events", after="0", limit="1000")["events"]
        return [event for event in events if event["id"] == case_id]


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    ct = bootstrap(settings.with_(seal_opening_hours=OPENING_HOURS), clock=clock)
    try:
        tokens = create_users(ct)
        yield World(ct, clock, create_app(ct).test_client(), tokens)
    finally:
        ct.close()


def reads_of(world: World, case_id: str, who: str) -> None:
    """The reader reads the state and the history of the sealed record (granted)."""
    state = world.get(who, f"/cases/{case_id}")
    assert state["sealed"] is True and state["status"] == "completed"
    world.get(who, f"/cases/{case_id}/history")


def refused(world: World, case_id: str, *readers: str) -> None:
    for who in readers:
        for path in (f"/cases/{case_id}", f"/cases/{case_id}/history"):
            assert world.get(who, path, 403)["error"]["code"] == "sealed"


def test_a_minors_record_is_sealed_on_completion_and_opened_only_by_two_people_for_a_time(
    world: World,
) -> None:
    birth = (cst_date(world.clock.now()) - timedelta(days=16 * 365)).isoformat()
    case_id = world.open(MINOR_NAME, MINOR_ID, birth)
    world.append("street", case_id, "SubjectReportedIn", 201, reported_on=world.days_ago(395))
    before = world.visible(case_id)
    assert all(before.values()), before  # not a vacuous absence below
    totals = {who: world.list_total(who) for who in ("street", "supervisor", "auditor")}
    indicators = world.get("auditor", "/indicators", kind="correction")

    # Completion → sealed, by the case itself, in the same command.
    answer = world.append(
        "street", case_id, "CorrectionCompleted", 201, on=world.days_ago(0), certificate_no="J1"
    )
    assert answer["event"]["type"] == "RecordSealed"
    assert answer["event"]["data"]["trigger"] == "CorrectionCompleted"
    assert "刑事訴訟法 §286" in answer["event"]["data"]["legal_basis"]

    # Absent from the lists (their totals with it), the search and the lookup by person.
    assert not any(world.visible(case_id).values())
    assert {who: world.list_total(who) for who in totals} == {
        who: n - 1 for who, n in totals.items()
    }
    # The indicators still count the subject (totals stay right), now as completed.
    after = world.get("auditor", "/indicators", kind="correction")
    assert after["cumulative_received"] == indicators["cumulative_received"]
    assert after["completed_on_schedule"] == indicators["completed_on_schedule"] + 1
    # No one reads it, its own unit's staff included; nothing more is recorded on it.
    refused(world, case_id, "street", "supervisor", "auditor", "requester")
    assert world.append("street", case_id, "CheckInRecorded", 422, on=world.days_ago(0), notes="x")[
        "error"
    ]["code"] in ("sealed", "not_allowed_in_status")
    assert (
        world.append("supervisor", case_id, "ReprimandIssued", 422, violation="x", on="2020-01-01")[
            "error"
        ]["code"]
        == "sealed"
    )
    assert (
        world.append("street", case_id, "RecordSealed", 403, trigger="x", legal_basis="x")["error"][
            "code"
        ]
        == "recorded_by_the_case"
    )

    # An opening: asked by an auditor (not a caseworker), on a ground the law names.
    ground = {"legal_ground": "judicial_case_handling"}
    request = {**ground, "requesting_body": "南京市中級人民法院", "purpose": "審理再審案件需要"}
    code = world.append("street", case_id, "SealOpeningRequested", 403, **request)["error"]["code"]
    assert code == "role_not_permitted"
    code = world.append("requester", case_id, "SealOpeningApproved", 403, **ground)["error"]["code"]
    assert code == "role_not_permitted"  # an auditor asks, a supervisor approves
    world.append("requester", case_id, "SealOpeningRequested", 201, **request)
    assert (
        world.append("requester", case_id, "SealOpeningRequested", 422, **request)["error"]["code"]
        == "opening_pending"
    )
    # The same person, a supervisor now, may not approve their own request.
    admin = world.root_admin.actor
    world.ct.directory.change_user(world.requester.id, by=admin, role="supervisor")
    same = world.append("requester", case_id, "SealOpeningApproved", 403, **ground)
    assert same["error"]["code"] == "approval_by_same_person"
    world.ct.directory.change_user(world.requester.id, by=admin, role="auditor")
    mismatch = {"legal_ground": "statutory_query"}
    assert (
        world.append("supervisor", case_id, "SealOpeningApproved", 422, **mismatch)["error"]["code"]
        == "legal_ground_mismatch"
    )
    until = {**ground, "until": "2099-01-01T00:00:00+00:00"}
    world.append("supervisor", case_id, "SealOpeningApproved", 422, **until)
    approved = world.append("supervisor", case_id, "SealOpeningApproved", 201, **ground)
    opened_until = datetime.fromisoformat(approved["event"]["data"]["until"])
    assert opened_until == world.clock.now() + timedelta(hours=OPENING_HOURS)

    # Readable by the two of them (each read recorded), by no one else; still unlisted.
    reads_of(world, case_id, "requester")
    reads_of(world, case_id, "requester")  # a second read: a record of its own
    reads_of(world, case_id, "supervisor")
    refused(world, case_id, "street", "auditor")
    assert not any(world.visible(case_id).values())
    history = world.get("requester", f"/cases/{case_id}/history")["events"]
    assert [event["type"] for event in history][-4:] == [
        "CorrectionCompleted",
        "RecordSealed",
        "SealOpeningRequested",
        "SealOpeningApproved",
    ]
    requested, approval = history[-2], history[-1]
    assert (requested["actor"], requested["actor_role"]) == (world.requester.id, "auditor")
    assert approval["actor_role"] == "supervisor" and approval["actor"] != requested["actor"]
    assert requested["data"]["legal_ground"] == approval["data"]["legal_ground"]
    # The identity is the auditor's to see (the minors' rule holds inside an opening).
    assert world.get("requester", f"/cases/{case_id}")["person"]["name"] == MINOR_NAME

    # It expires by itself.
    world.clock.advance(timedelta(hours=OPENING_HOURS, seconds=1))
    refused(world, case_id, "requester", "supervisor")
    assert (
        world.append("requester", case_id, "SealOpeningClosed", 422)["error"]["code"]
        == "opening_expired"
    )

    # A second opening, closed early by the auditor.
    world.append("requester", case_id, "SealOpeningRequested", 201, **request)
    world.append("supervisor", case_id, "SealOpeningApproved", 201, **ground)
    reads_of(world, case_id, "requester")
    world.append("requester", case_id, "SealOpeningClosed", 201, reason="查詢完畢")
    refused(world, case_id, "requester", "supervisor")
    assert world.append("requester", case_id, "SealOpeningClosed", 422)["error"]["code"] == (
        "not_open"
    )
    assert not any(world.visible(case_id).values())

    # Every step is in the case's hash-chained history (the global feed, which shows a
    # sealed record's events without their personal fields) ...
    feed = world.feed(case_id)
    assert MINOR_NAME not in str(feed) and MINOR_ID not in str(feed)
    assert set(feed[0]["data"]["person"]) == {"gender", "age_band"}
    assert [event["type"] for event in feed][-8:] == [
        "SubjectReportedIn",
        "CorrectionCompleted",
        "RecordSealed",
        "SealOpeningRequested",
        "SealOpeningApproved",
        "SealOpeningRequested",
        "SealOpeningApproved",
        "SealOpeningClosed",
    ]
    assert world.get("auditor", "/audit/verify", case=case_id)["ok"] is True
    assert Parked(world.ct.db).rows() == []  # every read model took every seal event
    # The read models built event by event are what a rebuild from event 1 builds.
    engine = engine_for(world.ct)
    current = {name: engine.digest(name) for name in engine.projections}
    assert current == {name: engine.digest(name, engine.rebuild(name)) for name in current}
    # ... and every read in the access log: the refusals while sealed, and each granted
    # read under its opening (the approval's version, the ground, the end).
    log = world.access(case_id)
    granted = [item for item in log if item["granted"]]
    sealed = [item for item in log if item["refusal"] == "sealed"]
    first, second = approval["version"], approval["version"] + 2
    by_opening = [item["opening"]["approved_version"] for item in granted if "opening" in item]
    # Under the first opening: the requester's state and history twice, then the history
    # and the state again (6), the approver's state and history (2); under the second: 2.
    assert by_opening.count(first) == 8 and by_opening.count(second) == 2
    openings = [item["opening"] for item in granted if "opening" in item]
    assert {opening["legal_ground"] for opening in openings} == {"judicial_case_handling"}
    # Every other granted read is of the time before the seal, or the auditor's feed.
    others = [item for item in granted if "opening" not in item]
    assert {item["endpoint"].split(" ")[1] for item in others} <= {
        "/api/v1/cases",
        "/api/v1/people",
        "/api/v1/audit/events",
    }
    readers = {item["user"] for item in granted if "opening" in item}
    assert readers == {world.requester.id, approval["actor"]}
    # The refused reads: 4 readers × 2 before, 2 while open, 2 × 2 after expiry and close.
    assert len(sealed) == 2 * (4 + 2 + 2 + 2)


def test_an_adults_record_is_never_sealed(world: World) -> None:
    case_id = world.open(ADULT_NAME, ADULT_ID, "1980-01-01")
    answer = world.complete(case_id)
    assert answer["event"]["type"] == "CorrectionCompleted"
    state = world.get("street", f"/cases/{case_id}")
    assert state["status"] == "completed" and not state.get("sealed")
    items = world.get("street", "/cases", kind="correction")["items"]
    assert case_id in {item["id"] for item in items}
    people = world.get("auditor", "/people", id_number=ADULT_ID)
    assert case_id in {item["id"] for item in people["cases"]}
    request = {
        "legal_ground": "statutory_query",
        "requesting_body": "某單位",
        "purpose": "政審",
    }
    refusal = world.append("requester", case_id, "SealOpeningRequested", 422, **request)
    assert refusal["error"]["code"] == "not_sealed"
    assert "RecordSealed" not in [
        event["type"] for event in world.get("auditor", f"/cases/{case_id}/history")["events"]
    ]


def test_a_minor_still_under_correction_is_not_sealed(world: World) -> None:
    birth = (cst_date(world.clock.now()) - timedelta(days=16 * 365)).isoformat()
    case_id = world.open(MINOR_NAME, MINOR_ID, birth)
    state = world.get("street", f"/cases/{case_id}")
    assert state["minor"] is True and not state.get("sealed")
