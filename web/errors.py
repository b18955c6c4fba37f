"""The one error handler: every refusal becomes `{"error": {"code", "message", "details"}}`.

Domain and service errors carry their own status and code; HTTP errors raised by Flask,
werkzeug and flask-smorest/webargs (400 malformed JSON, 404, 405, 413, 422 schema) are
mapped onto the same shape. Bad input never becomes a 500.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from domain.errors import CasetrailError
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
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_data",
    429: "too_many_requests",
    503: "unavailable",
}

MESSAGES = {
    400: "The request body is not valid JSON.",
    404: "There is nothing at this address.",
    413: "The request body is too large.",
    422: "The request does not match its schema.",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
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


def handle_unexpected(error: Exception) -> Response:
    original = getattr(error, "original_exception", None) or error
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
