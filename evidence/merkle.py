"""RFC 6962 / RFC 9162 Merkle tree hashing and proof verification. Pure: no I/O.

Part of the verifier (the security boundary): leaf and interior hashes are
domain-separated by the 0x00 / 0x01 prefixes of RFC 6962 §2.1; the log's leaves are the
40-byte entries `position (8 bytes, big-endian) || chain hash (32 bytes)`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_POSITION = 2**63 - 1


class ProofError(ValueError):
    """A proof or hash that cannot be checked (wrong shape, wrong size)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def log_entry(position: int, chain_hash: bytes) -> bytes:
    """The leaf entry of one event: its position in the notification log and its chain hash."""
    if not 0 <= position <= MAX_POSITION:
        raise ProofError(f"position {position} is out of range")
    if len(chain_hash) != HASH_SIZE:
        raise ProofError("a chain hash has 32 bytes")
    return position.to_bytes(8, "big") + chain_hash


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root of a tree from its frontier (the roots of its perfect subtrees, left to right)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        root = node_hash(subtree, root)
    return root


class Frontier:
    """Appends leaf hashes one by one; gives the root of the tree so far at any size."""

    def __init__(self) -> None:
        self.size = 0
        # (subtree size, subtree root), sizes strictly decreasing powers of two.
        self._stack: list[tuple[int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        size, digest = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, digest = left_size + size, node_hash(left, digest)
        self._stack.append((size, digest))
        self.size += 1

    def root(self) -> bytes:
        return root_from_frontier([digest for _, digest in self._stack])


def root_of(leaves: Sequence[bytes]) -> bytes:
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def _check_hashes(*hashes: bytes) -> None:
    for digest in hashes:
        if not isinstance(digest, bytes | bytearray) or len(digest) != HASH_SIZE:
            raise ProofError("every hash has 32 bytes")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` show the leaf hash `leaf` at `index` in the tree of `size` leaves with `root`?"""
    try:
        _check_hashes(leaf, root, *proof)
    except ProofError:
        return False
    if not isinstance(index, int) or not isinstance(size, int) or not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does `proof` show the tree of `second` leaves extends that of `first`?"""
    try:
        _check_hashes(first_root, second_root, *proof)
    except ProofError:
        return False
    if not isinstance(first, int) or not isinstance(second, int) or not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        # Every tree extends the empty one; its root is the hash of nothing.
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
