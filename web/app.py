"""The Flask app factory: one casetrail, one Api, one blueprint per audience.

`create_app()` with no argument builds casetrail from the environment (the one
composition root); gunicorn calls it once per worker (see the Procfile).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from flask import Flask, Response, redirect, url_for
from flask_smorest import Api

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.errors import CasetrailError
from web import (
    audit,
    auth,
    commands,
    deadlines,
    errors,
    limits,
    meta,
    metrics,
    people,
    queries,
    registers,
)
from web.console.install import SWAGGER_UI_URL
from web.console.install import install as install_console
from web.context import EXTENSION
from web.schemas import ErrorResponse, canonical_case_id
from workers.signals import ProjectionSignal

# Bodies above this are refused with 413; the largest legitimate command is a few kB.
MAX_CONTENT_LENGTH = 256 * 1024
API_PREFIX = "/api/v1"


class CasetrailApi(Api):  # type: ignore[misc]
    """flask-smorest's Api with our error shape, documented and handled in one place."""

    ERROR_SCHEMA = ErrorResponse

    def _register_error_handlers(self) -> None:
        errors.register(self._app)


def create_app(casetrail: Casetrail | None = None) -> Flask:
    # The service's processes (gunicorn) build their own casetrail and share rate limits
    # through Redis; an app handed one (tests, benchmarks) counts them in-process.
    shared = casetrail is None
    if casetrail is None:
        try:
            # Each accepted append wakes the projection workers (through Redis).
            settings = Settings.from_env()
            casetrail = bootstrap(settings, on_append=ProjectionSignal(settings))
        except CasetrailError as error:  # bad settings, an unreachable database
            for line in error.message.splitlines():
                print(f"error ({error.code}): {line}", file=sys.stderr)
            sys.exit(2)
    app = Flask("casetrail")
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        API_TITLE="casetrail",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Served by this app from the swagger-ui-bundle package: the docs work offline.
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_URL,
        API_SPEC_OPTIONS={
            "info": {
                "description": "Event-sourced case tracking with an audit trail: disputes "
                "(大調解), resettlement (安置幫教) and community correction (社區矯正)."
            },
            "servers": [{"url": "/"}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        },
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = casetrail
    api = CasetrailApi(app)
    blueprints = (
        commands.blp,
        queries.blp,
        audit.blp,
        meta.blp,
        deadlines.blp,
        people.blp,
        registers.blp,
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    meta.document_event_data(api.spec)
    metrics.install(app, casetrail)
    limits.install(app, casetrail.settings, shared=shared)
    auth.install(app, casetrail)
    add_root_aliases(app, api)
    install_console(app, casetrail)
    app.url_value_preprocessor(canonical_ids)
    app.after_request(no_store)
    logging.getLogger("casetrail").setLevel(logging.INFO)
    return app


def canonical_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Case ids in paths in their canonical form, before any view (or idempotency hash,
    or access record) sees them: `/cases/ABC…/events` is the same case as `/cases/abc…`."""
    if values and isinstance(values.get("case_id"), str):
        values["case_id"] = canonical_case_id(values["case_id"])


def no_store(response: Response) -> Response:
    """Answers name people: no cache keeps them, no browser reads them as another type."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def add_root_aliases(app: Flask, api: Api) -> None:
    """`/healthz`, `/openapi.json` and `/docs` at the root, as API.md names them."""

    @app.get("/healthz")
    def healthz() -> Response:
        return meta.health()

    @app.get("/openapi.json")
    def openapi_json() -> Any:
        return api.spec.to_dict()

    @app.get("/docs")
    def docs() -> Any:
        return redirect(url_for("api-docs.openapi_swagger_ui"))
