"""The person across cases (人員): `GET /people?id_number=…` or `?name=…` answers the cases
within the caller's reach that name that person (projections.people decides what is
found and shown, and records the lookup; this module only speaks HTTP)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validate, validates_schema

from domain.roles import QUERY_ROLES
from domain.schemas import SHORT_TEXT, StrictSchema
from projections.people import People
from web.auth import require_role
from web.errors import refusals
from web.queries import read_models

blp = Blueprint(
    "people",
    __name__,
    url_prefix="/api/v1",
    description="The person across cases: a lookup by ID number or name (recorded).",
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
