"""The audit trail's routes on the audit blueprint (auditors only): verification, signed
checkpoints with consistency proofs, the public key, inclusion proofs and the read-access
log. The checks themselves are `casetrail.audit`'s; these views only translate."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import Schema, fields, validate

from casetrail.audit import audit_of
from domain.schemas import StrictSchema
from web.audit import blp
from web.auth import current_actor, require_role
from web.context import casetrail
from web.errors import refusals
from web.schemas import POSITION_MAX, position

# --- schemas -------------------------------------------------------------------------------


class VerifyQuery(StrictSchema):
    case = fields.String(validate=validate.Length(max=64), metadata={"description": "A case id"})


class ProblemResponse(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "Readable by an auditor"})
    case = fields.String(required=True, allow_none=True)
    version = fields.Integer(required=True, allow_none=True)
    position = fields.Integer(required=True, allow_none=True)


class LatestCheckpoint(Schema):
    number = fields.Integer(required=True, allow_none=True)
    tree_size = fields.Integer(required=True)
    root_hash = fields.String(required=True)
    time = fields.String(required=True)


class VerifyResponse(Schema):
    ok = fields.Boolean(required=True)
    checked_events = fields.Integer(required=True)
    log_size = fields.Integer(required=True)
    latest_checkpoint = fields.Nested(LatestCheckpoint, required=True, allow_none=True)
    problems = fields.List(fields.Nested(ProblemResponse), required=True)


class CheckpointResponse(Schema):
    number = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    root_hash = fields.String(required=True)
    note = fields.String(required=True, metadata={"description": "C2SP signed note"})
    time = fields.String()
    consistency_from = fields.Integer(allow_none=True)
    consistency_proof = fields.List(fields.String(), required=True, allow_none=True)


class CheckpointsResponse(Schema):
    public_key = fields.String(required=True)
    checkpoints = fields.List(fields.Nested(CheckpointResponse), required=True)


class PublicKeyResponse(Schema):
    public_key = fields.String(required=True, metadata={"description": "C2SP note verifier key"})
    key_name = fields.String(required=True)
    key_id = fields.String(required=True)
    algorithm = fields.String(required=True)


class ProofQuery(StrictSchema):
    position = position(required=True)
    checkpoint = fields.Integer(validate=validate.Range(min=1, max=POSITION_MAX))


class ProofCheckpoint(Schema):
    number = fields.Integer(required=True)
    note = fields.String(required=True)


class ProofResponse(Schema):
    position = fields.Integer(required=True)
    hash = fields.String(required=True)
    leaf_index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    checkpoint = fields.Nested(ProofCheckpoint, required=True)
    inclusion_proof = fields.List(fields.String(), required=True)


class AccessQuery(StrictSchema):
    case = fields.String(validate=validate.Length(max=64))
    user = fields.String(validate=validate.Length(max=100))
    from_ = fields.AwareDateTime(data_key="from")
    to = fields.AwareDateTime()


class AccessItem(Schema):
    position = fields.Integer(required=True)
    at = fields.String(required=True)
    user = fields.String(required=True)
    role = fields.String(required=True)
    unit = fields.String(required=True)
    case = fields.String(required=True, allow_none=True)
    endpoint = fields.String(required=True, allow_none=True)
    granted = fields.Boolean(required=True, allow_none=True)
    refusal = fields.String(required=True, allow_none=True)


class AccessResponse(Schema):
    items = fields.List(fields.Nested(AccessItem), required=True)


# --- views -----------------------------------------------------------------------------------


@blp.route("/audit/verify", methods=["GET"])
@blp.arguments(VerifyQuery, location="query")
@blp.response(200, VerifyResponse)
@refusals(blp, 401, 403, 404, 422)
def verify(args: dict[str, Any]) -> Response:
    """Recomputes the hash chains (of one case, or all) and the Merkle log against every signed checkpoint."""
    require_role("auditor")
    report = audit_of(casetrail()).verify(args.get("case"))
    return jsonify(report.as_dict())


@blp.route("/audit/checkpoints", methods=["GET"])
@blp.response(200, CheckpointsResponse)
@refusals(blp, 401, 403)
def checkpoints() -> Response:
    """The signed checkpoints of the global log, each with the consistency proof from the one before."""
    require_role("auditor")
    trail = audit_of(casetrail())
    return jsonify({"public_key": trail.public_key, "checkpoints": trail.checkpoints()})


@blp.route("/audit/public-key", methods=["GET"])
@blp.response(200, PublicKeyResponse)
@refusals(blp, 401, 403)
def public_key() -> Response:
    """The log's Ed25519 public key, as a C2SP note verifier key."""
    require_role("auditor")
    verifier = audit_of(casetrail()).signer.verifier
    return jsonify(
        {
            "public_key": verifier.encode(),
            "key_name": verifier.name,
            "key_id": verifier.key_id.hex(),
            "algorithm": "Ed25519",
        }
    )


@blp.route("/audit/proof", methods=["GET"])
@blp.arguments(ProofQuery, location="query")
@blp.response(200, ProofResponse)
@refusals(blp, 401, 403, 404, 422)
def inclusion_proof(args: dict[str, Any]) -> Response:
    """The proof that the event at `position` is in a signed checkpoint (the latest by default)."""
    require_role("auditor")
    proof = audit_of(casetrail()).inclusion(args["position"], args.get("checkpoint"))
    return jsonify(proof)


@blp.route("/audit/access", methods=["GET"])
@blp.arguments(AccessQuery, location="query")
@blp.response(200, AccessResponse)
@refusals(blp, 401, 403, 422)
def access(args: dict[str, Any]) -> Response:
    """Who read which case's personal data, when, through which endpoint, granted or denied."""
    require_role("auditor")
    items = casetrail().service.access_log(
        current_actor(),
        case=args.get("case"),
        user=args.get("user"),
        from_=args.get("from_"),
        to=args.get("to"),
    )
    return jsonify({"items": items})
