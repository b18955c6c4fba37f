"""Checkpoints over HTTP carry the witnesses' cosignatures and the RFC 3161 token."""

from __future__ import annotations

import os

from flask.testing import FlaskClient

from casetrail.audit import witnesses
from casetrail.bootstrap import Casetrail
from evidence.witness import WitnessSigner, cosigners, split_note
from tests.web.conftest import Tokens
from tests.web.test_audit_api import get, opened_case


def test_checkpoints_carry_their_cosignatures_and_timestamp(
    client: FlaskClient, tokens: Tokens, web_casetrail: Casetrail
) -> None:
    opened_case(client, tokens)
    row = web_casetrail.audit.write_checkpoint()
    assert row is not None
    witness = WitnessSigner("witness.example/w1", os.urandom(32))
    line = witness.cosign(split_note(str(row.note))[0], 1_772_413_200)
    values = {"tree_size": row.tree_size, "witness": witness.key.name, "line": line}
    witnesses.keep(web_casetrail.db, witnesses.COSIGNATURE_TABLE, int(row.number), values)
    listed = get(client, tokens, "/audit/checkpoints").json["checkpoints"]
    assert listed[-1]["cosignatures"] == [line]
    assert listed[-1]["timestamp"] is None
    assert cosigners(listed[-1]["note"], listed[-1]["cosignatures"], [witness.key]) == [
        witness.key.name
    ]
