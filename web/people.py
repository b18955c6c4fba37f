"""The people whose data the store holds: erasure by an admin (projections.erasure).
The ID number travels in the body, never in the path (paths are logged)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import Schema, fields, validate

from domain.roles import ADMIN
from domain.schemas import ID_NUMBER, StrictSchema, text
from projections.erasure import erase_person
from web.auth import require_role
from web.bodies import Blueprint
from web.context import casetrail
from web.errors import refusals

blp = Blueprint(
    "people",
    __name__,
    url_prefix="/api/v1",
    description="The people whose personal data the store holds: erasure.",
)


class ErasureRequest(StrictSchema):
    id_number = fields.String(
        required=True, validate=validate.Regexp(ID_NUMBER, error="Not an 18-digit ID number.")
    )
    reason = text(max_length=200)


class ErasedCase(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)


class ErasureResponse(Schema):
    cases = fields.List(fields.Nested(ErasedCase), required=True)
    keys_destroyed = fields.Integer(required=True)


@blp.route("/people/erasures", methods=["POST"])
@blp.arguments(ErasureRequest())
@blp.response(200, ErasureResponse)
@refusals(blp, 400, 401, 403, 404, 413, 415, 422)
def erase(body: dict[str, Any]) -> Response:
    """Erases a person (個人信息保護法 §47): their records' data keys are destroyed, and
    every read then shows their fields as erased. Refused while a record of theirs is open
    or within its kind's retention period; an admin over every record's unit only."""
    admin = require_role(ADMIN)
    return jsonify(erase_person(casetrail(), admin.actor, body["id_number"], body["reason"]))
