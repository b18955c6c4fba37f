"""The verifier's Merkle math and signatures, adversarially: every proof of every tree up to
256 leaves verifies, any changed bit is rejected, malformed input is rejected without a crash."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from casetrail.audit.keys import Signer
from evidence.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from evidence.note import Checkpoint, NoteError, open_checkpoint
from evidence.tree import Tree

MAX_SIZE = 256
LEAVES = [leaf_hash(hashlib.sha256(i.to_bytes(4, "big")).digest()) for i in range(MAX_SIZE)]
TREE = Tree(LEAVES)
SIGNER = Signer("example.org/test-log", bytes(range(32)))


@cache
def root(size: int) -> bytes:
    return TREE.root(size)


def flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


def test_every_inclusion_proof_of_every_tree_up_to_256_leaves_verifies() -> None:
    for size in range(1, MAX_SIZE + 1):
        assert root(size) == root_of(LEAVES[:size])
        for index in range(size):
            proof = TREE.inclusion_proof(index, size)
            assert verify_inclusion(LEAVES[index], index, size, proof, root(size)), (index, size)


def test_every_pair_of_sizes_up_to_256_has_a_verifying_consistency_proof() -> None:
    for second in range(0, MAX_SIZE + 1):
        for first in range(0, second + 1):
            proof = TREE.consistency_proof(first, second)
            assert verify_consistency(first, second, root(first), root(second), proof), (
                first,
                second,
            )
    assert root(0) == EMPTY_ROOT


@given(data=st.data(), size=sizes)
def test_any_changed_bit_in_an_inclusion_proof_leaf_or_root_is_rejected(
    data: st.DataObject, size: int
) -> None:
    index = data.draw(st.integers(0, size - 1))
    proof = TREE.inclusion_proof(index, size)
    leaf, good_root = LEAVES[index], root(size)
    bit = data.draw(st.integers(0, 255))
    target = data.draw(st.sampled_from(["leaf", "root", "proof"] if proof else ["leaf", "root"]))
    if target == "leaf":
        assert not verify_inclusion(flip(leaf, bit), index, size, proof, good_root)
    elif target == "root":
        assert not verify_inclusion(leaf, index, size, proof, flip(good_root, bit))
    else:
        at = data.draw(st.integers(0, len(proof) - 1))
        changed = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        assert not verify_inclusion(leaf, index, size, changed, good_root)


@given(data=st.data(), second=st.integers(2, MAX_SIZE))
def test_any_changed_bit_in_a_consistency_proof_or_root_is_rejected(
    data: st.DataObject, second: int
) -> None:
    first = data.draw(st.integers(1, second - 1))
    proof = TREE.consistency_proof(first, second)
    bit = data.draw(st.integers(0, 255))
    target = data.draw(st.sampled_from(["first", "second", "proof"]))
    if target == "first":
        assert not verify_consistency(first, second, flip(root(first), bit), root(second), proof)
    elif target == "second":
        assert not verify_consistency(first, second, root(first), flip(root(second), bit), proof)
    else:
        at = data.draw(st.integers(0, len(proof) - 1))
        changed = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        assert not verify_consistency(first, second, root(first), root(second), changed)


@given(data=st.data(), size=sizes)
def test_a_proof_for_another_place_or_size_is_rejected(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(0, size - 1))
    proof = TREE.inclusion_proof(index, size)
    other_index = data.draw(
        st.integers(0, size - 1).filter(lambda i: i != index) if size > 1 else st.just(index)
    )
    if other_index != index:
        assert not verify_inclusion(LEAVES[index], other_index, size, proof, root(size))
    assert not verify_inclusion(LEAVES[index], index, size, [*proof, LEAVES[0]], root(size))
    if proof:
        assert not verify_inclusion(LEAVES[index], index, size, proof[:-1], root(size))


junk_hashes = st.lists(
    st.one_of(st.binary(max_size=40), st.integers(), st.text(max_size=5), st.none()), max_size=12
)
junk_numbers = st.one_of(st.integers(-(2**70), 2**70), st.booleans(), st.none(), st.floats())


@settings(max_examples=300)
@given(
    leaf=st.one_of(st.binary(max_size=40), st.none()),
    index=junk_numbers,
    size=junk_numbers,
    proof=junk_hashes,
    first=junk_numbers,
)
def test_malformed_proofs_are_rejected_without_a_crash(
    leaf: object, index: object, size: object, proof: list[object], first: object
) -> None:
    assert verify_inclusion(leaf, index, size, proof, root(7)) in (True, False)  # type: ignore[arg-type]
    assert verify_consistency(first, size, root(3), root(7), proof) in (True, False)  # type: ignore[arg-type]
    # A proof made of anything but well-formed hashes never verifies.
    if any(not isinstance(node, bytes) or len(node) != 32 for node in proof):
        assert not verify_inclusion(LEAVES[0], 0, 7, proof, root(7))  # type: ignore[arg-type]
        assert not verify_consistency(3, 7, root(3), root(7), proof)  # type: ignore[arg-type]


def signed_checkpoint(size: int) -> str:
    return SIGNER.sign_note(
        Checkpoint(SIGNER.name, size, root(size), "2026-03-02T01:00:00Z").text()
    )


@given(size=sizes, bit=st.integers(0, 64 * 8 - 1))
def test_any_changed_bit_in_a_checkpoint_signature_is_rejected(size: int, bit: int) -> None:
    note = signed_checkpoint(size)
    head, _, encoded = note.rstrip("\n").rpartition(" ")
    raw = base64.b64decode(encoded)
    forged = base64.b64encode(raw[:4] + flip(raw[4:], bit)).decode()
    assert open_checkpoint(note, SIGNER.verifier).size == size
    try:
        open_checkpoint(f"{head} {forged}\n", SIGNER.verifier)
    except NoteError:
        return
    raise AssertionError("a forged signature verified")


@given(size=sizes, data=st.data())
def test_any_changed_character_of_a_signed_checkpoint_is_rejected(
    size: int, data: st.DataObject
) -> None:
    note = signed_checkpoint(size)
    at = data.draw(st.integers(0, len(note) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda ch: ch != note[at]))
    changed = note[:at] + replacement + note[at + 1 :]
    try:
        checkpoint = open_checkpoint(changed, SIGNER.verifier)
    except NoteError:
        return
    raise AssertionError(f"an altered checkpoint verified: {checkpoint}")


@settings(max_examples=300)
@given(text=st.text(max_size=400))
def test_malformed_notes_are_rejected_without_a_crash(text: str) -> None:
    try:
        open_checkpoint(text, SIGNER.verifier)
    except NoteError:
        return
    raise AssertionError("random text verified as a checkpoint")
