"""The kept Merkle tree of the log (`store.log_tree`) gives the roots and proofs the
whole tree in memory gives, at every size, kept in several steps over positions with
gaps (as PostgreSQL's notification ids have them)."""

from __future__ import annotations

import hashlib
import random
import uuid

import pytest

from casetrail.bootstrap import Casetrail
from evidence.merkle import leaf_hash, log_entry
from evidence.tree import Tree
from store import log_tree
from store.chain_links import CHAIN_COLUMNS, CHAIN_TABLE
from store.log_tree import StoredTree, TreeIncomplete

LEAVES = 300


def add_links(ct: Casetrail, positions: list[int]) -> list[bytes]:
    """Chain rows at these positions (their hashes need not chain: the tree is over the
    positions and hashes as stored); the log's leaves they make."""
    rows, leaves = [], []
    for position in positions:
        digest = hashlib.sha256(position.to_bytes(8, "big")).hexdigest()
        rows.append(
            (str(uuid.uuid4()), 1, position, "X", "t", "a", "r", "u", "0" * 64, "0" * 64, digest)
        )
        leaves.append(leaf_hash(log_entry(position, bytes.fromhex(digest))))
    with ct.db.transaction() as cur:
        cur.insert_many(CHAIN_TABLE, CHAIN_COLUMNS, rows)
    return leaves


def test_the_kept_tree_answers_every_root_and_proof_as_the_whole_tree_does(
    casetrail: Casetrail,
) -> None:
    rng = random.Random(19)
    positions = sorted(rng.sample(range(1, 5 * LEAVES), LEAVES))
    leaves: list[bytes] = []
    for start, end in ((0, 100), (100, 137), (137, 250), (250, LEAVES)):
        leaves += add_links(casetrail, positions[start:end])
        assert log_tree.extend(casetrail.db) == end // 16
    whole = Tree(leaves)
    kept = StoredTree(casetrail.db)
    assert kept.kept == 18 * 16 and kept.size == LEAVES
    for size in range(LEAVES + 1):
        assert kept.root(size) == whole.root(size), size
    for _ in range(400):
        size = rng.randint(1, LEAVES)
        index, first = rng.randrange(size), rng.randint(0, size)
        assert kept.inclusion_proof(index, size) == whole.inclusion_proof(index, size)
        assert kept.consistency_proof(first, size) == whole.consistency_proof(first, size)
    for index, position in enumerate(positions):
        assert StoredTree(casetrail.db).leaf_index(position) == index
    assert StoredTree(casetrail.db).leaf_index(positions[-1] + 1) is None
    size = 290
    proofs = StoredTree(casetrail.db).proofs(
        [positions[3], positions[200], positions[295], 0], size
    )
    assert proofs == {
        positions[3]: (3, whole.inclusion_proof(3, size)),
        positions[200]: (200, whole.inclusion_proof(200, size)),
        positions[295]: None,  # after the first 290 leaves
    }


def test_a_tree_not_kept_that_far_is_refused_and_a_lost_root_is_not_made_up(
    casetrail: Casetrail,
) -> None:
    add_links(casetrail, list(range(1, 101)))
    with pytest.raises(TreeIncomplete):
        StoredTree(casetrail.db, tail_limit=64).root(100)
    log_tree.extend(casetrail.db)
    assert (
        StoredTree(casetrail.db, tail_limit=64).root(100)
        == Tree(
            [
                leaf_hash(log_entry(p, hashlib.sha256(p.to_bytes(8, "big")).digest()))
                for p in range(1, 101)
            ]
        ).root()
    )
    with casetrail.db.transaction() as cur:
        cur.execute(f"DELETE FROM {log_tree.TREE_TABLE} WHERE level = 5")
    with pytest.raises(TreeIncomplete):
        StoredTree(casetrail.db).root(100)
    with pytest.raises(TreeIncomplete):
        log_tree.extend(casetrail.db)
