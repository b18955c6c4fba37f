"""Queries on the read models (caseworkers, supervisors and auditors, each within their unit's subtree).

Read models are eventually consistent; `?min_position=N` (a command's `position`)
waits briefly until they include it. A caseworker or supervisor queries their own unit
subtree (by default their own unit); a unit outside it is 403 (projections.queries
decides who sees what; this module only speaks HTTP).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint

from domain.roles import OPERATIONS_ROLES, QUERY_ROLES
from projections.queries import ReadModels
from web.auth import require_role
from web.context import casetrail
from web.errors import refusals
from web.schemas import (
    CaseListQuery,
    CaseListResponse,
    IndicatorsQuery,
    ProjectionsResponse,
    ReadYourWrites,
)

blp = Blueprint(
    "queries",
    __name__,
    url_prefix="/api/v1",
    description="Queries on the read models: case lists, indicators, projection lag.",
)

READ_MODELS = "casetrail.read_models"
# How long `min_position` may hold a request before answering from what there is.
MIN_POSITION_WAIT_SECONDS = 5.0


def read_models() -> ReadModels:
    """The read models, built once per app (their tables are set up on first use)."""
    models = current_app.extensions.get(READ_MODELS)
    if models is None:
        models = current_app.extensions.setdefault(READ_MODELS, ReadModels(casetrail()))
    return models


def wait_for(models: ReadModels, args: dict[str, Any]) -> dict[str, str]:
    """Waits for `min_position`; says in a header whether the read models got there."""
    wanted = args.pop("min_position", None)
    if wanted is None:
        return {}
    # A position past the head was never handed out: there is nothing to wait for.
    timeout = MIN_POSITION_WAIT_SECONDS if wanted <= casetrail().reads.head_position() else 0
    reached = models.wait_for(wanted, timeout)
    return {"Read-Models-Reached": "true" if reached else "false"}


def with_headers(response: Response, headers: dict[str, str]) -> Response:
    for name, value in headers.items():
        response.headers[name] = value
    return response


def page_link(page: int) -> str:
    args = {key: value for key, value in request.args.items(multi=True) if key != "page"}
    args["page"] = str(page)
    return f"{request.path}?{urlencode(args)}"


def links(page: int, per_page: int, total: int) -> dict[str, Any]:
    """A paged answer's links: this page, the next (if any) and the previous."""
    return {
        "self": page_link(page),
        "next": page_link(page + 1) if page * per_page < total else None,
        "prev": page_link(page - 1) if page > 1 else None,
    }


@blp.route("/cases", methods=["GET"])
@blp.arguments(CaseListQuery(), location="query")
@blp.response(200, CaseListResponse)
@refusals(blp, 401, 403, 422)
def list_cases(args: dict[str, Any]) -> Response:
    """Cases from the read models, filtered and paged, within the caller's jurisdiction."""
    user = require_role(*QUERY_ROLES)
    models = read_models()
    headers = wait_for(models, args)
    result = models.cases_for(user.actor, **args)
    page, per_page, total = result["page"], args["per_page"], result["total"]
    body = {**result, "per_page": per_page, "links": links(page, per_page, total)}
    return with_headers(jsonify(body), headers)


@blp.route("/indicators", methods=["GET"])
@blp.arguments(IndicatorsQuery(), location="query")
@blp.response(200, description="The indicators of DOMAIN.md for the unit subtree and period.")
@refusals(blp, 401, 403, 422)
def indicators(args: dict[str, Any]) -> Response:
    """Indicators for a kind, unit subtree and period (rates with numerator and denominator)."""
    user = require_role(*QUERY_ROLES)
    models = read_models()
    headers = wait_for(models, args)
    result = models.indicators_for(
        user.actor,
        kind=args["kind"],
        unit=args.get("unit"),
        from_=args.get("from_"),
        to=args.get("to"),
    )
    return with_headers(jsonify(result), headers)


@blp.route("/projections", methods=["GET"])
@blp.arguments(ReadYourWrites(), location="query")
@blp.response(200, ProjectionsResponse)
@refusals(blp, 401, 403, 422)
def projections(args: dict[str, Any]) -> Response:
    """Each projection's processed position, the head position and the lag."""
    require_role(*OPERATIONS_ROLES)
    models = read_models()
    headers = wait_for(models, args)
    body = {"head": casetrail().reads.head_position(), "projections": models.status()}
    return with_headers(jsonify(body), headers)
