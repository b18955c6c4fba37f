"""A fault on our side answers 500 in the one error shape and logs where, never what."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail
from tests.web.conftest import Tokens


def test_a_fault_answers_500_in_the_error_shape_without_logging_personal_data(
    client: FlaskClient,
    tokens: Tokens,
    web_casetrail: Casetrail,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("王秀英 32010219800101123X")

    monkeypatch.setattr(web_casetrail.reads, "history", broken)
    with caplog.at_level(logging.ERROR):
        answer = client.get("/api/v1/cases/x/history", headers=tokens.headers("auditor"))
    assert answer.status_code == 500
    assert answer.get_json()["error"]["code"] == "internal_error"
    assert "KeyError" in caplog.text and "王秀英" not in caplog.text
    assert "32010219800101123X" not in caplog.text
