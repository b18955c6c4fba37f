"""Audit reads (auditors anywhere; the case's own unit chain for the case endpoints).

These read the event streams themselves, never the read models. Other audit routes
(verification, checkpoints) join this blueprint: add a view to `blp`.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from flask_smorest import Blueprint

from web.auth import current_actor
from web.context import casetrail
from web.errors import refusals
from web.schemas import (
    CaseStateQuery,
    CaseStateResponse,
    FeedQuery,
    FeedResponse,
    HistoryResponse,
)

blp = Blueprint(
    "audit",
    __name__,
    url_prefix="/api/v1",
    description="Audit: case state at any version or moment, case history, the global feed.",
)


@blp.route("/cases/<string:case_id>", methods=["GET"])
@blp.arguments(CaseStateQuery(), location="query")
@blp.response(200, CaseStateResponse)
@refusals(blp, 401, 403, 404, 422)
def case_state(args: dict[str, Any], case_id: str) -> Response:
    """The case's state from its stream, now or as it was at a version (`as_of_version`) or moment (`as_of`)."""
    state = casetrail().reads.case_state(
        current_actor(),
        case_id,
        as_of_version=args.get("as_of_version"),
        as_of=args.get("as_of"),
    )
    return jsonify(state)


@blp.route("/cases/<string:case_id>/history", methods=["GET"])
@blp.response(200, HistoryResponse)
@refusals(blp, 401, 403, 404)
def history(case_id: str) -> Response:
    """Every event of the case in order, with who recorded it, when, and its chain hash."""
    events = casetrail().reads.history(current_actor(), case_id)
    return jsonify({"events": events})


@blp.route("/audit/events", methods=["GET"])
@blp.arguments(FeedQuery(), location="query")
@blp.response(200, FeedResponse)
@refusals(blp, 401, 403, 422)
def feed(args: dict[str, Any]) -> Response:
    """The global event feed in append order, after a position (auditors)."""
    after, limit = args["after"], args["limit"]
    reads = casetrail().reads
    events = reads.feed(current_actor(), after, limit)
    next_after = events[-1]["position"] if events else after
    head = reads.head_position()
    links = {
        "self": f"{request.path}?after={after}&limit={limit}",
        "next": f"{request.path}?after={next_after}&limit={limit}" if next_after < head else None,
        "prev": None,
    }
    return jsonify(
        {"events": events, "after": after, "next_after": next_after, "head": head, "links": links}
    )


# The audit trail's routes (verification, checkpoints, proofs, access log) join `blp`.
from web import audit_trail  # noqa: E402, F401
