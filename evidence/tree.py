"""Building RFC 9162 proofs from the log's leaf hashes (the server side; pure).

The verifier never trusts these: it checks every proof with `merkle.verify_*`.

A proof is a list of subtree hashes; which subtrees, as ranges of leaves `[start, end)`,
depends only on the index and the sizes (`inclusion_ranges`, `consistency_ranges`). Each
such range is made of perfect subtrees (`pieces`), each named by its level (log2 of its
leaves) and its index at that level: a store that keeps the roots of the perfect
subtrees (`Nodes`) answers any proof with O(log n) of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from evidence.merkle import EMPTY_ROOT, Frontier, node_hash, root_from_frontier

Range = tuple[int, int]  # leaves [start, end)
Piece = tuple[int, int]  # (level, index): leaves [index << level, (index + 1) << level)


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def pieces(start: int, end: int) -> list[Piece]:
    """The perfect subtrees, left to right, whose roots folded from the right give the
    hash of the leaves [start, end) (a range of the RFC's recursion: `start` a multiple
    of the first piece's size)."""
    found = []
    while start < end:
        level = (end - start).bit_length() - 1
        found.append((level, start >> level))
        start += 1 << level
    return found


def range_root(start: int, end: int, perfect: Callable[[int, int], bytes]) -> bytes:
    """The hash of leaves [start, end) from `perfect(level, index)`, its pieces' roots."""
    if start == end:
        return EMPTY_ROOT
    return root_from_frontier([perfect(level, index) for level, index in pieces(start, end)])


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees of RFC 9162 §2.1.3.1 PATH(index, D[0:size]), in proof order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start = start + k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The subtrees of RFC 9162 §2.1.4.1 PROOF(first, D[0:second]), in proof order."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first == 0 or first == second:
        return []
    return _subproof(first, 0, second, True)


def _subproof(m: int, start: int, end: int, complete: bool) -> list[Range]:
    n = end - start
    if m == n:
        return [] if complete else [(start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, start, start + k, complete), (start + k, end)]
    return [*_subproof(m - k, start + k, end, False), (start, start + k)]


class Tree:
    """The Merkle tree over a fixed list of leaf hashes, with cached subtree roots."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self._subtree = lru_cache(maxsize=None)(self._subtree_uncached)

    @property
    def size(self) -> int:
        return len(self.leaves)

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def _subtree_uncached(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self.leaves[start]
        k = _split(end - start)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size])."""
        size = self.size if size is None else size
        self._check_size(size)
        return [self._subtree(*r) for r in inclusion_ranges(index, size)]

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(first, D[0:second])."""
        second = self.size if second is None else second
        self._check_size(second)
        return [self._subtree(*r) for r in consistency_ranges(first, second)]

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {size}")


# The lowest level of subtree a store keeps: blocks of 16 leaves (a proof reads the
# leaves of the event's own block and stored roots above it).
BLOCK_LEVEL = 4
BLOCK = 1 << BLOCK_LEVEL


class Nodes(Frontier):
    """A `Frontier` that also gives the root of every perfect subtree of at least
    `2 ** low` leaves as it completes: (index of its first leaf, level, root) in
    `completed`. It starts after `size` leaves (a multiple of 2 ** low) whose frontier is
    `stack` ((subtree size, root), largest first), or at leaf `offset` of a larger tree."""

    def __init__(
        self,
        *,
        offset: int = 0,
        low: int = BLOCK_LEVEL,
        size: int = 0,
        stack: Sequence[tuple[int, bytes]] = (),
    ) -> None:
        super().__init__()
        self.offset, self.low_size = offset, 1 << low
        self.size = size
        self._stack = list(stack)
        self.completed: list[tuple[int, int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        size, digest = 1, leaf
        stack = self._stack
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, digest = left_size + size, node_hash(left, digest)
            if size >= self.low_size:
                first = self.offset + self.size + 1 - size
                self.completed.append((first, size.bit_length() - 1, digest))
        stack.append((size, digest))
        self.size += 1

    def digests(self) -> list[bytes]:
        return [digest for _, digest in self._stack]
