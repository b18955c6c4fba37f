"""The witness protocol on its own (C2SP tlog-witness, tlog-cosignature): pure, no I/O."""

from __future__ import annotations

import base64
import os
import random
import struct

import pytest

from casetrail.audit.keys import Signer
from casetrail.config import ConfigError, Settings
from evidence.merkle import leaf_hash
from evidence.note import Checkpoint, NoteError
from evidence.tree import Tree
from evidence.verifier import Report
from evidence.witness import (
    WitnessKey,
    WitnessSigner,
    WitnessState,
    add_checkpoint,
    add_checkpoint_request,
    check_quorum,
    cosigned_message,
    cosigners,
    parse_witnesses,
    split_note,
)

NOW = 1_772_413_200


def signed(signer: Signer, tree: Tree, size: int) -> str:
    checkpoint = Checkpoint(signer.name, size, tree.root(size), "2026-03-02T01:00:00Z")
    return signer.sign_note(checkpoint.text())


def leaves(n: int, salt: bytes = b"") -> Tree:
    return Tree([leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)])


@pytest.fixture
def log() -> Signer:
    return Signer.generate()


@pytest.fixture
def witness() -> WitnessSigner:
    return WitnessSigner("witness.example/w1", os.urandom(32))


def ask(state: WitnessState, witness: WitnessSigner, old: int, tree: Tree, note: str, new: int):  # type: ignore[no-untyped-def]
    proof = tree.consistency_proof(old, new) if 0 < old < new else []
    return add_checkpoint(state, add_checkpoint_request(old, proof, note), witness, lambda: NOW)


def test_a_cosignature_is_the_c2sp_line_over_the_checkpoint_body(
    log: Signer, witness: WitnessSigner
) -> None:
    tree = leaves(5)
    note = signed(log, tree, 5)
    answer = ask(WitnessState({log.name: log.verifier}), witness, 0, tree, note, 5)
    assert answer.status == 200
    line = answer.text.strip()
    name, encoded = line.removeprefix("\u2014 ").split(" ")
    raw = base64.b64decode(encoded)
    assert name == witness.key.name and raw[:4] == witness.key.key_id and len(raw) == 76
    assert struct.unpack(">Q", raw[4:12])[0] == NOW
    body, _ = split_note(note)
    assert cosigned_message(body, NOW).startswith(b"cosignature/v1\ntime 1772413200\n")
    assert witness.key.open(line, body) == NOW
    assert cosigners(note, [line], [witness.key]) == [witness.key.name]


def test_keys_round_trip_and_a_wrong_id_or_type_is_refused(witness: WitnessSigner) -> None:
    assert WitnessKey.parse(witness.key.encode()) == witness.key
    assert WitnessSigner.parse(witness.encode()).key == witness.key
    name, _, material = witness.key.encode().split("+", 2)
    with pytest.raises(NoteError):
        WitnessKey.parse(f"{name}+00000000+{material}")
    with pytest.raises(NoteError):  # a note signer key (type 0x01) is not a cosigner key
        WitnessKey.parse(Signer.generate().verifier.encode())
    url = "http://127.0.0.1:9"
    assert parse_witnesses(f" {witness.key.encode()}@{url} ,") == [(witness.key, url)]
    with pytest.raises(NoteError):
        parse_witnesses(witness.key.encode())


def test_the_witness_cosigns_only_a_consistent_extension_of_what_it_cosigned(
    log: Signer, witness: WitnessSigner
) -> None:
    state = WitnessState({log.name: log.verifier})
    tree = leaves(20)
    assert ask(state, witness, 0, tree, signed(log, tree, 7), 7).status == 200
    # The log must say which size it extends: the witness answers with its own.
    wrong = ask(state, witness, 0, tree, signed(log, tree, 12), 12)
    assert (wrong.status, wrong.text, wrong.content_type) == (409, "7\n", "text/x.tlog.size")
    assert ask(state, witness, 7, tree, signed(log, tree, 12), 12).status == 200
    assert ask(state, witness, 12, tree, signed(log, tree, 12), 12).status == 200
    assert state.heads[log.name] == (12, tree.root(12))
    # A rewritten past (other leaves) has no valid consistency proof from 12.
    forged = leaves(20, b"forged")
    assert ask(state, witness, 12, forged, signed(log, forged, 20), 20).status == 422
    assert state.heads[log.name] == (12, tree.root(12))


def test_unknown_logs_bad_signatures_and_malformed_requests_are_refused(
    log: Signer, witness: WitnessSigner
) -> None:
    state = WitnessState({log.name: log.verifier})
    tree = leaves(4)
    other = Signer.generate()
    assert ask(state, witness, 0, tree, signed(other, tree, 4), 4).status == 404
    impostor = Signer(log.name, os.urandom(32))  # the log's name, another key
    assert ask(state, witness, 0, tree, signed(impostor, tree, 4), 4).status == 403
    note = signed(log, tree, 4)
    for body in ("", "old x\n\n" + note, "old 0\nnot-base64\n\n" + note, "old 5\n\n" + note):
        assert add_checkpoint(state, body, witness, lambda: NOW).status == 400
    assert state.heads == {}


def test_quorum_counts_only_valid_cosignatures_by_the_given_keys(
    log: Signer, witness: WitnessSigner
) -> None:
    tree = leaves(9)
    rng = random.Random(19)
    for _ in range(100):
        size = rng.randrange(1, 10)
        note = signed(log, tree, size)
        others = [WitnessSigner(f"w{i}", os.urandom(32)) for i in range(3)]
        body, _ = split_note(note)
        lines = [w.cosign(body, NOW) for w in others]
        stranger = WitnessSigner("w0", os.urandom(32))  # a known name, an unknown key
        old_note = signed(log, tree, size - 1 if size > 1 else 2)
        replayed = others[2].cosign(split_note(old_note)[0], NOW)
        keys = [w.key for w in others]
        report = Report()
        check_quorum(
            report,
            [(1, note, lines[:2]), (2, note, [lines[0], stranger.cosign(body, NOW), replayed])],
            keys,
            2,
        )
        assert [p.code for p in report.problems] == ["not_witnessed"]
        assert "#2" in report.problems[0].message


def test_a_malformed_witness_list_is_named_at_start_up(witness: WitnessSigner) -> None:
    good = f"{witness.key.encode()}@http://127.0.0.1:7380"
    settings = Settings.from_env({"CASETRAIL_WITNESSES": good, "CASETRAIL_WITNESS_QUORUM": "1"})
    assert settings.witness_quorum == 1 and parse_witnesses(settings.witnesses)[0][0] == witness.key
    with pytest.raises(ConfigError, match="CASETRAIL_WITNESSES"):
        Settings.from_env({"CASETRAIL_WITNESSES": witness.key.encode() + "@ftp://x"})
