"""Meta and administration: the event catalogue, the health check, units and users (admins)."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Response, jsonify
from flask_smorest import Blueprint

from casetrail.directory import User
from domain import rules
from domain.deadlines import catalogue as deadline_table
from domain.errors import NotPermitted
from domain.kinds import KINDS
from domain.roles import ADMIN
from domain.units import natural_parent
from web.auth import require_role
from web.context import casetrail
from web.errors import refusals
from web.schemas import (
    EventTypesResponse,
    HealthResponse,
    NewUserResponse,
    UnitListResponse,
    UnitRequest,
    UnitResponse,
    UserListResponse,
    UserRequest,
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
                "allowed_in": sorted(event_class.allowed_in)
                if event_class.allowed_in is not None
                else None,
                "unit_fields": list(event_class.unit_fields),
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
    return jsonify({"status": "ok", "head_position": casetrail().service.head_position()})


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthResponse)
@blp.doc(security=[])
def healthz() -> Response:
    """Whether the service is up and its store answers (no token needed)."""
    return health()


# --- administration -------------------------------------------------------------------------


def require_admin_over(unit: str) -> User:
    """An admin may manage units and users in their own unit subtree."""
    admin = require_role(ADMIN)
    directory = casetrail().directory
    directory.require_unit(unit)
    if not directory.may_act(admin.unit, unit):
        raise NotPermitted(
            "This unit is outside your unit's jurisdiction.", code="outside_jurisdiction"
        )
    return admin


def unit_json(unit: Any) -> dict[str, Any]:
    return {"code": unit.code, "name": unit.name, "parent": unit.parent, "level": unit.level}


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "role": user.role, "unit": user.unit}


@blp.route("/units", methods=["GET"])
@blp.response(200, UnitListResponse)
@refusals(blp, 401)
def list_units() -> Response:
    """The unit tree, as a list ordered by code."""
    return jsonify({"units": [unit_json(unit) for unit in casetrail().directory.units()]})


@blp.route("/units", methods=["POST"])
@blp.arguments(UnitRequest())
@blp.response(201, UnitResponse)
@refusals(blp, 400, 401, 403, 409, 413, 422)
def add_unit(body: dict[str, Any]) -> Response:
    """Adds a unit under a parent in the admin's subtree (default parent: implied by the code)."""
    parent = body.get("parent") or natural_parent(body["code"])
    if parent is None:
        raise NotPermitted("Only a provincial deployment adds a province.", code="root_unit")
    require_admin_over(parent)
    unit = casetrail().directory.add_unit(body["code"], body["name"], parent)
    response = jsonify(unit_json(unit))
    response.status_code = 201
    return response


@blp.route("/users", methods=["GET"])
@blp.response(200, UserListResponse)
@refusals(blp, 401, 403)
def list_users() -> Response:
    """The users of the admin's unit subtree (never their tokens)."""
    admin = require_role(ADMIN)
    directory = casetrail().directory
    users = [user for user in directory.users() if directory.may_act(admin.unit, user.unit)]
    return jsonify({"users": [user_json(user) for user in users]})


@blp.route("/users", methods=["POST"])
@blp.arguments(UserRequest())
@blp.response(201, NewUserResponse)
@refusals(blp, 400, 401, 403, 413, 422)
def create_user(body: dict[str, Any]) -> Response:
    """Creates a user in the admin's subtree; the answer shows the bearer token this once."""
    require_admin_over(body["unit"])
    user, token = casetrail().directory.create_user(body["name"], body["role"], body["unit"])
    response = jsonify({**user_json(user), "token": token})
    response.status_code = 201
    return response
