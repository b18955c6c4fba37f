"""Commands (caseworkers; supervisors for the supervisory events): open a case, append an event.

Each view only turns a request into a service call and the answer into a response;
the service checks jurisdiction, the domain checks roles, schemas and rules.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from casetrail.events import Appended
from web.auth import current_actor
from web.bodies import Blueprint
from web.context import casetrail
from web.errors import refusals
from web.schemas import (
    AppendedResponse,
    AppendEventRequest,
    IdempotencyHeader,
    OpenCaseRequest,
)

blp = Blueprint(
    "commands",
    __name__,
    url_prefix="/api/v1",
    description="Commands: open cases and append their events.",
)


def created(appended: Appended) -> Response:
    response = jsonify(
        {
            "id": appended.id,
            "kind": appended.kind,
            "version": appended.version,
            "position": appended.position,
            "event": appended.event,
        }
    )
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/cases/{appended.id}"
    if appended.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blp.route("/cases", methods=["POST"])
@blp.arguments(IdempotencyHeader(), location="headers", as_kwargs=True)
@blp.arguments(OpenCaseRequest())
@blp.response(201, AppendedResponse)
@refusals(blp, 400, 401, 403, 413, 415, 422)
def open_case(body: dict[str, Any], idempotency_key: str | None = None) -> Response:
    """Open a case with its kind's opening event (e.g. `DisputeRegistered`)."""
    appended = casetrail().service.open_case(
        current_actor(),
        body["kind"],
        body["unit"],
        body["type"],
        body["data"],
        reason=body.get("reason"),
        note=body.get("note"),
        idempotency_key=idempotency_key,
    )
    return created(appended)


@blp.route("/cases/<string:case_id>/events", methods=["POST"])
@blp.arguments(IdempotencyHeader(), location="headers", as_kwargs=True)
@blp.arguments(AppendEventRequest())
@blp.response(201, AppendedResponse)
@refusals(blp, 400, 401, 403, 404, 409, 413, 415, 422)
def append_event(
    body: dict[str, Any], case_id: str, idempotency_key: str | None = None
) -> Response:
    """Append an event; with `expected_version`, only if the case is still at that version.

    404 for a case outside the caller's reach, as for an unknown id (a stranger does not
    learn that it exists); 403 for a role that never records it (`role_cannot_write`,
    `supervisor_only`) or a unit that reaches the case but does not record this event
    (`outside_jurisdiction`: e.g. a township closing a dispute handed down to it). A case
    changes hands by `TransferProposed` then `TransferAccepted` from a supervisor of the
    receiving unit; `ResidenceChanged` and `AssistanceDelegated` answer 422
    `transfer_required`.

    A minor's `CorrectionCompleted` seals the record (犯罪記錄封存): the case records
    `RecordSealed` after it, in the same transaction, and the answer is that last event. A
    sealed record takes only its opening events: `SealOpeningRequested` (an auditor, with a
    `legal_ground`), `SealOpeningApproved` or `SealOpeningDeclined` (a supervisor, not the
    requester: 403 `approval_by_same_person`), `SealOpeningClosed`; anything else is 422
    `sealed`, an opening event on a record not sealed 422 `not_sealed`, one too late 422
    `opening_expired`."""
    appended = casetrail().service.append(
        current_actor(),
        case_id,
        body["type"],
        body["data"],
        expected_version=body.get("expected_version"),
        reason=body.get("reason"),
        note=body.get("note"),
        idempotency_key=idempotency_key,
    )
    return created(appended)
