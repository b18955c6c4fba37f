"""The registers over HTTP (casetrail.registers): mediation committees, mediators,
transitional bases and correction staff. Every user reads the entries of their unit's
branch (to name them in events); admins add, change and retire those of their subtree,
each act an event of the administration log. `GET /bases/occupancy`: the bases against
their capacity (projections.bases_query)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from casetrail.registers import RegisterEntryNotFound
from domain.registers import ENTRY_ID, MAX_CAPACITY, REGISTER_KINDS, STAFF_POSTS
from domain.roles import ADMIN, QUERY_ROLES, ROLES
from domain.schemas import StrictSchema, text, unit_code
from projections.bases_query import base_occupancy
from web.auth import require_role
from web.bodies import Blueprint
from web.context import casetrail
from web.errors import refusals
from web.queries import links, read_models, wait_for, with_headers
from web.schemas import MAX_PER_PAGE, Paged

blp = Blueprint(
    "registers",
    __name__,
    url_prefix="/api/v1",
    description="Registers that events name: mediation committees and mediators, "
    "transitional bases with their occupancy, correction staff.",
)


def entry_id(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Regexp(ENTRY_ID, error="Not a register entry id."), **kwargs
    )


def capacity() -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=1, max=MAX_CAPACITY))


class RegisterEntryRequest(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(list(REGISTER_KINDS)))
    unit = unit_code()
    name = text(max_length=100)
    id = entry_id(metadata={"description": "An id of the admin's choosing (e.g. a base's code)"})
    capacity = capacity()
    post = fields.String(validate=validate.OneOf(STAFF_POSTS))
    committee = entry_id(metadata={"description": "A mediator's registered committee"})


class RegisterEntryChange(StrictSchema):
    name = text(max_length=100, required=False)
    capacity = capacity()
    post = fields.String(validate=validate.OneOf(STAFF_POSTS))
    committee = entry_id()

    @validates_schema
    def _something_to_change(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("Give what changes.", field_name="_schema")


class RetireRequest(StrictSchema):
    reason = text(max_length=200)


class RegisterQuery(StrictSchema):
    kind = fields.String(validate=validate.OneOf(list(REGISTER_KINDS)))
    unit = unit_code(required=False)
    active = fields.Boolean()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class RegisterEntryResponse(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    unit = fields.String(required=True)
    name = fields.String(required=True)
    capacity = fields.Integer(allow_none=True)
    post = fields.String(allow_none=True)
    committee = fields.String(allow_none=True)
    active = fields.Boolean(required=True)


class RegisterListResponse(Paged):
    items = fields.List(fields.Nested(RegisterEntryResponse), required=True)


class OccupancyQuery(StrictSchema):
    unit = unit_code(required=False)
    include_retired = fields.Boolean(load_default=False)
    min_position = fields.Integer(validate=validate.Range(min=0))


class BaseOccupancyItem(Schema):
    base_id = fields.String(required=True)
    name = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    registered = fields.Boolean(required=True)
    active = fields.Boolean(allow_none=True)
    capacity = fields.Integer(allow_none=True)
    occupancy = fields.Integer(required=True)
    free = fields.Integer(allow_none=True)
    over_capacity = fields.Boolean(allow_none=True)


class OccupancyTotals(Schema):
    bases = fields.Integer(required=True)
    capacity = fields.Integer(required=True)
    occupancy = fields.Integer(required=True)
    over_capacity = fields.Integer(required=True)
    unregistered = fields.Integer(required=True)


class OccupancyResponse(Schema):
    unit = fields.String(required=True)
    bases = fields.List(fields.Nested(BaseOccupancyItem), required=True)
    totals = fields.Nested(OccupancyTotals, required=True)


def created(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = 201
    return response


@blp.route("/registers", methods=["GET"])
@blp.arguments(RegisterQuery(), location="query")
@blp.response(200, RegisterListResponse)
@refusals(blp, 401, 403, 422)
def list_entries(args: dict[str, Any]) -> Response:
    """The register entries of the caller's branch of the unit tree (their units above and
    their subtree), or of `unit`'s subtree inside their own, by unit and id."""
    user = require_role(*ROLES)
    found = casetrail().registers.visible(
        user.actor, kind=args.get("kind"), unit=args.get("unit"), active=args.get("active")
    )
    page, per_page = args["page"], args["per_page"]
    items = found[(page - 1) * per_page : page * per_page]
    return jsonify(
        {
            "items": [entry.as_json() for entry in items],
            "total": len(found),
            "page": page,
            "per_page": per_page,
            "links": links(page, per_page, len(found)),
        }
    )


@blp.route("/registers/<string:entry_id>", methods=["GET"])
@blp.response(200, RegisterEntryResponse)
@refusals(blp, 401, 404)
def get_entry(entry_id: str) -> Response:
    """One entry of the caller's branch of the unit tree (else 404)."""
    user = require_role(*ROLES)
    registers = casetrail().registers
    entry = registers.get(entry_id)
    if entry is None or not registers.on_branch(user.unit, entry.unit):
        raise RegisterEntryNotFound(f"There is no register entry {entry_id} in your reach.")
    return jsonify(entry.as_json())


@blp.route("/registers", methods=["POST"])
@blp.arguments(RegisterEntryRequest())
@blp.response(201, RegisterEntryResponse)
@refusals(blp, 400, 401, 403, 409, 413, 415, 422)
def add_entry(body: dict[str, Any]) -> Response:
    """Enters a committee, mediator, base (with its capacity) or staff member (with their
    post) in the register of a unit of the admin's subtree."""
    admin = require_role(ADMIN)
    entry = casetrail().registers.add(
        body["kind"],
        body["unit"],
        body["name"],
        by=admin.actor,
        entry_id=body.get("id"),
        capacity=body.get("capacity"),
        post=body.get("post"),
        committee=body.get("committee"),
    )
    return created(entry.as_json())


@blp.route("/registers/<string:entry_id>", methods=["PATCH"])
@blp.arguments(RegisterEntryChange())
@blp.response(200, RegisterEntryResponse)
@refusals(blp, 400, 401, 403, 404, 413, 415, 422)
def change_entry(body: dict[str, Any], entry_id: str) -> Response:
    """Changes an active entry's name, capacity, post or committee (its unit and kind
    stay)."""
    admin = require_role(ADMIN)
    entry = casetrail().registers.change(entry_id, by=admin.actor, **body)
    return jsonify(entry.as_json())


@blp.route("/registers/<string:entry_id>/retire", methods=["POST"])
@blp.arguments(RetireRequest())
@blp.response(200, RegisterEntryResponse)
@refusals(blp, 400, 401, 403, 404, 413, 415, 422)
def retire_entry(body: dict[str, Any], entry_id: str) -> Response:
    """Retires an entry: no new event may name it; events that did stay valid."""
    admin = require_role(ADMIN)
    entry = casetrail().registers.retire(entry_id, by=admin.actor, reason=body["reason"])
    return jsonify(entry.as_json())


@blp.route("/bases/occupancy", methods=["GET"])
@blp.arguments(OccupancyQuery(), location="query")
@blp.response(200, OccupancyResponse)
@refusals(blp, 401, 403, 422)
def occupancy(args: dict[str, Any]) -> Response:
    """The transitional bases of the caller's subtree (or `unit`'s) with capacity, the
    people there now and whether they are over capacity; base ids older events named
    that no register holds, with `registered: false`."""
    user = require_role(*QUERY_ROLES, ADMIN)
    models = read_models()
    headers = wait_for(models, args)
    result = base_occupancy(
        models, user.actor, unit=args.get("unit"), include_retired=args["include_retired"]
    )
    return with_headers(jsonify(result), headers)
