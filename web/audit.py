"""The auditors' blueprint: what the event streams and the audit trail answer.

Case state at any version or moment, case history and the global feed read the event
streams themselves, never the read models (auditors within their unit's subtree, the
global feed for the province's auditors; the case's own unit chain for the case endpoints). Verification, signed checkpoints with consistency proofs, the
public key, inclusion proofs and the read-access log are the audit trail's (auditors
only): the checks themselves are `casetrail.audit`'s; these views only translate.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, request
from flask_smorest import Blueprint

from domain.roles import AUDITOR
from web.auth import current_actor, require_role
from web.context import casetrail
from web.errors import refusals
from web.schemas import (
    AccessQuery,
    AccessResponse,
    CaseStateQuery,
    CaseStateResponse,
    CheckpointsResponse,
    FeedQuery,
    FeedResponse,
    HistoryResponse,
    ProofQuery,
    ProofResponse,
    PublicKeyResponse,
    VerifyQuery,
    VerifyResponse,
)

blp = Blueprint(
    "audit",
    __name__,
    url_prefix="/api/v1",
    description="Audit: case state at any version or moment, case history, the global feed.",
)


@blp.route("/cases/<string:case_id>", methods=["GET"])
@blp.arguments(CaseStateQuery(), location="query")
@blp.response(200, CaseStateResponse)
@refusals(blp, 401, 403, 404, 422)
def case_state(args: dict[str, Any], case_id: str) -> Response:
    """The case's state from its stream, now or as it was at a version (`as_of_version`) or moment (`as_of`).

    404 for a case outside the reader's reach, as for an unknown id; 403 for a role that
    does not read cases."""
    state = casetrail().reads.case_state(
        current_actor(),
        case_id,
        as_of_version=args.get("as_of_version"),
        as_of=args.get("as_of"),
    )
    return jsonify(state)


@blp.route("/cases/<string:case_id>/history", methods=["GET"])
@blp.response(200, HistoryResponse)
@refusals(blp, 401, 403, 404)
def history(case_id: str) -> Response:
    """Every event of the case in order, with who recorded it, when, and its chain hash.

    404 for a case outside the reader's reach, as for an unknown id."""
    events = casetrail().reads.history(current_actor(), case_id)
    return jsonify({"events": events})


@blp.route("/audit/events", methods=["GET"])
@blp.arguments(FeedQuery(), location="query")
@blp.response(200, FeedResponse)
@refusals(blp, 401, 403, 422)
def feed(args: dict[str, Any]) -> Response:
    """The global event feed in append order, after a position (auditors)."""
    after, limit = args["after"], args["limit"]
    reads = casetrail().reads
    events = reads.feed(current_actor(), after, limit)
    next_after = events[-1]["position"] if events else after
    head = reads.head_position()
    links = {
        "self": f"{request.path}?after={after}&limit={limit}",
        "next": f"{request.path}?after={next_after}&limit={limit}" if next_after < head else None,
        "prev": None,
    }
    return jsonify(
        {"events": events, "after": after, "next_after": next_after, "head": head, "links": links}
    )


# The audit trail (auditors only).


@blp.route("/audit/verify", methods=["GET"])
@blp.arguments(VerifyQuery(), location="query")
@blp.response(200, VerifyResponse)
@refusals(blp, 401, 403, 404, 422)
def verify(args: dict[str, Any]) -> Response:
    """Recomputes every hash chain and the Merkle log against every signed checkpoint; with `case`, that case's chain and an inclusion proof of each of its events in the latest signed checkpoint (events appended since are counted in `after_checkpoint`)."""
    auditor = require_role(AUDITOR)
    if args.get("case") is not None:
        casetrail().reads.require_reach(auditor.actor, args["case"])
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
    """Who read which case's personal data, when, through which endpoint, granted or denied: oldest first, a page after the cursor `after`; `next` is the next page's cursor (null: no more)."""
    require_role(AUDITOR)
    limit = args["limit"]
    items, next_cursor = casetrail().reads.access_page(
        current_actor(),
        case=args.get("case"),
        user=args.get("user"),
        from_=args.get("from_"),
        to=args.get("to"),
        after=args.get("after"),
        limit=limit,
    )
    link = None
    if next_cursor is not None:
        query = request.args.to_dict()
        query.update(after=next_cursor, limit=str(limit))
        link = f"{request.path}?{urlencode(query)}"
    return jsonify({"items": items, "next": next_cursor, "links": {"next": link}})
