"""The Flask app factory: one casetrail, one Api, one blueprint per audience.

`create_app()` with no argument builds casetrail from the environment (the one
composition root); gunicorn calls it once per worker (see the Procfile). A worker that
boots while its store is out of reach (PostgreSQL cut off or restarting) does not fail,
which would stop gunicorn or leave no worker to answer: it answers 503
`storage_unavailable` and builds casetrail on a request once the store is back
(`WaitingForStore`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, overload

from flask import Flask, Response, redirect, url_for
from flask_smorest import Api

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from domain.errors import CasetrailError
from store.postgres import DatabaseUnavailable
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


# A worker waiting for its store tries to build casetrail at most this often.
STORE_RETRY_SECONDS = 1.0

log = logging.getLogger("casetrail.web")


@overload
def create_app(casetrail: Casetrail) -> Flask: ...
@overload
def create_app(casetrail: None = None) -> Flask | WaitingForStore: ...
def create_app(casetrail: Casetrail | None = None) -> Flask | WaitingForStore:
    """The app on `casetrail`; without it (gunicorn's workers), on a casetrail built from
    the environment, or a `WaitingForStore` while the store cannot be reached."""
    if casetrail is not None:
        return wire_app(casetrail, shared=False)
    try:
        settings = Settings.from_env()
    except CasetrailError as error:
        exit_with(error)
    waiting = WaitingForStore(lambda: build_app(settings))
    try:
        app = waiting.try_build()
    except CasetrailError as error:  # not the store's absence: a setting, say
        exit_with(error)
    return app if app is not None else waiting


def build_app(settings: Settings) -> Flask:
    """The service's app: its own casetrail, whose appends wake the projection workers
    (through Redis), with rate limits shared through Redis."""
    casetrail = bootstrap(settings, on_append=ProjectionSignal(settings))
    return wire_app(casetrail, shared=True)


def exit_with(error: CasetrailError) -> Any:
    for line in error.message.splitlines():
        print(f"error ({error.code}): {line}", file=sys.stderr)
    sys.exit(2)


def store_out_of_reach(error: BaseException) -> bool:
    return isinstance(error, DatabaseUnavailable) or errors.storage_unavailable(error)


class WaitingForStore:
    """A worker's WSGI app while its store is out of reach: 503 `storage_unavailable`
    (with `Retry-After`) at once, and on a request at most every `STORE_RETRY_SECONDS`
    (one at a time) another try at building the real app, which then serves every request.

    Any other failure to build is raised (at boot, a wrong setting stops the worker with
    its one line: `create_app`)."""

    def __init__(self, build: Callable[[], Flask]) -> None:
        self.build = build
        self.app: Flask | None = None
        self.building = threading.Lock()
        self.next_try = 0.0
        self.failures = 0
        self.refusal = Flask("casetrail-waiting")
        self.refusal.json.ensure_ascii = False  # type: ignore[attr-defined]
        self.refusal.before_request(errors.unavailable_response)
        self.refusal.after_request(no_store)

    def try_build(self) -> Flask | None:
        if self.app is not None:
            return self.app
        if not self.building.acquire(blocking=False):
            return None  # another thread is trying
        try:
            if self.app is None and time.monotonic() >= self.next_try:
                self.next_try = time.monotonic() + STORE_RETRY_SECONDS
                try:
                    self.app = self.build()
                except Exception as error:
                    if not store_out_of_reach(error):
                        raise
                    self._waiting(error)
                else:
                    if self.failures:
                        log.info("the store is back after %d tries: serving", self.failures)
            return self.app
        finally:
            self.building.release()

    def _waiting(self, error: BaseException) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 60 == 0:  # not a line a second
            log.warning(
                "the store is out of reach (%s, %d tries); answering 503 until it is back",
                getattr(error, "code", type(error).__name__),
                self.failures,
            )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        app = self.try_build() or self.refusal
        result: Iterable[bytes] = app(environ, start_response)
        return result


def wire_app(casetrail: Casetrail, *, shared: bool) -> Flask:
    # The service's processes (gunicorn) share rate limits through Redis (`shared`); an
    # app handed its casetrail (tests, benchmarks) counts them in-process.
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
