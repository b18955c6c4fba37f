"""The Merkle tree of the log, kept: the root of every perfect subtree of 16 leaves or
more (`audit_log_tree`), so that a root, an inclusion proof or a consistency proof
reads O(log n) rows instead of the whole log.

Derived data: the checkpoint job extends it from the hash-chain table (`extend`) before
it signs, and only complete blocks of 16 leaves are kept; the leaves after the last
block are read from the chain table when needed. A block's row also holds the positions
of its first and last leaves: the leaf index of an event is its block's first leaf plus
its rank among the block's positions. Nothing here is trusted: every proof it gives is
checked against a signed root, and the whole-store verify compares every kept row with
the tree it recomputes from the events.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from evidence.merkle import leaf_hash, log_entry, node_hash, root_of
from evidence.tree import (
    BLOCK,
    BLOCK_LEVEL,
    Nodes,
    Piece,
    consistency_ranges,
    inclusion_ranges,
    pieces,
    range_root,
)
from store.chain_links import CHAIN_TABLE
from store.db import Database

TREE_TABLE = "audit_log_tree"
TREE_COLUMNS = ("first_leaf", "level", "hash", "first_position", "last_position")
# Chain rows read at a time when extending the tree.
EXTEND_CHUNK = 1024 * BLOCK


class TreeIncomplete(LookupError):
    """The kept tree cannot give this root or proof (rows missing, or the log shorter).
    A chain row whose hash is not 32 bytes of hex is a ValueError."""


def create_statements() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {TREE_TABLE} (first_leaf BIGINT NOT NULL, "
        "level INTEGER NOT NULL, hash TEXT NOT NULL, first_position BIGINT, "
        "last_position BIGINT, PRIMARY KEY (first_leaf, level))",
        # A position's block: the first block whose last position is at or after it.
        f"CREATE INDEX IF NOT EXISTS {TREE_TABLE}_block ON {TREE_TABLE} (level, last_position)",
    ]


def _leaf(position: Any, chain_hash: Any) -> bytes:
    """A log leaf from a chain row; ValueError for a hash that is not 32 bytes of hex (an
    altered row: no proof is made from it)."""
    return leaf_hash(log_entry(int(position), bytes.fromhex(str(chain_hash))))


def _chain_after(db: Database, after: int | None, limit: int) -> list[tuple[Any, ...]]:
    where = "" if after is None else f"WHERE position > {int(after)} "
    with db.transaction(commit=False) as cur:
        return cur.tuples(
            f"SELECT position, hash FROM {CHAIN_TABLE} {where}ORDER BY position LIMIT {int(limit)}"
        )


def last_block(db: Database) -> tuple[int, int | None]:
    """(blocks kept, the last position of the last one) — (0, None) for an empty tree."""
    # The row of the largest first leaf is the last block's (its subtree the smallest):
    # one probe of the primary key from its end.
    row = db.query_one(
        f"SELECT first_leaf, level, last_position FROM {TREE_TABLE} "
        "ORDER BY first_leaf DESC, level DESC LIMIT 1"
    )
    if row is not None and row["level"] != BLOCK_LEVEL:  # an altered tree: look for it
        row = db.query_one(
            f"SELECT first_leaf, level, last_position FROM {TREE_TABLE} "
            f"WHERE level = {BLOCK_LEVEL} ORDER BY first_leaf DESC LIMIT 1"
        )
    if row is None:
        return 0, None
    return int(row["first_leaf"]) // BLOCK + 1, int(row["last_position"])


def extend(db: Database) -> int:
    """Keeps the roots of the blocks completed since the last kept one, and of the larger
    subtrees they complete, one transaction a chunk; the number of blocks kept now."""
    blocks, after = last_block(db)
    frontier = pieces(0, blocks * BLOCK)
    found = _node_rows(db, frontier)
    if len(found) != len(frontier):
        raise TreeIncomplete("the kept tree has lost a root of its frontier")
    stack = [(1 << level, found[(level, index)]) for level, index in frontier]
    nodes = Nodes(size=blocks * BLOCK, stack=stack)
    while True:
        rows = _chain_after(db, after, EXTEND_CHUNK)
        complete = len(rows) - len(rows) % BLOCK
        if not complete:
            return blocks
        kept = []
        for start in range(0, complete, BLOCK):
            block = rows[start : start + BLOCK]
            for position, chain_hash in block:
                nodes.append(_leaf(position, chain_hash))
            for first, level, digest in nodes.completed:
                ends = (block[0][0], block[-1][0]) if level == BLOCK_LEVEL else (None, None)
                kept.append((first, level, digest.hex(), *ends))
            nodes.completed.clear()
        with db.transaction() as cur:
            cur.insert_many(TREE_TABLE, TREE_COLUMNS, kept, on_conflict="ON CONFLICT DO NOTHING")
        blocks += complete // BLOCK
        after = int(rows[complete - 1][0])
        if len(rows) < EXTEND_CHUNK:
            return blocks


def forget(db: Database, leaves: int = 0) -> None:
    """Drops the kept roots of subtrees that reach past the first `leaves` leaves (all of
    them by default: the tree is then rebuilt from the chain table by `extend`)."""
    with db.transaction() as cur:
        cur.execute(
            f"DELETE FROM {TREE_TABLE} WHERE first_leaf + (CAST(1 AS BIGINT) << level) > ?",
            (int(leaves),),
        )


def _node_rows(db: Database, wanted: Iterable[Piece]) -> dict[Piece, bytes]:
    keys = sorted({(index << level, level) for level, index in wanted if level >= BLOCK_LEVEL})
    if not keys:
        return {}
    with db.transaction(commit=False) as cur:
        rows = cur.select_by_keys(
            TREE_TABLE, ("first_leaf", "level", "hash"), TREE_COLUMNS[:2], keys
        )
    found = {}
    for row in rows:
        level = int(row["level"])
        try:
            found[(level, int(row["first_leaf"]) >> level)] = bytes.fromhex(str(row["hash"]))
        except ValueError:
            continue  # an altered row: the proof through it fails, as it should
    return found


class StoredTree:
    """The kept tree and the chain rows after it: roots and proofs at any size up to the
    log's, reading only the rows they need. One object a request (it caches its reads;
    threads take turns: the witnesses are asked side by side).

    `tail_limit`: at most this many chain rows after the kept blocks are read (beyond it,
    `TreeIncomplete`: the tree is not kept up to there)."""

    def __init__(self, db: Database, tail_limit: int | None = None) -> None:
        self.db = db
        self.tail_limit = tail_limit
        self.blocks, self.after = last_block(db)
        self._tail: list[tuple[int, bytes]] = []  # (position, leaf) after the kept blocks
        self._tail_done = False
        self._nodes: dict[Piece, bytes] = {}
        self._block_rows: dict[int, list[tuple[int, bytes]]] = {}
        self._turn = threading.RLock()

    @property
    def kept(self) -> int:
        """Leaves covered by kept blocks."""
        return self.blocks * BLOCK

    @property
    def size(self) -> int:
        """The number of leaves of the log now (kept blocks and the chain rows after them)."""
        where = "" if self.after is None else f" WHERE position > {int(self.after)}"
        row = self.db.query_one(f"SELECT COUNT(*) AS n FROM {CHAIN_TABLE}{where}")
        return self.kept + (int(row["n"]) if row else 0)

    def _tail_leaves(self, count: int) -> list[tuple[int, bytes]]:
        """The first `count` (position, leaf) after the kept blocks (fewer at the end)."""
        if self.tail_limit is not None and count > self.tail_limit:
            raise TreeIncomplete(f"the tree is not kept up to {self.kept + count} leaves")
        while len(self._tail) < count and not self._tail_done:
            after = self._tail[-1][0] if self._tail else self.after
            want = max(count - len(self._tail), BLOCK)
            rows = _chain_after(self.db, after, want)
            self._tail += [(int(p), _leaf(p, h)) for p, h in rows]
            self._tail_done = len(rows) < want
        return self._tail[:count]

    def _check_size(self, size: int) -> None:
        """The log still has a leaf `size - 1` (a cheap check of its end: the newest
        events removed are found here, not only by the whole-store verify)."""
        if size < 0:
            raise TreeIncomplete(f"no tree has {size} leaves")
        if size > self.kept:
            if len(self._tail_leaves(size - self.kept)) < size - self.kept:
                raise TreeIncomplete(f"the log has fewer than {size} leaves")
        elif size and len(self._block((size - 1) // BLOCK)) <= (size - 1) % BLOCK:
            raise TreeIncomplete(f"the log has lost its leaf {size - 1}")

    def _block(self, block: int) -> list[tuple[int, bytes]]:
        """The (position, leaf) of a block's leaves, in position order."""
        if block >= self.blocks:
            first = (block - self.blocks) * BLOCK
            return self._tail_leaves(first + BLOCK)[first:]
        if block not in self._block_rows:
            row = self.db.query_one(
                f"SELECT first_position FROM {TREE_TABLE} WHERE first_leaf = ? AND level = ?",
                (block * BLOCK, BLOCK_LEVEL),
            )
            if row is None or row["first_position"] is None:
                raise TreeIncomplete(f"the kept tree has lost block {block}")
            self._read_block(block, int(row["first_position"]))
        return self._block_rows[block]

    def _read_block(self, block: int, first_position: int) -> None:
        rows = _chain_after(self.db, first_position - 1, BLOCK)
        self._block_rows[block] = [(int(p), _leaf(p, h)) for p, h in rows]

    def _locate(self, positions: Sequence[int], size: int) -> dict[int, int | None]:
        """The leaf index of each position among the first `size` leaves; None for one
        after them (a position after the kept blocks not among the first `size`)."""
        found: dict[int, int | None] = {}
        for position in positions:
            if self.after is not None and position <= self.after:
                row = self.db.query_one(
                    f"SELECT first_leaf, first_position FROM {TREE_TABLE} "
                    f"WHERE level = {BLOCK_LEVEL} AND last_position >= ? "
                    "ORDER BY last_position LIMIT 1",
                    (position,),
                )
                if row is None or row["first_position"] is None:
                    continue
                block = int(row["first_leaf"]) // BLOCK
                if block not in self._block_rows:
                    self._read_block(block, int(row["first_position"]))
                leaves, first = self._block_rows[block], block * BLOCK
            else:
                leaves, first = self._tail_leaves(max(size - self.kept, 0)), self.kept
                found[position] = None
            for rank, (at, _) in enumerate(leaves):
                if at == position:
                    found[position] = first + rank if first + rank < size else None
        return found

    def _fetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Reads, in one statement, the kept roots that these ranges' hashes need."""
        wanted: set[Piece] = set()
        for start, end in ranges:
            for piece in pieces(start, end):
                wanted.update(self._expand(piece))
        missing = [p for p in wanted if p not in self._nodes and self._stored(p)]
        self._nodes.update(_node_rows(self.db, missing))

    def _stored(self, piece: Piece) -> bool:
        level, index = piece
        return level >= BLOCK_LEVEL and (index + 1) << level <= self.kept

    def _expand(self, piece: Piece) -> Iterable[Piece]:
        """The kept roots (and blocks after them) a subtree's root is made of."""
        level, index = piece
        if level <= BLOCK_LEVEL or self._stored(piece):
            return [piece]
        return [*self._expand((level - 1, 2 * index)), *self._expand((level - 1, 2 * index + 1))]

    def _perfect(self, level: int, index: int) -> bytes:
        digest = self._nodes.get((level, index))
        if digest is not None:
            return digest
        if self._stored((level, index)):
            raise TreeIncomplete(f"the kept tree has lost the root of leaves {index << level}…")
        if level > BLOCK_LEVEL:  # a subtree reaching past the kept blocks
            digest = node_hash(
                self._perfect(level - 1, 2 * index), self._perfect(level - 1, 2 * index + 1)
            )
        else:
            first = index << level
            leaves = self._block(first // BLOCK)[first % BLOCK :][: 1 << level]
            if len(leaves) < 1 << level:
                raise TreeIncomplete(f"the log has no leaf {first + (1 << level) - 1}")
            digest = root_of([leaf for _, leaf in leaves])
        self._nodes[(level, index)] = digest
        return digest

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return self._proof([(0, size)], size)[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        return self._proof(inclusion_ranges(index, size), size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        second = self.size if second is None else second
        return self._proof(consistency_ranges(first, second), second)

    def _proof(self, ranges: list[tuple[int, int]], size: int) -> list[bytes]:
        with self._turn:
            self._check_size(size)
            self._fetch(ranges)
            return [range_root(start, end, self._perfect) for start, end in ranges]

    def leaf_index(self, position: int) -> int | None:
        """The leaf index of the event at `position`, or None if it is no leaf."""
        with self._turn:
            return self._locate([position], self.size).get(position)

    def proofs(
        self, positions: Sequence[int], size: int
    ) -> dict[int, tuple[int, list[bytes]] | None]:
        """For each position that is one of the first `size` leaves: its leaf index and
        inclusion proof in the tree of `size` leaves; None for a position after them.
        A position that is no leaf is left out."""
        with self._turn:
            self._check_size(size)
            indexes = self._locate(sorted(set(positions)), size)
            ranges = {p: inclusion_ranges(i, size) for p, i in indexes.items() if i is not None}
            self._fetch(r for rs in ranges.values() for r in rs)
            return {
                p: None
                if i is None
                else (i, [range_root(s, e, self._perfect) for s, e in ranges[p]])
                for p, i in indexes.items()
            }


def kept_roots(db: Database, low: int, high: int) -> dict[tuple[int, int], tuple[Any, Any, Any]]:
    """The kept roots of the subtrees whose first leaf is in [low, high): (hash, first
    position, last position) by (first leaf, level), as stored (the verifier compares)."""
    with db.transaction(commit=False) as cur:
        rows = cur.tuples(
            f"SELECT first_leaf, level, hash, first_position, last_position FROM {TREE_TABLE} "
            f"WHERE first_leaf >= {int(low)} AND first_leaf < {int(high)}"
        )
    found = {}
    for first, level, *kept in rows:
        if isinstance(first, int) and isinstance(level, int) and 0 <= level < 64:
            found[(first, level)] = (kept[0], kept[1], kept[2])
    return found
