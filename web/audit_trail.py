"""The audit trail's routes on the audit blueprint (auditors only): verification, signed
checkpoints with consistency proofs, the public key, inclusion proofs and the read-access
log. The checks themselves are `casetrail.audit`'s; these views only translate."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from domain.roles import AUDITOR
from web.audit import blp
from web.auth import current_actor, require_role
from web.context import casetrail
from web.errors import refusals
from web.schemas import (
    AccessQuery,
    AccessResponse,
    CheckpointsResponse,
    ProofQuery,
    ProofResponse,
    PublicKeyResponse,
    VerifyQuery,
    VerifyResponse,
)

# --- views -----------------------------------------------------------------------------------


@blp.route("/audit/verify", methods=["GET"])
@blp.arguments(VerifyQuery(), location="query")
@blp.response(200, VerifyResponse)
@refusals(blp, 401, 403, 404, 422)
def verify(args: dict[str, Any]) -> Response:
    """Recomputes the hash chains (of one case, or all) and the Merkle log against every signed checkpoint."""
    require_role(AUDITOR)
    report = casetrail().audit.verify(args.get("case"))
    return jsonify(report.as_dict())


@blp.route("/audit/checkpoints", methods=["GET"])
@blp.response(200, CheckpointsResponse)
@refusals(blp, 401, 403)
def checkpoints() -> Response:
    """The signed checkpoints of the global log, each with the consistency proof from the one before."""
    require_role(AUDITOR)
    trail = casetrail().audit
    return jsonify({"public_key": trail.public_key, "checkpoints": trail.checkpoints()})


@blp.route("/audit/public-key", methods=["GET"])
@blp.response(200, PublicKeyResponse)
@refusals(blp, 401, 403)
def public_key() -> Response:
    """The log's Ed25519 public key, as a C2SP note verifier key."""
    require_role(AUDITOR)
    verifier = casetrail().audit.signer.verifier
    return jsonify(
        {
            "public_key": verifier.encode(),
            "key_name": verifier.name,
            "key_id": verifier.key_id.hex(),
            "algorithm": "Ed25519",
        }
    )


@blp.route("/audit/proof", methods=["GET"])
@blp.arguments(ProofQuery(), location="query")
@blp.response(200, ProofResponse)
@refusals(blp, 401, 403, 404, 422)
def inclusion_proof(args: dict[str, Any]) -> Response:
    """The proof that the event at `position` is in a signed checkpoint (the latest by default)."""
    require_role(AUDITOR)
    proof = casetrail().audit.inclusion(args["position"], args.get("checkpoint"))
    return jsonify(proof)


@blp.route("/audit/access", methods=["GET"])
@blp.arguments(AccessQuery(), location="query")
@blp.response(200, AccessResponse)
@refusals(blp, 401, 403, 422)
def access(args: dict[str, Any]) -> Response:
    """Who read which case's personal data, when, through which endpoint, granted or denied."""
    require_role(AUDITOR)
    items = casetrail().reads.access_log(
        current_actor(),
        case=args.get("case"),
        user=args.get("user"),
        from_=args.get("from_"),
        to=args.get("to"),
    )
    return jsonify({"items": items})
