"""The people whose data the store holds (人員): a lookup across cases by ID number or name
(`GET /people`, projections.people decides what is found and shown, and records the
lookup), and erasure by an admin (`POST /people/erasures`, projections.erasure). An ID
number travels in a query only as the lookup's key (the access log keeps its keyed hash,
never the text) and in the erasure's body, never in a path (paths are logged)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from domain.roles import ADMIN, QUERY_ROLES
from domain.schemas import ID_NUMBER, SHORT_TEXT, StrictSchema, text
from projections.erasure import erase_person
from projections.people import People
from web.auth import require_role
from web.bodies import Blueprint
from web.context import casetrail
from web.errors import refusals
from web.queries import read_models

blp = Blueprint(
    "people",
    __name__,
    url_prefix="/api/v1",
    description="The person across cases: a recorded lookup by ID number or name; erasure.",
)


class PeopleQuery(StrictSchema):
    id_number = fields.String(validate=validate.Length(min=1, max=SHORT_TEXT))
    name = fields.String(validate=validate.Length(min=1, max=SHORT_TEXT))

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **_: Any) -> None:
        given = [key for key in ("id_number", "name") if data.get(key, "").strip()]
        if len(given) != 1:
            raise ValidationError(
                "Give exactly one of 'id_number' and 'name'.", field_name="_schema"
            )


@blp.route("/people", methods=["GET"])
@blp.arguments(PeopleQuery(), location="query")
@blp.response(200, description="The cases that name the person, newest first, and their total.")
@refusals(blp, 401, 403, 422)
def people(args: dict[str, Any]) -> Response:
    """The cases within the caller's reach that name a person, found by the keyed hash of
    the ID number or whole name (never the text); a minor's case only for those who may see
    who it is. Every lookup is recorded in the read-access log (the query's keyed hash and
    the total)."""
    user = require_role(*QUERY_ROLES)
    found = People(read_models()).lookup(
        user.actor, id_number=args.get("id_number"), name=args.get("name")
    )
    return jsonify(found)


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
