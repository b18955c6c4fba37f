"""The web console (/console/) through Flask's test client: sign-in, CSRF, expiry and
sign-out; the API's jurisdiction and read-access log; nothing loaded from another host."""

from __future__ import annotations

import re
import time
from datetime import date

import pytest
from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import cst_date
from projections import engine_for
from tests.dispute_builders import event_data, registration
from tests.web.conftest import HOME, INSIDE, Tokens
from tests.web.test_kinds_e2e import reception

EXTERNAL = re.compile(r"""(?:https?:)?//(?!localhost[:/"'])([a-z0-9.-]+)""", re.IGNORECASE)


def opened(ct: Casetrail, unit: str = HOME) -> str:
    actor = Actor(user_id="u_setup", role="caseworker", unit=unit)
    return ct.service.open_case(actor, "dispute", unit, "DisputeRegistered", registration()).id


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: FlaskClient, token: str) -> str:
    form = client.get("/console/sign-in")
    answer = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": token})
    assert answer.status_code == 302, answer.text
    return csrf_of(client.get("/console/").text)


def external_urls(text: str) -> list[str]:
    """Every scheme-relative or http(s) URL whose host is not the request's (localhost)."""
    return [host for host in EXTERNAL.findall(text) if host not in ("localhost",)]


def test_the_root_leads_to_the_console_and_the_api_root_to_an_index(client: FlaskClient) -> None:
    assert client.get("/").headers["Location"].endswith("/console/")
    index = client.get("/api/v1")
    assert index.status_code == 200
    assert index.get_json()["links"]["docs"] == "/api/v1/docs"


def test_a_page_needs_a_sign_in(client: FlaskClient) -> None:
    answer = client.get("/console/inbox")
    assert answer.status_code == 302
    assert "/console/sign-in" in answer.headers["Location"]


def test_a_wrong_token_is_refused_and_a_sign_in_without_csrf_too(
    client: FlaskClient, tokens: Tokens
) -> None:
    form = client.get("/console/sign-in")
    wrong = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": "nope"})
    assert wrong.status_code == 401
    forged = client.post("/console/sign-in", data={"token": tokens.by_role["supervisor"]})
    assert forged.status_code == 400
    assert client.get("/console/").status_code == 302


def test_the_session_cookie_is_httponly_strict_and_holds_no_token(
    client: FlaskClient, tokens: Tokens
) -> None:
    form = client.get("/console/sign-in")
    token = tokens.by_role["supervisor"]
    answer = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": token})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert token not in cookie and "Secure" not in cookie  # plain http here
    https = client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form.text), "token": token},
        base_url="https://localhost",
    )
    assert "Secure" in https.headers["Set-Cookie"]


def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    client: FlaskClient, tokens: Tokens
) -> None:
    csrf = sign_in(client, tokens.by_role["supervisor"])
    assert client.post("/console/sign-out", data={"csrf": "forged"}).status_code == 400
    assert client.get("/console/").status_code == 200
    assert client.post("/console/sign-out", data={"csrf": csrf}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_a_session_expires(
    client: FlaskClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASETRAIL_CONSOLE_SESSION_HOURS", "0.0002")  # 0.72 s
    sign_in(client, tokens.by_role["supervisor"])
    time.sleep(1.0)
    assert client.get("/console/").status_code == 302


def test_a_disabled_user_is_signed_out(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    sign_in(client, tokens.by_role["caseworker"])
    user = web_casetrail.directory.user_by_token(tokens.by_role["caseworker"])
    assert user is not None
    admin = web_casetrail.directory.user_by_token(tokens.by_role["admin"])
    assert admin is not None
    web_casetrail.directory.set_active(user.id, False, by=admin.actor)
    assert client.get("/console/").status_code == 302


def test_no_page_of_the_console_or_the_docs_names_another_host(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    case_id = opened(web_casetrail)
    pages = ["/console/sign-in", "/api/v1/docs"]
    for path in pages:
        answer = client.get(path, follow_redirects=True)
        assert answer.status_code == 200, path
        assert external_urls(answer.text) == [], path
    sign_in(client, tokens.by_role["auditor"])
    for path in [
        "/console/",
        "/console/?kind=correction",
        "/console/inbox",
        f"/console/cases/{case_id}",
        f"/console/cases/{case_id}?version=1",
        "/console/audit?verify=store",
        f"/console/audit?verify=case&case={case_id}",
        "/console/static/console.css",
    ]:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert external_urls(answer.text) == [], path


def test_the_docs_page_loads_swagger_ui_from_this_app(client: FlaskClient) -> None:
    page = client.get("/api/v1/docs").text
    scripts = re.findall(r'src="([^"]+)"', page)
    assert scripts and all(src.startswith("/api/v1/swagger-ui/") for src in scripts)
    for src in scripts:
        assert client.get(src).status_code == 200


def test_a_caseworker_of_another_unit_cannot_open_the_case_page(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    case_id = opened(web_casetrail)
    sign_in(client, tokens.outside["caseworker"])
    answer = client.get(f"/console/cases/{case_id}")
    # Outside the reader's reach the case does not exist: as for an id that is no case.
    assert answer.status_code == 404
    assert client.get("/console/cases/not-a-case").status_code == 404


def test_the_case_page_shows_the_timeline_and_is_recorded_as_a_read(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    case_id = opened(web_casetrail)
    sign_in(client, tokens.by_role["auditor"])
    page = client.get(f"/console/cases/{case_id}").text
    assert "DisputeRegistered" in page and "已核验" in page
    auditor = web_casetrail.directory.user_by_token(tokens.by_role["auditor"])
    assert auditor is not None
    log = web_casetrail.reads.access_log(auditor.actor, case=case_id)
    assert any(item["user"] == auditor.id and item["granted"] for item in log)
    export = client.get(f"/console/cases/{case_id}/export")
    assert export.status_code == 200 and export.get_json()["case"] == case_id


def test_a_bad_period_is_a_clear_refusal(client: FlaskClient, tokens: Tokens) -> None:
    sign_in(client, tokens.by_role["supervisor"])
    answer = client.get("/console/?from=yesterday")
    assert answer.status_code == 422
    assert client.get("/console/?kind=nothing").status_code == 422
    assert client.get("/console/?unit=320104").status_code == 403


def test_a_minors_name_is_hidden_from_the_district_as_in_the_api(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    sixteen = date.today().replace(year=date.today().year - 16).isoformat()
    actor = Actor(user_id="u_street", role="caseworker", unit=INSIDE)
    case_id = web_casetrail.service.open_case(
        actor, "correction", INSIDE, "CorrectionSubjectReceived", reception("小明", sixteen)
    ).id
    csrf = sign_in(client, tokens.by_role["supervisor"])  # the district, above the case
    page = client.get(f"/console/cases/{case_id}")
    assert page.status_code == 200 and "CorrectionSubjectReceived" in page.text
    assert "小明" not in page.text
    client.post("/console/sign-out", data={"csrf": csrf})
    sign_in(client, tokens.by_role["auditor"])
    assert "小明" in client.get(f"/console/cases/{case_id}").text


def test_the_api_and_the_overview_serve_the_follow_up_figures(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    case_id = opened(web_casetrail)
    actor = Actor(user_id="u_setup", role="caseworker", unit=HOME)
    today = cst_date(web_casetrail.clock.now())
    for event_type in (
        "DisputeTriaged",
        "DisputeAssigned",
        "MediationSessionHeld",
        "AgreementReached",
        "DisputeClosed",
        "FollowUpVisited",
    ):
        web_casetrail.service.append(actor, case_id, event_type, event_data(event_type, today))
    engine_for(web_casetrail).catch_up()
    headers = {"Authorization": f"Bearer {tokens.by_role['supervisor']}"}
    answer = client.get("/api/v1/indicators?kind=dispute", headers=headers).get_json()
    assert answer["follow_up_rate"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    assert answer["performance_rate"]["numerator"] == 1 and answer["follow_up_visits"] == 1
    assert answer["judicial_confirmation_rate"] == {"value": 0.0, "numerator": 0, "denominator": 1}
    assert answer["success_rate"]["numerator"] == 1  # the fields of before are all still there
    sign_in(client, tokens.by_role["supervisor"])
    page = client.get("/console/?kind=dispute").text
    assert "回访率（follow_up_rate）" in page and "100.0%（1/1）" in page
    assert "平均满意度（1–5）（satisfaction_mean）" in page and "5.00（5/1）" in page
    assert "协议履行率（performance_rate）" in page
