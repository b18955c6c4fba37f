"""Queries (supervisors, caseworkers for their own subtree, auditors anywhere): read models.

Read models are eventually consistent; `?min_position=N` (a command's `position`)
waits briefly until they include it. A caseworker or supervisor queries their own unit
subtree (by default their own unit); a unit outside it is 403.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint

from casetrail.directory import User
from casetrail.service import redact_minor
from domain.errors import NotPermitted
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

QUERY_ROLES = ("caseworker", "supervisor", "auditor")
READ_MODELS = "casetrail.read_models"
# How long `min_position` may hold a request before answering from what there is.
MIN_POSITION_WAIT_SECONDS = 5.0


def read_models() -> ReadModels:
    """The read models, built once per app (their tables are set up on first use)."""
    models = current_app.extensions.get(READ_MODELS)
    if models is None:
        models = current_app.extensions.setdefault(READ_MODELS, ReadModels(casetrail()))
    return models


def jurisdiction_unit(user: User, unit: str | None) -> str | None:
    """The unit subtree a query covers: the caller's own by default, never outside it."""
    if unit is not None:
        casetrail().directory.require_unit(unit)
    if unit is None:
        return user.unit
    if not casetrail().directory.may_act(user.unit, unit):
        raise NotPermitted(
            "This unit is outside your unit's jurisdiction.", code="outside_jurisdiction"
        )
    return unit


def wait_for(models: ReadModels, args: dict[str, Any]) -> dict[str, str]:
    """Waits for `min_position`; says in a header whether the read models got there."""
    wanted = args.pop("min_position", None)
    if wanted is None:
        return {}
    # A position past the head was never handed out: there is nothing to wait for.
    timeout = MIN_POSITION_WAIT_SECONDS if wanted <= casetrail().service.head_position() else 0
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


@blp.route("/cases", methods=["GET"])
@blp.arguments(CaseListQuery(), location="query")
@blp.response(200, CaseListResponse)
@refusals(blp, 401, 403, 422)
def list_cases(args: dict[str, Any]) -> Response:
    """Cases from the read models, filtered and paged, within the caller's jurisdiction."""
    user = require_role(*QUERY_ROLES)
    models = read_models()
    headers = wait_for(models, args)
    args["unit"] = jurisdiction_unit(user, args.get("unit"))
    # A minor's case is found by name only by those who may see who it is (the case's own
    # unit and auditors, as casetrail.service.sees_minor_identity).
    minors_of = None if user.actor.role == "auditor" else user.actor.unit
    result = models.list_cases(**args, minors_of=minors_of)
    page, per_page, total = int(result["page"]), args["per_page"], int(result["total"])
    items = []
    for item in result["items"]:
        shown = redact_minor(user.actor, item)
        if shown is not item and args.get("q") is not None:
            # A search must not tell whose case it is when the name is confidential.
            total -= 1
            continue
        items.append(shown)
    # The read-access log (casetrail.audit): the cases whose names this page shows.
    shown_names = [str(item["id"]) for item in items if item.get("names")]
    casetrail().service.record_reads(user.actor, shown_names, "list")
    links = {
        "self": page_link(page),
        "next": page_link(page + 1) if page * per_page < total else None,
        "prev": page_link(page - 1) if page > 1 else None,
    }
    body = {"items": items, "total": total, "page": page, "per_page": per_page, "links": links}
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
    unit = jurisdiction_unit(user, args.get("unit"))
    result = models.indicators(
        kind=args["kind"], unit=unit, from_=args.get("from_"), to=args.get("to")
    )
    return with_headers(jsonify(result), headers)


@blp.route("/projections", methods=["GET"])
@blp.arguments(ReadYourWrites(), location="query")
@blp.response(200, ProjectionsResponse)
@refusals(blp, 401, 403, 422)
def projections(args: dict[str, Any]) -> Response:
    """Each projection's processed position, the head position and the lag."""
    require_role("supervisor", "auditor", "admin")
    models = read_models()
    headers = wait_for(models, args)
    body = {"head": casetrail().service.head_position(), "projections": models.status()}
    return with_headers(jsonify(body), headers)
