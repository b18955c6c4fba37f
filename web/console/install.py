"""Wires the console into the app: its blueprints, Flask's signing key (one per data
directory), the session cookie's flags, and the locally served Swagger UI."""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle
from flask import Flask, Request, jsonify, redirect, request, send_from_directory, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from casetrail.bootstrap import Casetrail
from web.console.sessions import Sessions, load_secret_key, session_hours
from web.console.views import SESSIONS, bp, root

# Swagger UI's files, from the swagger-ui-bundle package: the docs page works offline.
SWAGGER_UI_URL = "/api/v1/swagger-ui/"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, opened only for the console's pages (the API reads none),
    and Secure whenever the request came over https (behind ProxyFix: X-Forwarded-Proto)."""

    def open_session(self, app: Flask, request: Request) -> Any:
        if not request.path.startswith("/console"):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure) or bool(app.config.get("SESSION_COOKIE_SECURE"))


def install(app: Flask, ct: Casetrail) -> None:
    app.secret_key = load_secret_key(ct.settings.data_dir)
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="casetrail_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/console",
        PERMANENT_SESSION_LIFETIME=int(session_hours() * 3600),
    )
    app.extensions[SESSIONS] = Sessions(ct)
    app.register_blueprint(bp)
    app.register_blueprint(root)


@root.get("/")
def home() -> Response:
    return redirect(url_for("console.overview"))


@root.get("/api/v1")
@root.get("/api/v1/")
def api_index() -> Response:
    """A small index of links, for a person or a client that starts at the API's root."""
    return jsonify(
        {
            "name": "casetrail",
            "version": "v1",
            "links": {
                "docs": "/api/v1/docs",
                "openapi": "/api/v1/openapi.json",
                "health": "/api/v1/healthz",
                "cases": "/api/v1/cases",
                "indicators": "/api/v1/indicators",
                "inbox": "/api/v1/inbox",
                "event_types": "/api/v1/event-types",
                "audit_verify": "/api/v1/audit/verify",
                "console": "/console/",
            },
        }
    )


@root.get("/api/v1/swagger-ui/<path:filename>")
def swagger_ui(filename: str) -> Response:
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
