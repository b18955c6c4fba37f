"""The one error handler: every refusal becomes `{"error": {"code", "message", "details"}}`.

Domain and service errors carry their own status and code; HTTP errors raised by Flask,
werkzeug and flask-smorest/webargs (400 malformed JSON, 404, 405, 413, 422 schema) are
mapped onto the same shape. Bad input never becomes a 500.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import traceback
from collections.abc import Iterator
from typing import Any

import psycopg
from flask import Flask, Response, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from domain.errors import CasetrailError
from web.messages import CHINESE, localized
from web.schemas import ErrorResponse

log = logging.getLogger("casetrail.web")

# Stable codes for the HTTP-level refusals.
HTTP_CODES = {
    400: "malformed_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    408: "request_timeout",
    413: "body_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "invalid_data",
    429: "too_many_requests",
    431: "headers_too_large",
    503: "unavailable",
}

MESSAGES = {
    400: "The request body is not valid JSON.",
    404: "There is nothing at this address.",
    413: "The request body is too large.",
    422: "The request does not match its schema.",
}


def request_language() -> str:
    """`zh` when the request prefers Chinese (`Accept-Language: zh`, `zh-CN`, `zh-Hans`);
    English otherwise, and by default."""
    if not has_request_context():
        return "en"
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-Hans"], default="en")
    return CHINESE if best.lower().startswith("zh") else "en"


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """The one error shape; the message in the request's language (the code never changes)."""
    message = localized(code, message, request_language())
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


class ApiError(CasetrailError):
    """A refusal raised by the web layer itself (authentication, limits)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code or HTTP_CODES.get(status, "error"), details=details)
        self.status = status


def handle_casetrail_error(error: CasetrailError) -> Response:
    response = error_response(error.status, error.code, error.message, error.details)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="casetrail"'
    return response


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return handle_unexpected(error)
    data = getattr(error, "data", None) or {}
    # webargs puts schema errors under their location: {"json": {field: [...]}}.
    messages = data.get("errors") or data.get("messages") or {}
    details = flatten_locations(messages) if isinstance(messages, dict) else {"request": messages}
    message = data.get("message") or MESSAGES.get(status) or error.description or error.name
    if status == 422 and details:
        message = "The request does not match its schema: " + ", ".join(sorted(details))
    response = error_response(status, HTTP_CODES.get(status, "error"), str(message), details)
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


# While the store cannot write (a full disk) or cannot be reached (PostgreSQL down or
# restarting), nothing is lost and nothing was done: the client may retry after this.
RETRY_AFTER_SECONDS = 5
# SQLite's words for a store that cannot take a write now (SQLITE_FULL, SQLITE_IOERR,
# SQLITE_CANTOPEN, SQLITE_BUSY); "no such table" and the like stay faults of ours.
SQLITE_UNAVAILABLE = (
    "database or disk is full",
    "disk i/o error",
    "unable to open database file",
    "database is locked",
)
OS_UNAVAILABLE = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and the errors it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def storage_unavailable(error: BaseException) -> bool:
    """Whether the store, not the request or our code, is why `error` happened."""
    for cause in causes(error):
        if isinstance(cause, sqlite3.OperationalError):
            if any(words in str(cause).lower() for words in SQLITE_UNAVAILABLE):
                return True
        elif isinstance(cause, (psycopg.OperationalError, psycopg.InterfaceError)):
            # Connection lost or refused, no pooled connection in time (PoolTimeout),
            # disk full, the server shutting down.
            return True
        elif isinstance(cause, OSError) and cause.errno in OS_UNAVAILABLE:
            return True
    return False


def unavailable_response() -> Response:
    """503 `storage_unavailable` with `Retry-After`: nothing was done, retry later."""
    response = error_response(
        503,
        "storage_unavailable",
        "The case store cannot be written or reached just now; nothing was changed. Retry later.",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handle_unexpected(error: Exception) -> Response:
    original = getattr(error, "original_exception", None) or error
    if storage_unavailable(original):
        log.warning("storage unavailable: %s", type(original).__name__)
        return unavailable_response()
    # The type and where, never the message: it may quote personal data from the request.
    frames = traceback.extract_tb(original.__traceback__)
    where = "\n".join(f"  {frame.filename}:{frame.lineno} in {frame.name}" for frame in frames)
    log.error("unexpected %s at\n%s", type(original).__name__, where)
    return error_response(500, "internal_error", "Something went wrong on our side.")


def flatten_locations(messages: dict[str, Any]) -> dict[str, Any]:
    """`{"json": {"kind": [...]}, "query": {...}}` → `{"kind": [...], ...}`."""
    details: dict[str, Any] = {}
    for location, fields in messages.items():
        if location in ("json", "query", "querystring", "headers", "view_args", "files", "form"):
            if isinstance(fields, dict):
                details.update(fields)
            else:
                details[location] = fields
        else:
            details[location] = fields
    return details


def register(app: Flask) -> None:
    app.register_error_handler(CasetrailError, handle_casetrail_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)


def refusals(blueprint: Any, *statuses: int) -> Any:
    """Documents the error responses an endpoint may give, all in the one error shape."""

    def document(view: Any) -> Any:
        documented = view
        for status in statuses:
            documented = blueprint.alt_response(
                status,
                schema=ErrorResponse,
                description=HTTP_CODES.get(status, "error").replace("_", " "),
            )(documented)
        # Each alt_response wraps the view in a call that only passes through (one per
        # status, on every request); the view keeps their documentation and runs bare.
        view._apidoc = documented._apidoc
        return view

    return document
