"""Refusals in the users' language: on main every message was English whatever the
request asked for; now `Accept-Language: zh` (and `LANG=zh_CN.UTF-8` for the CLI) gives
simplified Chinese, English stays the default, and the codes never change."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from casetrail.config import Settings
from tests.web.conftest import ROOT, Tokens, settings_env
from web.errors import HTTP_CODES
from web.messages import MESSAGES_ZH

CASETRAIL = str(Path(sys.executable).parent / "casetrail")

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

SOURCES = ("domain", "casetrail", "web", "projections", "cli", "workers")
# `code="x"` passed to a refusal, `code = "x"` on an error class, and the literal codes
# given to the one error shape (`error_response(429, "rate_limited", …)`).
CODE_PATTERNS = (
    re.compile(r'\bcode\s*=\s*"([a-z_]+)"'),
    re.compile(r'error_response\(\s*\d+,\s*"([a-z_]+)"'),
)


def raised_codes() -> set[str]:
    codes = set(HTTP_CODES.values())
    for source in SOURCES:
        for path in (ROOT / source).rglob("*.py"):
            text = path.read_text("utf-8")
            for pattern in CODE_PATTERNS:
                codes.update(pattern.findall(text))
    return codes


def chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def test_every_code_raised_anywhere_has_a_chinese_message(settings: Settings) -> None:
    codes = raised_codes()
    assert len(codes) > 80  # the grep finds them (a broken pattern would find none)
    missing = sorted(code for code in codes if code not in MESSAGES_ZH)
    assert missing == []
    assert all(chinese(message) for message in MESSAGES_ZH.values())


def test_a_refusal_is_english_by_default_and_chinese_when_the_request_asks(
    client: FlaskClient, tokens: Tokens
) -> None:
    path = "/api/v1/cases/00000000-0000-4000-8000-000000000000"
    english = client.get(path, headers=tokens.headers("caseworker"))
    assert english.status_code == 404
    assert english.json["error"]["code"] == "case_not_found"
    assert not chinese(english.json["error"]["message"])
    for language in ("zh", "zh-CN", "zh-Hans", "zh-CN,zh;q=0.9,en;q=0.8"):
        answer = client.get(
            path, headers=tokens.headers("caseworker", **{"Accept-Language": language})
        )
        assert answer.status_code == 404
        assert answer.json["error"]["code"] == "case_not_found"
        assert answer.json["error"]["message"] == MESSAGES_ZH["case_not_found"]
    preferred_english = client.get(
        path, headers=tokens.headers("caseworker", **{"Accept-Language": "en,zh;q=0.5"})
    )
    assert not chinese(preferred_english.json["error"]["message"])


def test_http_and_schema_refusals_are_translated_and_keep_their_details(
    client: FlaskClient, tokens: Tokens
) -> None:
    zh = {"Accept-Language": "zh-CN"}
    unauthorized = client.get("/api/v1/cases", headers=zh)
    assert unauthorized.status_code == 401
    assert unauthorized.json["error"]["code"] == "unauthorized"
    assert unauthorized.json["error"]["message"] == MESSAGES_ZH["unauthorized"]
    invalid = client.post(
        "/api/v1/cases", json={"kind": 7}, headers=tokens.headers("caseworker", **zh)
    )
    assert invalid.status_code == 422
    body = invalid.json["error"]
    assert chinese(body["message"])
    assert "kind" in body["details"]  # field names stay as they are


def test_a_cli_refusal_is_chinese_under_a_chinese_locale(
    settings: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    env = settings_env(settings)
    command = [CASETRAIL, "audit", "verify", "--data-dir", str(missing)]
    english = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert english.returncode == 2
    assert "error (no_store): " in english.stderr
    assert not chinese(english.stderr)
    for variable, value in (("LANG", "zh_CN.UTF-8"), ("CASETRAIL_LANG", "zh")):
        answer = subprocess.run(
            command, cwd=ROOT, env={**env, variable: value}, capture_output=True, text=True
        )
        assert answer.returncode == 2
        assert f"error (no_store): {MESSAGES_ZH['no_store']}" in answer.stderr
        assert str(missing) in answer.stderr  # the specifics stay
