"""Bearer tokens: who is calling, on every endpoint but the public ones.

Tokens are looked up by their hash (`Directory.authenticate`); the user is kept on
`flask.g` for the request. Role and jurisdiction checks live in the service (case
commands and reads) and in the blueprints (queries, administration).
"""

from __future__ import annotations

from flask import Flask, g, request

from casetrail.bootstrap import Casetrail
from casetrail.directory import User
from domain.case import Actor
from domain.errors import NotPermitted
from web.errors import ApiError

# Endpoints anyone may call: the health check and the API's own description.
PUBLIC_ENDPOINTS = frozenset(
    {
        "meta.healthz",
        "healthz",
        "openapi_json",
        "docs",
        "api-docs.openapi_json",
        "api-docs.openapi_swagger_ui",
        "static",
        "metrics",  # its own token, CASETRAIL_METRICS_TOKEN (web/metrics.py)
    }
)
MAX_TOKEN_LENGTH = 200
# The console (web.console) signs its users in with a session of its own; `/`, `/api/v1`
# and the Swagger UI files are public.
SESSION_BLUEPRINTS = frozenset({"console", "console_root"})


def current_user() -> User:
    user = g.get("user")
    if user is None:
        raise ApiError(401, "This endpoint needs a bearer token.")
    return user


def current_actor() -> Actor:
    return current_user().actor


def require_role(*roles: str) -> User:
    user = current_user()
    if user.role not in roles:
        raise NotPermitted(
            f"A user with the role '{user.role}' may not do this.", code="role_not_permitted"
        )
    return user


def install(app: Flask, casetrail: Casetrail) -> None:
    @app.before_request
    def authenticate() -> None:
        # Unknown addresses are answered 404/405 by routing, without asking for a token.
        if request.url_rule is None or request.endpoint in PUBLIC_ENDPOINTS:
            return
        if request.blueprint in SESSION_BLUEPRINTS:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "This endpoint needs 'Authorization: Bearer TOKEN'.")
        if len(token) > MAX_TOKEN_LENGTH:
            raise ApiError(401, "The bearer token is not valid.")
        # Looked up on every request: a disabled user or a rotated-away token is refused
        # by every process from the commit on; an expired one is 401 `token_expired`.
        g.user = casetrail.directory.authenticate(token)
