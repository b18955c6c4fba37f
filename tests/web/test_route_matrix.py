"""The authorisation matrix of issue 14: every operation of the live OpenAPI document × every
caller × every relation of the target to the caller's unit, with the status each cell must
answer and a look at each body for what it must not show.

The expected answers come from the table below (`Who`, `reach`, `sees_identity`, `finds`),
written from the security model (README "Security model", docs/domain.md), not from the
product's code. The callers sit at 玄武区 (HOME, 320102), the province's auditor at 320000.
The targets: cases handled at HOME itself, a street below (child), the city above (parent),
the sibling district 秦淮区 and another city (无锡), each of an adult and of a minor; a city
dispute handed down (assigned) to HOME; a sibling's minor awaiting HOME's answer to a
transfer. Every case's person has a name, ID number, phone and address of its own, so a
body shows whose data it leaks. An operation added to the API without a row here fails."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import cst_date
from projections import engine_for, outbox
from tests.dispute_builders import event_data, registration
from tests.web.conftest import HOME, PROVINCE
from workers.sweeps import sweeper_of

CHILD, PARENT, SIBLING, OTHER_CITY = "320102001", "320100", "320104", "320200"
UNITS = {"own": HOME, "child": CHILD, "parent": PARENT, "sibling": SIBLING, "city": OTHER_CITY}
# Distinct characters: each case's name shares no character pair with another's.
RARE = "甄鄺璩隗篁莘蓼萁芃苡荪菡薏蘅蘼芷茝蕙蘩蓍蒹葭菖蒲芸薇荇蘋藻荑芎藭苜蓿荸荠茱萸蘘荷葳蕤菟葵苁蓉薜荔蒟蒻菝葜蓽茇"


@dataclass(frozen=True)
class Caller:
    key: str
    role: str | None  # None: no token
    unit: str | None


CALLERS = (
    Caller("caseworker", "caseworker", HOME),
    Caller("supervisor", "supervisor", HOME),
    Caller("auditor", "auditor", HOME),
    Caller("province auditor", "auditor", PROVINCE),
    Caller("admin", "admin", HOME),
    Caller("province admin", "admin", PROVINCE),
    Caller("anonymous", None, None),
)


@dataclass
class Target:
    """A case, or a unit (`case` None), in one relation to HOME."""

    key: str
    unit: str  # the handling unit (a case's) or the unit itself
    case: str | None = None
    minor: bool = False
    reach_units: tuple[str, ...] = ()  # who besides the handling unit's chain reads it
    assigned: bool = False  # handed down to HOME: HOME records the handling events
    personal: tuple[str, ...] = ()
    user: dict[str, str] = field(default_factory=dict)  # route → a user at `unit`


# --- the independent table --------------------------------------------------------------


def chain(unit: str) -> set[str]:
    """A unit and the units above it, by its code (GB/T 2260 / 10114)."""
    up = {unit}
    if len(unit) == 12:
        up |= chain(unit[:9])
    elif len(unit) == 9:
        up |= chain(unit[:6])
    elif unit.endswith("0000"):
        pass
    elif unit.endswith("00"):
        up.add(unit[:2] + "0000")
    else:
        up |= chain(unit[:4] + "00")
    return up


def within(caller: Caller, unit: str) -> bool:
    return caller.unit is not None and caller.unit in chain(unit)


def reach(caller: Caller, t: Target) -> bool:
    return any(within(caller, unit) for unit in (t.unit, *t.reach_units))


def sees_identity(caller: Caller, t: Target) -> bool:
    """A minor: the handling unit's own staff and auditors reaching it; an adult: readers
    reaching it."""
    if caller.role not in ("caseworker", "supervisor", "auditor") or not reach(caller, t):
        return False
    return not t.minor or caller.role == "auditor" or caller.unit == t.unit


def finds(caller: Caller, t: Target) -> bool:
    """A search by name or ID number finds what the list shows (the handling unit's subtree
    and the reach: a dispute handed down, a transfer awaiting the answer), a minor only for
    those who see who it is."""
    return reach(caller, t) and sees_identity(caller, t)


def roles(*allowed: str, ok: int = 200) -> Callable[[Caller, Target], int]:
    return lambda c, t: ok if c.role in allowed else 403


def anyone(ok: int = 200) -> Callable[[Caller, Target], int]:
    return roles("caseworker", "supervisor", "auditor", "admin", ok=ok)


def case_read(c: Caller, t: Target) -> int:
    if not reach(c, t):
        return 404
    return 200 if c.role in ("caseworker", "supervisor", "auditor") else 403


def case_write(supervisors_only: bool) -> Callable[[Caller, Target], int]:
    def want(c: Caller, t: Target) -> int:
        if not reach(c, t):
            return 404
        if c.role not in ("caseworker", "supervisor"):
            return 403
        # The handling unit's chain records every event; a unit it was handed down to,
        # the handling events (not the centre's supervision); a unit awaiting a transfer,
        # only its answer.
        acting = within(c, t.unit) or (t.assigned and not supervisors_only)
        if not acting or (supervisors_only and c.role != "supervisor"):
            return 403
        return 201

    return want


def unit_query(*allowed: str) -> Callable[[Caller, Target], int]:
    return lambda c, t: 403 if c.role not in allowed or not within(c, t.unit) else 200


def inbox(c: Caller, t: Target) -> int:
    """A caseworker's inbox is their own unit's; a supervisor's, their subtree's."""
    if c.role == "caseworker":
        return 200 if t.unit == c.unit else 403
    return unit_query("supervisor")(c, t)


def unit_write(c: Caller, t: Target) -> int:
    return 403 if c.role not in ("caseworker", "supervisor") or not within(c, t.unit) else 201


def unit_admin(ok: int) -> Callable[[Caller, Target], int]:
    return lambda c, t: 403 if c.role != "admin" or not within(c, t.unit) else ok


def user_admin(ok: int) -> Callable[[Caller, Target], int]:
    # A user outside the admin's subtree is not found (its id tells nothing).
    return lambda c, t: 403 if c.role != "admin" else ok if within(c, t.unit) else 404


def verify_case(c: Caller, t: Target) -> int:
    return 403 if c.role != "auditor" else 200 if reach(c, t) else 404


def erase(c: Caller, t: Target) -> int:
    # The person's cases are open: refused (422), to an admin over them; to an admin of
    # another subtree the same answer as for an unknown person (404), nothing learnt.
    return 403 if c.role != "admin" else 422 if within(c, t.unit) else 404


def root_auditor(c: Caller, t: Target) -> int:
    return 200 if c.role == "auditor" and c.unit == PROVINCE else 403


# --- the calls --------------------------------------------------------------------------


@dataclass
class World:
    client: FlaskClient
    ct: Casetrail
    serial: itertools.count[int]


Call = Callable[[World, Target, dict[str, str]], Any]


def get(path: str, **query: Callable[[Target], str]) -> Call:
    def call(w: World, t: Target, h: dict[str, str]) -> Any:
        params = {name: value(t) for name, value in query.items()}
        return w.client.get(path.format(case=t.case), query_string=params, headers=h)

    return call


def today() -> str:
    return cst_date(datetime.now(UTC)).isoformat()


def append(supervisors_only: bool) -> Call:
    def call(w: World, t: Target, h: dict[str, str]) -> Any:
        if t.assigned:  # a dispute
            kind = "SupervisionOrdered" if supervisors_only else "HearingHeld"
            data = event_data(kind, cst_date(datetime.now(UTC)))
        elif supervisors_only:
            kind, data = "ReprimandIssued", {"violation": "未按时报告", "on": today()}
        else:
            kind, data = "CheckInRecorded", {"on": today(), "notes": "按时报到"}
        body = {"type": kind, "data": data}
        return w.client.post(f"/api/v1/cases/{t.case}/events", json=body, headers=h)

    return call


def open_case(w: World, t: Target, h: dict[str, str]) -> Any:
    body = {
        "kind": "dispute",
        "unit": t.unit,
        "type": "DisputeRegistered",
        "data": registration(center_unit=t.unit),
    }
    return w.client.post("/api/v1/cases", json=body, headers=h)


def new_unit(w: World, t: Target, h: dict[str, str]) -> Any:
    n = next(w.serial)
    if len(t.unit) == 6 and t.unit.endswith("00"):  # a city: a district below it
        code = f"{t.unit[:4]}{80 + n % 20:02d}"
    else:
        code = f"{t.unit}{n:03d}"
    return w.client.post("/api/v1/units", json={"code": code, "name": "新单位"}, headers=h)


def new_user(role: str) -> Call:
    def call(w: World, t: Target, h: dict[str, str]) -> Any:
        body = {"name": "新用户", "role": role, "unit": t.unit}
        return w.client.post("/api/v1/users", json=body, headers=h)

    return call


def manage(method: str, path: str, body: Any = None) -> Call:
    def call(w: World, t: Target, h: dict[str, str]) -> Any:
        return w.client.open(path.format(user=t.user[path]), method=method, json=body, headers=h)

    return call


def post(path: str, body: Callable[[Target], Any]) -> Call:
    return lambda w, t, h: w.client.post(path, json=body(t), headers=h)


PROVINCE_ADMIN = Actor(user_id="u_matrix_admin", role="admin", unit=PROVINCE)


def entry(method: str, suffix: str = "", body: Any = None) -> Call:
    """A call on a fresh register entry (a base) at the target unit."""

    def call(w: World, t: Target, h: dict[str, str]) -> Any:
        made = w.ct.registers.add("base", t.unit, "过渡基地", by=PROVINCE_ADMIN, capacity=10)
        return w.client.open(
            f"/api/v1/registers/{made.id}{suffix}", method=method, json=body, headers=h
        )

    return call


def on_branch(c: Caller, t: Target) -> int:
    """A register entry reads on its unit's branch: the units above it and below it."""
    assert c.unit is not None
    return 200 if c.unit in chain(t.unit) or t.unit in chain(c.unit) else 404


@dataclass(frozen=True)
class Cell:
    call: Call
    want: Callable[[Caller, Target], int]
    over: str  # "cases", "units" or "none": the targets it is tried on


USERS = "/api/v1/users/{user}"
ALL_ROLES = ("caseworker", "supervisor", "auditor", "admin")
TABLE: dict[str, list[Cell]] = {
    "GET /api/v1/cases/{case_id}": [
        Cell(get("/api/v1/cases/{case}"), case_read, "cases"),
        Cell(get("/api/v1/cases/{case}", as_of_version=lambda t: "1"), case_read, "cases"),
    ],
    "GET /api/v1/cases/{case_id}/history": [
        Cell(get("/api/v1/cases/{case}/history"), case_read, "cases")
    ],
    "POST /api/v1/cases/{case_id}/events": [
        Cell(append(False), case_write(False), "cases"),
        Cell(append(True), case_write(True), "cases"),
    ],
    "POST /api/v1/cases": [Cell(open_case, unit_write, "units")],
    "GET /api/v1/cases": [
        Cell(
            get("/api/v1/cases", unit=lambda t: t.unit),
            unit_query("caseworker", "supervisor", "auditor"),
            "units",
        ),
        Cell(
            get("/api/v1/cases", q=lambda t: t.personal[0]),
            roles("caseworker", "supervisor", "auditor"),
            "cases",
        ),
    ],
    "GET /api/v1/indicators": [
        Cell(
            get("/api/v1/indicators", unit=lambda t: t.unit, kind=lambda t: "correction"),
            unit_query("caseworker", "supervisor", "auditor"),
            "units",
        )
    ],
    "GET /api/v1/deadlines": [
        Cell(
            get("/api/v1/deadlines", unit=lambda t: t.unit),
            unit_query("supervisor", "auditor"),
            "units",
        )
    ],
    "GET /api/v1/inbox": [Cell(get("/api/v1/inbox", unit=lambda t: t.unit), inbox, "units")],
    "GET /api/v1/people": [
        Cell(
            get("/api/v1/people", id_number=lambda t: t.personal[1]),
            roles("caseworker", "supervisor", "auditor"),
            "cases",
        ),
        Cell(
            get("/api/v1/people", name=lambda t: t.personal[0]),
            roles("caseworker", "supervisor", "auditor"),
            "cases",
        ),
    ],
    "POST /api/v1/people/erasures": [
        Cell(
            post(
                "/api/v1/people/erasures",
                lambda t: {"id_number": t.personal[1], "reason": "PIPL §47"},
            ),
            erase,
            "cases",
        )
    ],
    "GET /api/v1/projections": [
        Cell(get("/api/v1/projections"), roles("supervisor", "auditor", "admin"), "none")
    ],
    "GET /api/v1/notifications": [Cell(get("/api/v1/notifications"), roles("admin"), "none")],
    "GET /api/v1/audit/events": [Cell(get("/api/v1/audit/events"), root_auditor, "none")],
    "GET /api/v1/audit/access": [Cell(get("/api/v1/audit/access"), root_auditor, "none")],
    "GET /api/v1/audit/verify": [
        Cell(get("/api/v1/audit/verify", case=lambda t: str(t.case)), verify_case, "cases"),
        Cell(get("/api/v1/audit/verify"), roles("auditor"), "none"),
    ],
    "GET /api/v1/audit/checkpoints": [
        Cell(get("/api/v1/audit/checkpoints"), roles("auditor"), "none")
    ],
    "GET /api/v1/audit/public-key": [
        Cell(get("/api/v1/audit/public-key"), roles("auditor"), "none")
    ],
    "GET /api/v1/audit/proof": [
        Cell(get("/api/v1/audit/proof", position=lambda t: "1"), roles("auditor"), "none")
    ],
    "GET /api/v1/event-types": [Cell(get("/api/v1/event-types"), anyone(), "none")],
    "GET /api/v1/units": [Cell(get("/api/v1/units"), anyone(), "none")],
    "GET /api/v1/healthz": [Cell(get("/api/v1/healthz"), lambda c, t: 200, "none")],
    "POST /api/v1/units": [Cell(new_unit, unit_admin(201), "units")],
    "GET /api/v1/registers": [
        Cell(get("/api/v1/registers", unit=lambda t: t.unit), unit_query(*ALL_ROLES), "units")
    ],
    "POST /api/v1/registers": [
        Cell(
            post(
                "/api/v1/registers",
                lambda t: {"kind": "base", "unit": t.unit, "name": "基地", "capacity": 8},
            ),
            unit_admin(201),
            "units",
        )
    ],
    "GET /api/v1/registers/{entry_id}": [Cell(entry("GET"), on_branch, "units")],
    "PATCH /api/v1/registers/{entry_id}": [
        Cell(entry("PATCH", body={"name": "新基地"}), user_admin(200), "units")
    ],
    "POST /api/v1/registers/{entry_id}/retire": [
        Cell(entry("POST", "/retire", {"reason": "撤销"}), user_admin(200), "units")
    ],
    "GET /api/v1/bases/occupancy": [
        Cell(get("/api/v1/bases/occupancy", unit=lambda t: t.unit), unit_query(*ALL_ROLES), "units")
    ],
    "POST /api/v1/users": [
        Cell(new_user("caseworker"), unit_admin(201), "units"),
        Cell(new_user("auditor"), unit_admin(201), "units"),
    ],
    "GET /api/v1/users": [
        Cell(get("/api/v1/users", unit=lambda t: t.unit), unit_admin(200), "units")
    ],
    "PATCH /api/v1/users/{user_id}": [
        Cell(manage("PATCH", USERS, {"role": "supervisor"}), user_admin(200), "units")
    ],
    "POST /api/v1/users/{user_id}/disable": [
        Cell(manage("POST", USERS + "/disable"), user_admin(200), "units")
    ],
    "POST /api/v1/users/{user_id}/enable": [
        Cell(manage("POST", USERS + "/enable"), user_admin(200), "units")
    ],
    "POST /api/v1/users/{user_id}/token": [
        Cell(manage("POST", USERS + "/token"), user_admin(201), "units")
    ],
}


# --- the world --------------------------------------------------------------------------


def years_ago(years: int, days: int = 0) -> str:
    now = cst_date(datetime.now(UTC))
    return (now.replace(year=now.year - years) - timedelta(days=days)).isoformat()


def person(n: int, minor: bool) -> dict[str, Any]:
    return {
        "name": "鄺" + RARE[2 * n] + RARE[2 * n + 1],
        "id_number": f"32010220{n:02d}0101{n:03d}X",
        "gender": "female",
        "birth_date": years_ago(17, 10) if minor else "1980-01-01",
        "household_address": f"江蘇省南京市玄武區大悲巷{100 + n}號",
        "residence_address": f"江蘇省南京市玄武區大悲巷{100 + n}號",
        "phone": f"1390000{n:04d}",
    }


def personal(p: dict[str, Any]) -> tuple[str, ...]:
    return (p["name"], p["id_number"], p["phone"], p["household_address"])


def correction(
    ct: Casetrail, n: int, unit: str, minor: bool, *, overdue: bool = False
) -> tuple[str, tuple[str, ...]]:
    """A correction subject received 5 days ago and reported in; or `overdue`: received 14
    days ago and not reported in (10 days allowed), which the deadline sweep warns of."""
    who = person(n, minor)
    received = (cst_date(datetime.now(UTC)) - timedelta(days=14 if overdue else 5)).isoformat()
    data = {
        "person": who,
        "correction_type": "probation",
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": received,
        "offence_date": (cst_date(datetime.now(UTC)) - timedelta(days=100)).isoformat(),
        "term_start": received,
        "term_end": years_ago(-1),
        "eligibility": {"basis": "household", "evidence": f"常住人口登記卡{n}"},
    }
    actor = Actor(user_id="u_setup", role="caseworker", unit=unit)
    case_id = ct.service.open_case(actor, "correction", unit, "CorrectionSubjectReceived", data).id
    if not overdue:
        ct.service.append(actor, case_id, "SubjectReportedIn", {"reported_on": today()})
    return case_id, personal(who)


def handed_down(ct: Casetrail, n: int) -> Target:
    """A city dispute, triaged and assigned to HOME (分流指派)."""
    who = person(n, False)
    party = {
        "name": who["name"],
        "role": "applicant",
        "id_number": who["id_number"],
        "phone": who["phone"],
    }
    other = {"name": "鄺" + RARE[-2:], "role": "respondent"}
    data = registration(center_unit=PARENT, parties=[party, other], summary="邻里漏水纠纷")
    actor = Actor(user_id="u_city", role="supervisor", unit=PARENT)
    case_id = ct.service.open_case(actor, "dispute", PARENT, "DisputeRegistered", data).id
    day = cst_date(datetime.now(UTC))
    ct.service.append(
        actor, case_id, "DisputeTriaged", event_data("DisputeTriaged", day, responsible_unit=PARENT)
    )
    ct.service.append(
        actor, case_id, "DisputeAssigned", event_data("DisputeAssigned", day, assigned_unit=HOME)
    )
    return Target(
        "handed down",
        PARENT,
        case_id,
        False,
        (HOME,),
        True,
        (who["name"], who["id_number"], who["phone"]),
    )


def transfer_in(ct: Casetrail, n: int) -> Target:
    """A sibling district's minor, awaiting HOME's answer to a transfer."""
    case_id, data = correction(ct, n, SIBLING, True)
    actor = Actor(user_id="u_sibling", role="supervisor", unit=SIBLING)
    ct.service.append(actor, case_id, "TransferProposed", {"to_unit": HOME, "reason": "迁居"})
    return Target("transfer to own", SIBLING, case_id, True, (HOME,), personal=data)


def build(
    ct: Casetrail,
) -> tuple[list[Target], list[Target], list[Target], dict[str, dict[str, str]]]:
    cases: list[Target] = []
    background: list[Target] = []
    n = 0
    for key, unit in UNITS.items():
        for minor in (False, True):
            case_id, data = correction(ct, n, unit, minor)
            cases.append(
                Target(
                    f"{key} {'minor' if minor else 'adult'}", unit, case_id, minor, personal=data
                )
            )
            n += 1
    cases.append(handed_down(ct, n))
    cases.append(transfer_in(ct, n + 1))
    # Not targets, but in every list they may be in (inbox, deadlines, notifications): a
    # minor overdue to report in at each unit.
    for m, (key, unit) in enumerate(UNITS.items(), start=n + 2):
        case_id, data = correction(ct, m, unit, True, overdue=True)
        background.append(Target(f"{key} minor overdue", unit, case_id, True, personal=data))
    units = [Target(key, unit) for key, unit in UNITS.items()]
    for path in (USERS, USERS + "/disable", USERS + "/enable", USERS + "/token"):
        for t in units:
            t.user[path] = ct.directory.create_user("被管理", "caseworker", t.unit)[0].id
    tokens = {}
    for caller in CALLERS:
        if caller.role is not None:
            assert caller.unit is not None
            token = ct.directory.create_user(caller.key, caller.role, caller.unit)[1]
            tokens[caller.key] = {"Authorization": f"Bearer {token}"}
        else:
            tokens[caller.key] = {}
    engine_for(ct).catch_up()  # what the projection worker does
    # What the cron does: deadline warnings, and their webhook notifications.
    sweeper_of(ct).sweep()
    outbox.fill(ct.app, ct.db, time.time())
    ct.audit.write_checkpoint(force=True)
    engine_for(ct).catch_up()
    return cases, background, units, tokens


def operations(client: FlaskClient) -> set[str]:
    doc = client.get("/api/v1/openapi.json").get_json()
    methods = {"get", "post", "put", "patch", "delete"}
    return {
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in methods
    }


def test_every_operation_of_the_openapi_document_has_its_row(client: FlaskClient) -> None:
    listed = operations(client)
    assert listed - set(TABLE) == set(), "operations without a row in the matrix"
    assert set(TABLE) - listed == set(), "rows for operations the API no longer has"


def test_every_cell_answers_its_status_and_shows_nothing_it_must_not(
    client: FlaskClient, web_casetrail: Casetrail
) -> None:
    cases, background, units, headers = build(web_casetrail)
    world = World(client, web_casetrail, itertools.count(1))
    unknown = client.get(f"/api/v1/cases/{uuid.uuid4()}", headers=headers["caseworker"])
    not_found = unknown.get_json()["error"]
    wrong: list[str] = []
    cells = 0
    for operation in sorted(operations(client)):
        for cell in TABLE.get(operation, []):
            targets = {"cases": cases, "units": units, "none": [Target("-", HOME)]}[cell.over]
            for caller, target in itertools.product(CALLERS, targets):
                cells += 1
                response = cell.call(world, target, headers[caller.key])
                want = (
                    401
                    if caller.role is None and operation != "GET /api/v1/healthz"
                    else cell.want(caller, target)
                )
                where = f"{operation} {caller.key} × {target.key}"
                if response.status_code != want:
                    wrong.append(
                        f"{where}: {response.status_code} (want {want}) {response.get_data(as_text=True)[:160]}"
                    )
                    continue
                wrong.extend(
                    f"{where}: {problem}"
                    for problem in body_problems(
                        response, caller, target, cases + background, cell, operation, not_found
                    )
                )
    assert cells > 900
    assert not wrong, f"{len(wrong)} of {cells} cells wrong:\n" + "\n".join(wrong[:60])


def body_problems(
    response: Any,
    caller: Caller,
    target: Target,
    cases: list[Target],
    cell: Cell,
    operation: str,
    not_found: dict[str, Any],
) -> list[str]:
    text = response.get_data(as_text=True)
    problems = []
    if response.status_code >= 400:
        error = response.get_json()["error"]
        if set(error) != {"code", "message", "details"}:
            problems.append(f"error shape {sorted(error)}")
        by_id = "{case_id}" in operation or operation == "GET /api/v1/audit/verify"
        # Outside reach: the very answer of an id that does not exist.
        unknown = (not_found["code"], not_found["details"])
        if response.status_code == 404 and by_id and (error["code"], error["details"]) != unknown:
            problems.append(f"404 differs from an unknown id's: {error}")
    # A value the request itself carried (a search's name or ID number) may come back.
    sent = unquote(str(response.request.query_string, "utf-8"))
    asked = {value for value in target.personal if value in sent}
    for other in cases:
        if not sees_identity(caller, other):
            leaked = [
                v for v in other.personal if v in text and not (other is target and v in asked)
            ]
            if leaked:
                problems.append(f"shows {leaked} of {other.key}")
        if not reach(caller, other) and other is not target and str(other.case) in text:
            problems.append(f"names the case {other.key}, outside reach")
    searching = operation == "GET /api/v1/people" or "q=" in sent
    found = str(target.case) in text
    if response.status_code == 200 and searching and found != finds(caller, target):
        problems.append(f"search finds it: {found}, want {finds(caller, target)}")
    return problems
