"""Deadlines over HTTP: a caseworker's or supervisor's inbox (`GET /inbox`), the recorded
warnings and breaches for supervisors (`GET /deadlines`, where 督辦 starts), and their
webhook notifications for admins (`GET /notifications`, projections.outbox)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify
from flask_smorest import Blueprint

from domain.roles import ADMIN, AUDITOR, SUPERVISOR
from projections import outbox
from projections.inbox_query import INBOX_ROLES, inbox_for
from web.auth import require_role
from web.context import casetrail
from web.deadline_schemas import (
    DeadlinesQuery,
    DeadlinesResponse,
    InboxQuery,
    InboxResponse,
    NotificationsQuery,
    NotificationsResponse,
)
from web.errors import refusals
from web.queries import links, read_models, wait_for, with_headers
from workers.sweeps import sweeper_of

blp = Blueprint(
    "deadlines",
    __name__,
    url_prefix="/api/v1",
    description="Deadlines: what is due (the inbox) and what was warned of or breached.",
)


@blp.route("/inbox", methods=["GET"])
@blp.arguments(InboxQuery(), location="query")
@blp.response(200, InboxResponse)
@refusals(blp, 401, 403, 422)
def inbox(args: dict[str, Any]) -> Response:
    """What the caller's unit must act on (a supervisor's: their subtree's), due soon or
    overdue, most urgent first, with the counts by state."""
    user = require_role(*INBOX_ROLES)
    models = read_models()
    headers = wait_for(models, args)
    result = inbox_for(models, user.actor, **args)
    body = {
        **result,
        "per_page": args["per_page"],
        "links": links(result["page"], args["per_page"], result["total"]),
    }
    return with_headers(jsonify(body), headers)


@blp.route("/deadlines", methods=["GET"])
@blp.arguments(DeadlinesQuery(), location="query")
@blp.response(200, DeadlinesResponse)
@refusals(blp, 401, 403, 422)
def deadlines(args: dict[str, Any]) -> Response:
    """The recorded warnings and breaches of the caller's subtree (an auditor's: any unit),
    newest first, each with its resolution once it was met, extended or made moot."""
    user = require_role(SUPERVISOR, AUDITOR)
    ct = casetrail()
    scope = read_models().jurisdiction_unit(user.actor, args.get("unit"))
    within = None if scope is None else (lambda code: ct.directory.may_act(scope, code))
    items = sweeper_of(ct).records(
        within=within,
        kind=args.get("kind"),
        state=args.get("state"),
        from_=args.get("from_"),
        to=args.get("to"),
    )
    page, per_page = args["page"], args["per_page"]
    body = {
        "items": items[(page - 1) * per_page : page * per_page],
        "total": len(items),
        "page": page,
        "per_page": per_page,
        "links": links(page, per_page, len(items)),
    }
    return jsonify(body)


def moment(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(float(seconds), UTC).isoformat()


@blp.route("/notifications", methods=["GET"])
@blp.arguments(NotificationsQuery(), location="query")
@blp.response(200, NotificationsResponse)
@refusals(blp, 401, 403, 422)
def notifications(args: dict[str, Any]) -> Response:
    """The webhook outbox of the admin's subtree: each recorded warning and breach with its delivery id,
    `pending` (with its next attempt), `delivered` or `failed`, newest record first."""
    admin = require_role(ADMIN)
    ct = casetrail()
    page, per_page, state = args["page"], args["per_page"], args.get("state")
    # An admin's subtree only, like the rest of their reach (issue 14); a root's: all.
    units = ct.directory.subtree(admin.unit)
    rows, total = outbox.listing(ct.db, state, (page - 1) * per_page, per_page, units)
    items = [
        {
            "delivery_id": row["delivery_id"],
            "position": int(row["position"]),
            "case": row["case_id"],
            "unit": row["unit"],
            "kind": row["deadline"],
            "due": row["due"],
            "record": row["record"],
            "detected_at": row["detected_at"],
            "state": row["status"],
            "attempts": int(row["attempts"]),
            "next_attempt_at": moment(row["next_attempt_at"])
            if row["status"] == outbox.PENDING
            else None,
            "delivered_at": moment(row["delivered_at"]),
            "last_error": row["last_error"],
        }
        for row in rows
    ]
    body = {
        "items": items,
        "total": total,
        "page": page,
        "per_page": per_page,
        "counts": outbox.counts(ct.db, units),
        "links": links(page, per_page, total),
    }
    return jsonify(body)
