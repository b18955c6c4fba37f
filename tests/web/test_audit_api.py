"""The audit trail over HTTP: verification, checkpoints with proofs, the public key,
inclusion proofs and the read-access log, for auditors only."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from casetrail.bootstrap import Casetrail
from evidence.merkle import leaf_hash, log_entry, verify_consistency, verify_inclusion
from evidence.note import VerifierKey, open_checkpoint
from tests.integration.audit_support import registration
from tests.web.conftest import Tokens

API = "/api/v1"


def get(client: FlaskClient, tokens: Tokens, path: str, role: str = "auditor") -> Any:
    return client.get(API + path, headers=tokens.headers(role))


def opened_case(client: FlaskClient, tokens: Tokens) -> str:
    response = client.post(
        f"{API}/cases",
        json={
            "kind": "dispute",
            "unit": "320102",
            "type": "DisputeRegistered",
            "data": registration(1),
        },
        headers=tokens.headers("caseworker"),
    )
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def test_auditors_verify_the_store_and_one_case_and_others_may_not(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    case_id = opened_case(client, tokens)
    web_casetrail.audit.write_checkpoint()
    body = get(client, tokens, "/audit/verify").json
    assert body["ok"] is True and body["problems"] == [] and body["checked_events"] >= 1
    assert body["latest_checkpoint"]["tree_size"] == body["log_size"]
    assert get(client, tokens, f"/audit/verify?case={case_id}").json["checked_events"] == 1
    for role in ("caseworker", "supervisor", "admin"):
        assert get(client, tokens, "/audit/verify", role).status_code == 403
    assert get(client, tokens, "/audit/verify?case=nonsense").status_code == 404
    assert (
        get(client, tokens, "/audit/verify?case=6f1c2a3e-8d4b-4c5a-9e7f-0a1b2c3d4e5f").status_code
        == 404
    )


def test_a_tampered_store_is_reported_in_words_over_http(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    case_id = opened_case(client, tokens)
    web_casetrail.db.execute_script(
        [f"UPDATE case_event_chain SET actor = 'u_someone_else' WHERE case_id = '{case_id}'"]
    )
    body = get(client, tokens, "/audit/verify").json
    assert body["ok"] is False
    problem = body["problems"][0]
    assert problem["case"] == case_id and problem["version"] == 1
    assert f"Case {case_id} version 1" in problem["message"]


def test_checkpoints_public_key_and_inclusion_proofs_verify_with_the_pure_verifier(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    opened_case(client, tokens)
    web_casetrail.audit.write_checkpoint()
    opened_case(client, tokens)
    web_casetrail.audit.write_checkpoint()
    key = VerifierKey.parse(get(client, tokens, "/audit/public-key").json["public_key"])
    listed = get(client, tokens, "/audit/checkpoints").json
    assert VerifierKey.parse(listed["public_key"]) == key
    first, second = (open_checkpoint(c["note"], key) for c in listed["checkpoints"])
    proof = [bytes.fromhex(h) for h in listed["checkpoints"][1]["consistency_proof"]]
    assert verify_consistency(first.size, second.size, first.root, second.root, proof)
    inclusion = get(client, tokens, "/audit/proof?position=1").json
    checkpoint = open_checkpoint(inclusion["checkpoint"]["note"], key)
    leaf = leaf_hash(log_entry(1, bytes.fromhex(inclusion["hash"])))
    path = [bytes.fromhex(h) for h in inclusion["inclusion_proof"]]
    assert verify_inclusion(leaf, inclusion["leaf_index"], checkpoint.size, path, checkpoint.root)
    assert get(client, tokens, "/audit/proof?position=999999").status_code == 404
    assert get(client, tokens, "/audit/proof").status_code == 422
    assert get(client, tokens, "/audit/checkpoints", "caseworker").status_code == 403


def test_every_read_over_http_is_in_the_access_log_with_its_endpoint(
    client: FlaskClient, tokens: Tokens
) -> None:
    case_id = opened_case(client, tokens)
    assert get(client, tokens, f"/cases/{case_id}", "caseworker").status_code == 200
    assert get(client, tokens, f"/cases/{case_id}/history").status_code == 200
    denied = client.get(
        f"{API}/cases/{case_id}",
        headers={"Authorization": f"Bearer {tokens.outside['caseworker']}"},
    )
    assert denied.status_code == 404  # outside the reader's reach: as for an unknown id
    items = get(client, tokens, f"/audit/access?case={case_id}").json["items"]
    assert [(i["role"], i["endpoint"], i["granted"]) for i in items] == [
        ("caseworker", "GET /api/v1/cases/<string:case_id>", True),
        ("auditor", "GET /api/v1/cases/<string:case_id>/history", True),
        ("caseworker", "GET /api/v1/cases/<string:case_id>", False),
    ]
    assert get(client, tokens, "/audit/access?from=2020-01-01T00:00:00%2B08:00").json["items"]
    assert get(client, tokens, "/audit/access?from=yesterday").status_code == 422
    assert get(client, tokens, "/audit/access?case=nonsense").status_code == 422
    assert get(client, tokens, "/audit/access", "supervisor").status_code == 403


def test_a_page_of_the_case_list_that_shows_names_is_recorded_for_each_case(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    from projections import engine_for

    first, second = opened_case(client, tokens), opened_case(client, tokens)
    engine_for(web_casetrail).catch_up()
    listed = get(client, tokens, "/cases?unit=320102", "supervisor")
    assert listed.status_code == 200 and {i["id"] for i in listed.json["items"]} == {first, second}
    for case_id in (first, second):
        items = get(client, tokens, f"/audit/access?case={case_id}").json["items"]
        assert [(i["role"], i["endpoint"]) for i in items] == [("supervisor", "GET /api/v1/cases")]


def test_a_damaged_chain_table_is_a_409_not_a_500(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    # Two checkpoints: listing them gives the consistency proof between them, which reads
    # the chain rows (the kept tree does not reach them yet).
    for _ in range(2):
        opened_case(client, tokens)
        web_casetrail.audit.write_checkpoint()
    web_casetrail.db.execute_script(["UPDATE case_event_chain SET hash = 'not hex'"])
    for path in ("/audit/checkpoints", "/audit/proof?position=1"):
        response = get(client, tokens, path)
        assert response.status_code == 409, response.json
        assert response.json["error"]["code"] == "log_inconsistent"
    assert get(client, tokens, "/audit/verify").json["ok"] is False
