"""The attacks of issue 14, each made over HTTP against the running service (gunicorn,
two workers) as an attacker with a valid account would, and each now refused: a district
admin minting a province-wide auditor, squatting another city's unit code, a disabled
or rotated-away token still working, administration leaving no trace, a client
flooding the log, data files any local user can read."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from casetrail.administration import ADMINISTRATION_ID
from casetrail.bootstrap import Casetrail
from casetrail.config import Settings
from domain.case import Actor
from domain.clock import cst_date
from projections import engine_for, outbox
from store.chain_links import CHAIN_TABLE
from tests.dispute_builders import registration
from tests.web.conftest import HOME, INSIDE, ROOT, Service, Tokens, check, settings_env
from workers.sweeps import sweeper_of

WUXI = "320200"  # another city: outside every HOME user's reach
WUXI_TOWNSHIP = "320205001"  # a township code of a Wuxi district
CLI = "from cli.main import main; main()"


def get(service: Service, token: str, path: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{service.url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def post(service: Service, token: str, path: str, body: Any = None) -> requests.Response:
    return requests.post(
        f"{service.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def patch(service: Service, token: str, path: str, body: Any) -> requests.Response:
    return requests.patch(
        f"{service.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def error_code(response: requests.Response, status: int) -> str:
    return str(check(response, status)["error"]["code"])


def wuxi_case(ct: Casetrail) -> str:
    actor = Actor(user_id="u_wuxi", role="caseworker", unit=WUXI)
    return ct.service.open_case(actor, "dispute", WUXI, "DisputeRegistered", registration()).id


def admin_id(service: Service, tokens: Tokens) -> str:
    users = check(get(service, tokens.by_role["admin"], "/users", role="admin"), 200)["users"]
    return str(users[0]["id"])


def administration_events(service: Service, tokens: Tokens) -> list[dict[str, Any]]:
    feed = check(get(service, tokens.by_role["auditor"], "/audit/events", limit=1000), 200)
    return [e for e in feed["events"] if e["id"] == str(ADMINISTRATION_ID)]


# --- finding: a district admin mints a province-wide auditor -----------------------------


def test_an_auditor_minted_by_a_district_admin_reads_only_that_district(
    web_casetrail: Casetrail, tokens: Tokens, service: Service
) -> None:
    admin = tokens.by_role["admin"]
    elsewhere = wuxi_case(web_casetrail)
    # Above the admin's unit: refused, whatever the role.
    for role in ("auditor", "admin"):
        body = {"name": "省级审计", "role": role, "unit": "320000"}
        assert error_code(post(service, admin, "/users", body), 403) == "outside_jurisdiction"
    # An auditor of the admin's own district is allowed, and reaches that district only.
    created = check(
        post(service, admin, "/users", {"name": "区审计", "role": "auditor", "unit": HOME}), 201
    )
    auditor = created["token"]
    for path in (f"/cases/{elsewhere}", f"/cases/{elsewhere}/history"):
        response = get(service, auditor, path)
        # Outside the auditor's reach the case does not exist (404, its id tells nothing).
        assert error_code(response, 404) == "case_not_found"
        assert "王秀英" not in response.text
    assert error_code(get(service, auditor, "/cases", unit=WUXI), 403) == "outside_jurisdiction"
    listed = check(get(service, auditor, "/cases", q="王秀英"), 200)
    assert elsewhere not in {item["id"] for item in listed["items"]}
    # The global feed and the access log cross every unit: the province's auditor only.
    for path in ("/audit/events", "/audit/access"):
        assert error_code(get(service, auditor, path), 403) == "outside_jurisdiction"
    assert check(get(service, tokens.by_role["auditor"], f"/cases/{elsewhere}"), 200)
    # Nor does verifying it say that the id is taken (found by the authorisation matrix:
    # it answered 200 with the case's event count).
    for case_id in (elsewhere, str(uuid.uuid4())):
        refused = get(service, auditor, "/audit/verify", case=case_id)
        assert error_code(refused, 404) == "case_not_found"
    assert check(get(service, tokens.by_role["auditor"], "/audit/verify", case=elsewhere), 200)
    # The district auditor still reads their own district's cases.
    own = web_casetrail.service.open_case(
        Actor("u_home", "caseworker", INSIDE),
        "dispute",
        INSIDE,
        "DisputeRegistered",
        registration(),
    )
    assert check(get(service, auditor, f"/cases/{own.id}"), 200)["unit"] == INSIDE


def test_a_district_admin_sees_only_their_subtrees_webhook_notifications(
    web_casetrail: Casetrail, tokens: Tokens, service: Service
) -> None:
    """Found by the authorisation matrix: any admin listed the whole province's outbox."""
    received = (cst_date(datetime.now(UTC)) - timedelta(days=14)).isoformat()
    data = {
        "person": {
            "name": "钱某",
            "id_number": "320205199001011234",
            "gender": "male",
            "birth_date": "1990-01-01",
            "household_address": "江苏省无锡市锡山区东亭街道1号",
            "residence_address": "江苏省无锡市锡山区东亭街道1号",
        },
        "correction_type": "probation",
        "deciding_authority": "无锡市锡山区人民法院",
        "decision_effective_on": received,
        "offence_date": "2025-08-01",
        "term_start": received,
        "term_end": (cst_date(datetime.now(UTC)) + timedelta(days=200)).isoformat(),
        "eligibility": {"basis": "household", "evidence": "常住人口登记卡"},
    }
    cases = {}
    for unit in (WUXI, INSIDE):  # overdue to report in, at Wuxi and in the admin's district
        actor = Actor(user_id="u_loader", role="caseworker", unit=unit)
        opened = web_casetrail.service.open_case(
            actor, "correction", unit, "CorrectionSubjectReceived", data
        )
        cases[unit] = opened.id
    engine_for(web_casetrail).catch_up()
    sweeper_of(web_casetrail).sweep()
    outbox.fill(web_casetrail.app, web_casetrail.db, time.time())

    def listed(token: str) -> dict[str, Any]:
        return dict(check(get(service, token, "/notifications", per_page=100), 200))

    district = listed(tokens.by_role["admin"])
    assert {item["case"] for item in district["items"]} == {cases[INSIDE]}
    assert district["total"] == sum(district["counts"].values()) == 1
    _, root_admin = web_casetrail.directory.create_user("省管理员", "admin", "320000")
    assert {item["case"] for item in listed(root_admin)["items"]} == set(cases.values())


# --- finding: unit codes can be squatted -------------------------------------------------


def test_a_unit_goes_only_under_the_parent_its_code_implies(
    tokens: Tokens, service: Service
) -> None:
    admin = tokens.by_role["admin"]
    # Another city's township code under the admin's district.
    squat = {"code": WUXI_TOWNSHIP, "name": "占位街道", "parent": HOME}
    assert error_code(post(service, admin, "/units", squat), 422) == "parent_not_implied"
    # Nor without a parent: it implies a Wuxi district, outside the admin's subtree.
    squat.pop("parent")
    assert error_code(post(service, admin, "/units", squat), 422) == "unknown_unit"
    # A county-length code under a township.
    county = {"code": "320199", "name": "伪区", "parent": INSIDE}
    assert error_code(post(service, admin, "/units", county), 422) == "parent_not_implied"
    codes = {u["code"] for u in check(get(service, admin, "/units"), 200)["units"]}
    assert WUXI_TOWNSHIP not in codes and "320199" not in codes
    # The code's own parent, inside the subtree, is fine.
    village = {"code": f"{INSIDE}777", "name": "新社区"}
    assert check(post(service, admin, "/units", village), 201)["parent"] == INSIDE


# --- finding: no user lifecycle; administration leaves no trace --------------------------


def test_a_disabled_user_and_a_rotated_away_token_are_refused_at_once_by_every_process(
    tokens: Tokens, service: Service
) -> None:
    admin = tokens.by_role["admin"]
    user = check(
        post(service, admin, "/users", {"name": "临时", "role": "caseworker", "unit": INSIDE}),
        201,
    )
    old = user["token"]
    assert check(get(service, old, "/event-types"), 200)
    check(post(service, admin, f"/users/{user['id']}/disable"), 200)
    # Many requests, so that both gunicorn workers answer some: none lets it in.
    codes = {error_code(get(service, old, "/event-types"), 401) for _ in range(20)}
    assert codes == {"user_disabled"}
    assert check(post(service, admin, f"/users/{user['id']}/enable"), 200)["active"] is True
    assert check(get(service, old, "/event-types"), 200)

    rotated = check(post(service, admin, f"/users/{user['id']}/token"), 201)
    assert rotated["token"] != old
    for _ in range(20):
        assert error_code(get(service, old, "/event-types"), 401) == "unauthorized"
        assert check(get(service, rotated["token"], "/event-types"), 200)


def test_admins_move_re_role_and_list_users_of_their_subtree_only(
    tokens: Tokens, service: Service
) -> None:
    admin = tokens.by_role["admin"]
    user = check(
        post(service, admin, "/users", {"name": "调动", "role": "caseworker", "unit": HOME}), 201
    )
    moved = check(
        patch(service, admin, f"/users/{user['id']}", {"unit": INSIDE, "role": "supervisor"}),
        200,
    )
    assert (moved["unit"], moved["role"]) == (INSIDE, "supervisor")
    for body in ({"unit": WUXI}, {"unit": "320000"}):
        response = patch(service, admin, f"/users/{user['id']}", body)
        assert error_code(response, 403) == "outside_jurisdiction"
    assert error_code(patch(service, admin, f"/users/{user['id']}", {}), 422) == "invalid_data"
    # A user outside the admin's subtree is not found (its id tells nothing).
    outsider = check(get(service, admin, "/users"), 200)["users"]
    ids = {u["id"] for u in outsider}
    assert user["id"] in ids
    for path in ("/disable", "/token"):
        assert error_code(post(service, admin, f"/users/u_0000000000000000{path}"), 404)
    # Paged: every user of the subtree once, `total` says how many.
    first = check(get(service, admin, "/users", per_page=2), 200)
    assert len(first["users"]) == 2 and first["links"]["next"]
    seen = []
    for page in range(1, first["total"] // 2 + 2):
        seen += check(get(service, admin, "/users", per_page=2, page=page), 200)["users"]
    assert len(seen) == first["total"] == len({u["id"] for u in seen})
    assert all(u["unit"] in (HOME, INSIDE) for u in seen)  # the sibling district's: not shown
    assert error_code(get(service, tokens.by_role["supervisor"], "/users"), 403)


def test_every_administration_act_is_in_the_audited_log_and_verify_catches_an_edit(
    web_casetrail: Casetrail, tokens: Tokens, service: Service
) -> None:
    admin = tokens.by_role["admin"]
    me = admin_id(service, tokens)
    check(post(service, admin, "/units", {"code": f"{INSIDE}778", "name": "审计社区"}), 201)
    user = check(
        post(service, admin, "/users", {"name": "留痕", "role": "caseworker", "unit": HOME}), 201
    )
    check(post(service, admin, f"/users/{user['id']}/disable"), 200)
    check(post(service, admin, f"/users/{user['id']}/enable"), 200)
    check(post(service, admin, f"/users/{user['id']}/token"), 201)
    check(patch(service, admin, f"/users/{user['id']}", {"role": "supervisor"}), 200)
    events = administration_events(service, tokens)
    acts = [e for e in events if e["type"] != "AdministrationOpened"]
    assert [e["type"] for e in acts] == [
        "UnitAdded",
        "UserCreated",
        "UserDisabled",
        "UserEnabled",
        "UserTokenRotated",
        "UserChanged",
    ]
    assert {(e["actor"], e["actor_role"], e["actor_unit"]) for e in acts} == {(me, "admin", HOME)}
    assert acts[-1]["data"] == {
        "user": user["id"],
        "before": {"unit": HOME, "role": "caseworker"},
        "after": {"unit": HOME, "role": "supervisor"},
    }
    assert user["token"] not in str(events)
    auditor = tokens.by_role["auditor"]
    assert check(get(service, auditor, "/audit/verify"), 200)["ok"] is True

    # Someone with database access makes the disabling look like another admin's act.
    disabled = next(e for e in acts if e["type"] == "UserDisabled")
    with web_casetrail.db.transaction() as cur:
        cur.execute(
            f"UPDATE {CHAIN_TABLE} SET actor = ? WHERE case_id = ? AND version = ?",
            ("u_someone_else", str(ADMINISTRATION_ID), disabled["version"]),
        )
    report = check(get(service, auditor, "/audit/verify"), 200)
    assert report["ok"] is False
    assert any(p.get("case") == str(ADMINISTRATION_ID) for p in report["problems"])


def test_an_expired_token_is_refused_with_token_expired(
    web_casetrail: Casetrail, tokens: Tokens, service: Service
) -> None:
    admin = tokens.by_role["admin"]
    user = check(
        post(service, admin, "/users", {"name": "过期", "role": "caseworker", "unit": HOME}), 201
    )
    assert check(get(service, user["token"], "/event-types"), 200)
    issued = (datetime.now(UTC) - timedelta(days=91)).isoformat()
    with web_casetrail.db.transaction() as cur:
        cur.execute("UPDATE users SET token_issued_at = ? WHERE id = ?", (issued, user["id"]))
    assert error_code(get(service, user["token"], "/event-types"), 401) == "token_expired"
    # A new token works again, for another 90 days.
    fresh = check(post(service, admin, f"/users/{user['id']}/token"), 201)["token"]
    assert check(get(service, fresh, "/event-types"), 200)


def test_token_expiry_zero_means_never(settings: Settings) -> None:
    from casetrail.bootstrap import bootstrap

    ct = bootstrap(settings.with_(token_ttl_days=0))
    try:
        user, token = ct.directory.create_user("长期", "caseworker", "320100")
        with ct.db.transaction() as cur:
            cur.execute(
                "UPDATE users SET token_issued_at = ? WHERE id = ?",
                ((datetime.now(UTC) - timedelta(days=3650)).isoformat(), user.id),
            )
        assert ct.directory.authenticate(token).id == user.id
    finally:
        ct.close()


# --- finding: no rate limit --------------------------------------------------------------


@pytest.fixture
def limited(settings: Settings, tokens: Tokens, tmp_path: Path) -> Iterator[Service]:
    """The service with a limit small enough to reach: 5 requests a minute per token."""
    served = Service(settings, tmp_path / "gunicorn.log")
    served.env["CASETRAIL_RATE_LIMIT"] = "5/minute"
    served.start()
    try:
        yield served
    finally:
        served.stop()


def test_a_token_over_its_rate_limit_gets_429_with_retry_after_in_every_process(
    tokens: Tokens, limited: Service
) -> None:
    worker = tokens.by_role["caseworker"]
    answers = [get(limited, worker, "/event-types") for _ in range(12)]
    # Counted in the shared Redis: 5 in all, whichever of the two workers answered.
    assert [a.status_code for a in answers].count(200) == 5
    refused = answers[-1]
    assert error_code(refused, 429) == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["details"]["retry_after"] == int(refused.headers["Retry-After"])
    # Another token has its own budget; the health check is never limited.
    assert check(get(limited, tokens.by_role["supervisor"], "/event-types"), 200)
    assert requests.get(f"{limited.url}/healthz", timeout=5).status_code == 200


# --- finding: data at rest is world-readable ---------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_and_its_files_are_the_service_users_alone(
    web_casetrail: Casetrail, settings: Settings, tokens: Tokens, service: Service
) -> None:
    case_id = web_casetrail.service.open_case(
        Actor("u_home", "caseworker", HOME), "dispute", HOME, "DisputeRegistered", registration()
    ).id
    data_dir = settings.data_dir
    assert mode(data_dir) == 0o700
    if settings.backend == "sqlite":
        for name in ("casetrail.sqlite", "casetrail.sqlite-wal"):
            assert mode(data_dir / name) == 0o600, name
    # An export made by the CLI is written owner-only.
    export = data_dir.parent / "export.json"
    subprocess.run(
        [sys.executable, "-c", CLI, "audit", "export", "--case", case_id, str(export)],
        cwd=ROOT,
        env=settings_env(settings),
        check=True,
        capture_output=True,
    )
    assert mode(export) == 0o600
    # A new store seals personal data under per-person keys, wrapped by an owner-only
    # master key; the service warns only of a store that has none (and names no one).
    assert mode(data_dir / "master.key") == 0o600
    log = service.log.read_text("utf-8", errors="replace")
    assert "stored unencrypted" not in log
    assert "王秀英" not in log
