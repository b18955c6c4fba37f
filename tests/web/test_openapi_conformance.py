"""schemathesis against the service's own OpenAPI document: a bounded number of generated
requests per operation, no 5xx, and every response as documented (status code, content
type, body schema)."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from casetrail.config import Settings
from tests.web.conftest import Tokens

EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # type: ignore[no-redef]
    """SQLite only: the conformance of the answers does not depend on the store."""
    return Settings(data_dir=tmp_path / "var")


@pytest.mark.parametrize("role", ["supervisor", "auditor", "admin"])
def test_the_service_answers_as_its_openapi_document_says(
    app: Flask, tokens: Tokens, role: str
) -> None:
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = tokens.headers(role)
    failures: dict[str, str] = {}
    for result in api.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            conforms()
        except Exception as failure:
            failures[operation.label] = str(failure)[:1500]
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
