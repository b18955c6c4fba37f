"""Meta and administration: the event catalogue, the health check, units and users (admins)."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Response, jsonify

from casetrail.directory import User
from domain import rules
from domain.deadlines import catalogue as deadline_table
from domain.kinds import KINDS
from domain.roles import ADMIN, WRITING_ROLES
from web.auth import require_role
from web.bodies import Blueprint
from web.context import casetrail
from web.errors import refusals
from web.queries import links
from web.schemas import (
    EventTypesResponse,
    HealthResponse,
    NewUserResponse,
    UnitListResponse,
    UnitRequest,
    UnitResponse,
    UserChangeRequest,
    UserListQuery,
    UserListResponse,
    UserRequest,
    UserResponse,
)

blp = Blueprint(
    "meta",
    __name__,
    url_prefix="/api/v1",
    description="The event catalogue, the health check, and the administration of units and users.",
)


@cache
def event_catalogue() -> dict[str, Any]:
    """Every kind's event types with the JSON schema of the data the domain validates."""
    # A resolver naming no schema inlines the nested ones (parties, persons).
    plugin = MarshmallowPlugin(schema_name_resolver=lambda schema: None)  # type: ignore[arg-type,return-value]
    APISpec("casetrail events", "1", "3.0.3", plugins=[plugin])
    assert plugin.converter is not None
    kinds = {}
    for kind, case_class in KINDS.items():
        events = {}
        for event_class in case_class.events:
            doc = (event_class.__doc__ or "").strip().splitlines()
            events[event_class.__name__] = {
                "description": doc[0] if doc else "",
                "opens_case": event_class is case_class.opening_event,
                "supervisors_only": event_class.supervisors_only,
                # Who records it ([]: the case itself, e.g. RecordSealed).
                "recorded_by": list(
                    WRITING_ROLES if event_class.recorded_by is None else event_class.recorded_by
                ),
                "allowed_in": sorted(event_class.allowed_in)
                if event_class.allowed_in is not None
                else None,
                "unit_fields": list(event_class.unit_fields),
                # Fields naming register entries (casetrail.registers): path → kind (post).
                "register_fields": {
                    field.path: {"kind": field.kind, "post": field.post}
                    for field in event_class.register_fields
                },
                "schema": plugin.converter.schema2jsonschema(event_class.schema_instance()),
            }
        kinds[kind] = {"opening_event": case_class.opening_event.__name__, "events": events}
    # The table of deadlines (domain.deadlines) beside the figures it reads.
    return {"kinds": kinds, "rules": {**rules.catalogue(), "deadlines": deadline_table()}}


def document_event_data(spec: APISpec) -> None:
    """Describes the `data` of the commands in the OpenAPI document with the same event
    schemas: any opening event's for `POST /cases`, any event's for an append."""
    opening: list[dict[str, str]] = []
    every: list[dict[str, str]] = []
    for kind, entry in event_catalogue()["kinds"].items():
        for name, event in entry["events"].items():
            component = f"{kind}.{name}Data"
            spec.components.schema(component, component=event["schema"])
            ref = {"$ref": f"#/components/schemas/{component}"}
            every.append(ref)
            if event["opens_case"]:
                opening.append(ref)
    schemas = spec.components.schemas
    described = "The data of the event `type`; see `/event-types`."
    schemas["OpenCaseRequest"]["properties"]["data"] = {"anyOf": opening, "description": described}
    schemas["AppendEventRequest"]["properties"]["data"] = {"anyOf": every, "description": described}


@blp.route("/event-types", methods=["GET"])
@blp.response(200, EventTypesResponse)
@refusals(blp, 401)
def event_types() -> Response:
    """Every kind's event types with their data schema, and the rule table."""
    return jsonify(event_catalogue())


def health() -> Response:
    return jsonify({"status": "ok", "head_position": casetrail().reads.head_position()})


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthResponse)
@blp.doc(security=[])
def healthz() -> Response:
    """Whether the service is up and its store answers (no token needed)."""
    return health()


# --- administration -------------------------------------------------------------------------
# The rules (an admin's subtree, never more reach than their own, a unit under the parent its
# code implies) and the administration log are casetrail.directory's; these views translate.


def unit_json(unit: Any) -> dict[str, Any]:
    return {"code": unit.code, "name": unit.name, "parent": unit.parent, "level": unit.level}


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "unit": user.unit,
        "active": user.active,
    }


def created(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = 201
    return response


@blp.route("/units", methods=["GET"])
@blp.response(200, UnitListResponse)
@refusals(blp, 401)
def list_units() -> Response:
    """The unit tree, as a list ordered by code."""
    return jsonify({"units": [unit_json(unit) for unit in casetrail().directory.units()]})


@blp.route("/units", methods=["POST"])
@blp.arguments(UnitRequest())
@blp.response(201, UnitResponse)
@refusals(blp, 400, 401, 403, 409, 413, 415, 422)
def add_unit(body: dict[str, Any]) -> Response:
    """Adds a unit under the parent its code implies, in the admin's subtree (a `parent`
    given must be that one)."""
    admin = require_role(ADMIN)
    unit = casetrail().directory.add_unit(
        body["code"], body["name"], body.get("parent"), by=admin.actor
    )
    return created(unit_json(unit))


@blp.route("/users", methods=["GET"])
@blp.arguments(UserListQuery(), location="query")
@blp.response(200, UserListResponse)
@refusals(blp, 401, 403, 422)
def list_users(args: dict[str, Any]) -> Response:
    """A page of the users of the admin's unit subtree, oldest first (never their tokens)."""
    admin = require_role(ADMIN)
    page, per_page = args["page"], args["per_page"]
    users, total = casetrail().directory.users_page(
        admin.actor, page, per_page, unit=args.get("unit"), role=args.get("role")
    )
    return jsonify(
        {
            "users": [user_json(user) for user in users],
            "total": total,
            "page": page,
            "per_page": per_page,
            "links": links(page, per_page, total),
        }
    )


@blp.route("/users", methods=["POST"])
@blp.arguments(UserRequest())
@blp.response(201, NewUserResponse)
@refusals(blp, 400, 401, 403, 413, 415, 422)
def create_user(body: dict[str, Any]) -> Response:
    """Creates a user in the admin's subtree; the answer shows the bearer token this once."""
    admin = require_role(ADMIN)
    user, token = casetrail().directory.create_user(
        body["name"], body["role"], body["unit"], by=admin.actor
    )
    return created({**user_json(user), "token": token})


@blp.route("/users/<string:user_id>", methods=["PATCH"])
@blp.arguments(UserChangeRequest())
@blp.response(200, UserResponse)
@refusals(blp, 400, 401, 403, 404, 413, 422)
def change_user(body: dict[str, Any], user_id: str) -> Response:
    """Moves a user to another unit or gives them another role, within the admin's subtree."""
    admin = require_role(ADMIN)
    user = casetrail().directory.change_user(
        user_id, by=admin.actor, unit=body.get("unit"), role=body.get("role")
    )
    return jsonify(user_json(user))


@blp.route("/users/<string:user_id>/disable", methods=["POST"])
@blp.response(200, UserResponse)
@refusals(blp, 401, 403, 404)
def disable_user(user_id: str) -> Response:
    """Disables a user: their token is refused by every process from now on."""
    admin = require_role(ADMIN)
    return jsonify(user_json(casetrail().directory.set_active(user_id, False, by=admin.actor)))


@blp.route("/users/<string:user_id>/enable", methods=["POST"])
@blp.response(200, UserResponse)
@refusals(blp, 401, 403, 404)
def enable_user(user_id: str) -> Response:
    """Enables a disabled user again (with the token they had, if it has not expired)."""
    admin = require_role(ADMIN)
    return jsonify(user_json(casetrail().directory.set_active(user_id, True, by=admin.actor)))


@blp.route("/users/<string:user_id>/token", methods=["POST"])
@blp.response(201, NewUserResponse)
@refusals(blp, 401, 403, 404)
def rotate_token(user_id: str) -> Response:
    """Issues the user a new bearer token, shown this once; the old one is refused at once."""
    admin = require_role(ADMIN)
    user, token = casetrail().directory.rotate_token(user_id, by=admin.actor)
    return created({**user_json(user), "token": token})
