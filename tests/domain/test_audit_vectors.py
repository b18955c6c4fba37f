"""The golden vectors of docs/hash-chain.md, recomputed."""

from __future__ import annotations

from pathlib import Path

from casetrail.audit.keys import Signer
from evidence.chain import GENESIS, ChainEntry, canonical_encoding, data_hash, event_hash
from evidence.merkle import EMPTY_ROOT, leaf_hash, log_entry, root_of
from evidence.note import Checkpoint, VerifierKey, open_checkpoint, open_note

DOC = (Path(__file__).resolve().parents[2] / "docs" / "hash-chain.md").read_text()
CASE = "6f1c2a3e-8d4b-4c5a-9e7f-0a1b2c3d4e5f"
STATE_1 = '{"data":{"summary":"鄰里糾紛"}}'.encode()
STATE_2 = b'{"data":{"complexity":"ordinary"}}'
ENTRY_1 = ChainEntry(
    "DisputeRegistered", "2026-03-02T01:00:00+00:00", "u_worker", "caseworker", "320102"
)
ENTRY_2 = ChainEntry(
    "DisputeTriaged", "2026-03-02T02:30:00+00:00", "u_worker", "caseworker", "320102"
)
HASH_1 = "11388d308244b03bdfc9762963c4bd70fdfd5237558ee0644fa2c4b66acf7bf6"
HASH_2 = "1b3e5adf347e2e6d0047efded7f60c9738d16d3ba8e5ffa45b38d23fc66d9a13"
SIGNER = "PRIVATE+KEY+example.org/casetrail+0e353049+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
VERIFIER = "example.org/casetrail+0e353049+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"


def documented(value: str) -> bool:
    return value in DOC


def test_the_documented_chain_of_two_events_recomputes() -> None:
    assert STATE_1.hex() in DOC
    d1 = data_hash(STATE_1)
    assert d1 == "2ffbef51739e1e003e9d7e7d2745a75e398747b964e7c6cf7dc44cd23f2893e0"
    encoded = canonical_encoding(
        CASE, 1, ENTRY_1, d1, GENESIS, topic="domain.dispute:DisputeRegistered"
    )
    assert documented(encoded.decode())
    h1 = event_hash(CASE, 1, ENTRY_1, d1, GENESIS, topic="domain.dispute:DisputeRegistered")
    d2 = data_hash(STATE_2)
    h2 = event_hash(CASE, 2, ENTRY_2, d2, h1, topic="domain.dispute:DisputeTriaged")
    assert (h1, h2) == (HASH_1, HASH_2)
    assert all(documented(value) for value in (d1, d2, h1, h2))


def test_the_documented_merkle_leaves_and_roots_recompute() -> None:
    leaf_1 = leaf_hash(log_entry(1, bytes.fromhex(HASH_1)))
    leaf_2 = leaf_hash(log_entry(2, bytes.fromhex(HASH_2)))
    assert documented(log_entry(1, bytes.fromhex(HASH_1)).hex())
    assert documented(leaf_1.hex()) and documented(leaf_2.hex())
    assert documented(root_of([leaf_1, leaf_2]).hex())
    assert root_of([]) == EMPTY_ROOT and documented(EMPTY_ROOT.hex())


def test_the_tree_reproduces_certificate_transparency_reference_roots() -> None:
    entries = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    leaves = [leaf_hash(bytes.fromhex(entry)) for entry in entries]
    expected = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    assert [root_of(leaves[:n]).hex() for n in range(1, 9)] == expected
    assert documented(expected[-1])


def test_the_documented_checkpoint_is_signed_byte_for_byte() -> None:
    signer = Signer.parse(SIGNER)
    assert signer.verifier.encode() == VERIFIER and documented(SIGNER) and documented(VERIFIER)
    leaves = [leaf_hash(log_entry(p, bytes.fromhex(h))) for p, h in ((1, HASH_1), (2, HASH_2))]
    checkpoint = Checkpoint("example.org/casetrail", 2, root_of(leaves), "2026-03-02T03:00:00Z")
    note = signer.sign_note(checkpoint.text())
    assert documented(note.rstrip("\n"))
    assert open_checkpoint(note, VerifierKey.parse(VERIFIER)) == checkpoint


def test_notes_interoperate_with_gos_sumdb_note_package() -> None:
    # The example of golang.org/x/mod/sumdb/note's documentation.
    signer = Signer.parse(
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    )
    text = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
    )
    go_note = (
        text
        + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    assert signer.sign_note(text) == go_note
    key = VerifierKey.parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert open_note(go_note, key) == text
