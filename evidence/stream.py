"""The verifier of a whole store, streaming: the rows come in position order, chunk by
chunk, and only what the next check needs is kept. Pure: the caller reads the rows and
answers the look-ups; this module decides.

Each range of the log (a run of leaves starting at a multiple of a power of two) is
checked by a `RangeChecker`, possibly in its own process; `combine` joins the ranges'
results: their Merkle subtrees into the roots at the checkpoints' sizes, and their
problems. The per-event checks are those of `verifier.verify_log`, unchanged. The chain
checks take a fast path: an event whose link follows the link of the case's previous
event (remembered for the most recent cases, otherwise looked up by key) is in order; any
case where that does not hold is *irregular* and re-checked whole at the end by
`check_cases`, with `verify_log`'s own chain check, so that every finding reads the same
as when the whole store was held in memory. The caller adds to those the cases with a key
(case, version) stored twice in either table, which it counts apart.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evidence.chain import GENESIS, link_hash
from evidence.fields import _UUIDS, _hex32, _int, _uuid
from evidence.merkle import (
    EMPTY_ROOT,
    MAX_POSITION,
    Frontier,
    leaf_hash,
    log_entry,
    root_from_frontier,
    root_of,
)
from evidence.tree import BLOCK, BLOCK_LEVEL, Nodes
from evidence.verifier import (
    Decoder,
    LinkRow,
    Opened,
    Problem,
    Report,
    StoredRow,
    _check_chain,
    _check_event,
    link_key,
    match_roots,
    stream_label,
    type_of_topic,
)

Key = tuple[str, int]
# The positions of the stored events with each of these keys (case id, version).
EventLookup = Callable[[Sequence[Key]], dict[Key, list[int]]]
# The hash-chain rows with each of these keys.
LinkLookup = Callable[[Sequence[Key]], dict[Key, LinkRow]]
# Cases whose chains were last seen most recently, kept to follow their next event.
RECENT_CASES = 10_000
# A kept root of the log's tree (`store.log_tree`): its hash, and for a block of 16
# leaves the positions of its first and last leaves.
KeptRoot = tuple[Any, Any, Any]
# The kept roots of the subtrees whose first leaf is in [lo, hi), by (first leaf, level).
KeptLookup = Callable[[int, int], dict[tuple[int, int], KeptRoot]]


@dataclass
class Partial:
    """What one range of the log gives `combine` (small: no rows, no leaves)."""

    offset: int  # the index of the range's first leaf in the log
    count: int = 0
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    irregular: set[str] = field(default_factory=set)
    # The range's own subtree roots (its frontier) at its end.
    digests: list[bytes] = field(default_factory=list)
    # Each checkpoint size that falls inside the range (the size in the whole log, rising),
    # the root of the range's leaves up to it (32 bytes each: its frontier folded, as
    # `root_from_frontier` folds it), and the positions of the leaves just before and
    # just after it (NO_POSITION for one after the range's end). Compact: a store holds
    # a checkpoint for every five minutes of its life.
    sizes_at: array[int] = field(default_factory=lambda: array("q"))
    roots_at: bytearray = field(default_factory=bytearray)
    last_at: array[int] = field(default_factory=lambda: array("q"))
    next_at: array[int] = field(default_factory=lambda: array("q"))
    first_position: int | None = None  # the position of the range's first leaf
    # The kept tree against the recomputed one: roots that differ (first leaf, level of
    # the first few, and how many), and kept roots of subtrees reaching past the range.
    tree_altered: list[tuple[int, int]] = field(default_factory=list)
    tree_altered_count: int = 0
    kept_open: dict[tuple[int, int], KeptRoot] = field(default_factory=dict)


# No leaf there (after the log's end).
NO_POSITION = -(2**63)


class _Frontier(Frontier):
    def digests(self) -> list[bytes]:
        return [digest for _, digest in self._stack]


class RangeChecker:
    """Checks the rows of one range, fed in position order chunk by chunk."""

    def __init__(
        self,
        offset: int,
        sizes: Iterable[int],
        events: EventLookup,
        links: LinkLookup,
        *,
        decode: Decoder | None = None,
        case: str | None = None,
        recent: int = RECENT_CASES,
        kept: KeptLookup | None = None,
    ) -> None:
        """`case`: check only that case's events (the others give the log's leaves from
        their links' hashes, as `verify_log` does). `kept`: the kept tree's roots, each
        compared with the root recomputed from the events. `sizes`: the checkpoints'
        sizes, rising (an `array('q')` is not copied)."""
        self.partial = Partial(offset)
        self.report = Report(problems=self.partial.problems)
        self.sizes = sizes if isinstance(sizes, array) else array("q", sorted(set(sizes)))
        self.next_index = bisect_right(self.sizes, offset)
        self.next_size = self._size_at(self.next_index)
        self.after_size = False
        self.lookup_events, self.lookup_links = events, links
        self.decode, self.case = decode, case
        self.recent = recent
        # case -> (version, position, link hash) of its latest event seen, oldest first.
        self.heads: dict[str, tuple[int, int, str | None]] = {}
        self.frontier = Nodes(offset=offset)
        self.previous_position = 0
        self.lookup_kept = kept
        self.kept: dict[tuple[int, int], KeptRoot] = {}
        self.block_first = 0  # the position of the current block's first leaf

    def feed(self, rows: Sequence[Sequence[Any]], range_links: Sequence[Sequence[Any]]) -> None:
        """One chunk: its rows in position order, and the hash-chain rows whose positions
        fall between the chunk's first and last (and, for the range's first and last
        chunks, to the range's bounds), both as `StoredRow`s and `LinkRow`s or as plain
        tuples in their order."""
        partial = self.partial
        if self.lookup_kept is not None:
            first = partial.offset + self.frontier.size
            self.kept.update(self.lookup_kept(first, first + len(rows)))
        if self._feed_regular(rows, range_links):
            return
        self._feed(
            [StoredRow._make(row) for row in rows], [LinkRow._make(link) for link in range_links]
        )

    def _feed(self, rows: Sequence[StoredRow], range_links: Sequence[LinkRow]) -> None:
        """`feed`, for any chunk."""
        partial, report = self.partial, self.report
        in_range: dict[Key, LinkRow] = {}
        for link in range_links:
            key = link_key(link, report)
            if key is None:
                continue
            if key in in_range:
                partial.irregular.add(key[0])
            in_range[key] = link
        keys = [(_uuid(row.case_id), _int(row.version)) for row in rows]
        by_key = dict(in_range)
        absent = [k for k in keys if k[0] is not None and k[1] is not None and k not in by_key]
        if absent:
            by_key.update(self.lookup_links(absent))  # type: ignore[arg-type]
        matched: set[Key] = set()
        pending: list[tuple[str, int, int, LinkRow]] = []
        for row, (case_id, version) in zip(rows, keys, strict=True):
            position = _int(row.position)
            if position is None or case_id is None or version is None:
                report.add(
                    "malformed_event",
                    f"A stored event row has no valid position, case or version "
                    f"({row.position!r}, {row.case_id!r}, {row.version!r}): the row was altered.",
                )
                self._leaf(leaf_hash(b"malformed"), self.previous_position)
                continue
            if position <= self.previous_position:
                report.add(
                    "duplicate_position",
                    f"Two stored events share position {position}: rows were duplicated.",
                    position=position,
                )
            self.previous_position = max(self.previous_position, position)
            found = by_key.get((case_id, version))
            if self.case is not None and case_id != self.case:
                chain_hash = _hex32(found.hash) if found is not None else None
                self._leaf(leaf_hash(log_entry(position, chain_hash or b"\x00" * 32)), position)
                continue
            partial.checked += 1
            recomputed = _check_event(report, row, found, case_id, version, position, self.decode)
            chain_hash = bytes.fromhex(recomputed) if recomputed is not None else None
            self._leaf(leaf_hash(log_entry(position, chain_hash or b"\x00" * 32)), position)
            self._follow(case_id, version, position, found, in_range, matched, pending)
        for key in in_range:
            if key not in matched and self.case in (None, key[0]):
                partial.irregular.add(key[0])
        self._resolve(pending, by_key)

    def _feed_regular(self, rows: Sequence[Any], links: Sequence[Any]) -> bool:
        """The chunk as an untouched store gives it: each row's link beside it, at its
        position, under its case and version, positions rising, no key twice. Then the
        checks of `feed` reduce to these (same findings, a tenth of its work per row);
        False, having done nothing, for any other chunk."""
        if self.case is not None or len(rows) != len(links):
            return False
        uuids = _UUIDS
        cases = []
        previous = self.previous_position
        for row, link in zip(rows, links, strict=True):
            position, version, raw = row[0], row[2], row[1]
            case_id = uuids.get(raw, "")
            if case_id == "":
                case_id = _uuid(raw)
            if (
                type(position) is not int
                or position <= previous
                or type(version) is not int
                or version < 1
                or case_id is None
                or link[0] != case_id
                or type(link[1]) is not int
                or link[1] != version
                or type(link[2]) is not int
                or link[2] != position
                or position > MAX_POSITION
            ):
                return False
            previous = position
            cases.append(case_id)
        if len({(case_id, row[2]) for case_id, row in zip(cases, rows, strict=True)}) != len(rows):
            return False
        partial, report, decode = self.partial, self.report, self.decode
        heads, recent, irregular = self.heads, self.recent, partial.irregular
        pending: list[tuple[str, int, int, Any]] = []
        sha256 = hashlib.sha256
        for row, link, case_id in zip(rows, links, cases, strict=True):
            position, version, topic, state = row[0], row[2], row[3], row[4]
            # Every check of `_check_event` passes (then it would find nothing and give
            # this hash), or it runs to say what is wrong.
            recomputed = None
            try:
                if (
                    type(state) is bytes
                    and type(topic) is str
                    and type_of_topic(topic) == link[3]
                    and sha256(state).hexdigest() == link[8]
                ):
                    recomputed = link_hash(case_id, version, topic, *link[3:9], link[9])
                    if recomputed != link[10] or (decode is not None and decode(row) != link[3:8]):
                        recomputed = None
            except Exception:  # a field of the wrong type, bytes that do not decode
                recomputed = None
            if recomputed is None:
                recomputed = _check_event(
                    report,
                    StoredRow._make(row),
                    LinkRow._make(link),
                    case_id,
                    version,
                    position,
                    decode,
                )
            chain_hash = bytes.fromhex(recomputed) if recomputed is not None else b"\x00" * 32
            self._leaf(
                sha256(b"\x00" + position.to_bytes(8, "big") + chain_hash).digest(), position
            )
            # `_follow`, for a link known to be at the event's position.
            head = heads.pop(case_id, None)
            heads[case_id] = (version, position, link[10] if isinstance(link[10], str) else None)
            if len(heads) > recent:
                del heads[next(iter(heads))]
            if head is None:
                pending.append((case_id, version, position, link))
            elif head[0] != version - 1 or head[1] >= position or head[2] != link[9]:
                irregular.add(case_id)
        self.previous_position = previous
        partial.checked += len(rows)
        if any(version > 1 for _, version, _, _ in pending):
            self._resolve(pending, {(link[0], link[1]): link for link in links})
        else:
            self._resolve(pending, {})
        return True

    def _size_at(self, index: int) -> int:
        return self.sizes[index] if index < len(self.sizes) else -1

    def _leaf(self, leaf: bytes, position: int) -> None:
        frontier, partial = self.frontier, self.partial
        index = partial.offset + frontier.size
        if self.after_size:  # the first leaf after a checkpoint's size
            self.after_size = False
            partial.next_at[-1] = position
        if not frontier.size:
            partial.first_position = position
        if not index % BLOCK:
            self.block_first = position
        frontier.append(leaf)
        if frontier.completed:
            self._compare_kept(position)
        partial.count += 1
        if index + 1 == self.next_size:
            partial.sizes_at.append(index + 1)
            partial.roots_at += root_from_frontier(frontier.digests())
            partial.last_at.append(position)
            partial.next_at.append(NO_POSITION)
            self.after_size = True
            self.next_index += 1
            self.next_size = self._size_at(self.next_index)

    def _follow(
        self,
        case_id: str,
        version: int,
        position: int,
        found: LinkRow | None,
        in_range: dict[Key, LinkRow],
        matched: set[Key],
        pending: list[tuple[str, int, int, LinkRow]],
    ) -> None:
        """The fast path of the chain check for one event."""
        irregular = self.partial.irregular
        head = self.heads.pop(case_id, None)
        self.heads[case_id] = (version, position, _text(found.hash) if found else None)
        if len(self.heads) > self.recent:
            del self.heads[next(iter(self.heads))]
        if found is None or _int(found.position) != position or version < 1:
            irregular.add(case_id)
            return
        if in_range.get((case_id, version)) is found:
            matched.add((case_id, version))
        if head is None:
            pending.append((case_id, version, position, found))
        elif head[0] != version - 1 or head[1] >= position or head[2] != found.prev_hash:
            irregular.add(case_id)

    def _resolve(self, pending: list[tuple[str, int, int, Any]], by_key: dict[Key, Any]) -> None:
        """Events whose case's previous event is not remembered: looked up by key."""
        if not pending:
            return
        wanted: list[Key] = []
        for case_id, version, _, _ in pending:
            if version > 1:
                wanted += [(case_id, version), (case_id, version - 1)]
        stored = self.lookup_events(wanted) if wanted else {}
        links = dict(by_key)
        absent = [(c, v - 1) for c, v, _, _ in pending if v > 1 and (c, v - 1) not in by_key]
        if absent:
            links.update(self.lookup_links(absent))
        for case_id, version, position, found in pending:
            if version == 1:
                # A first event: nothing before it to follow. A second copy of it anywhere
                # is found by `duplicated` (the caller's count of keys stored twice).
                if found[9] != GENESIS:  # its prev_hash
                    self.partial.irregular.add(case_id)
                continue
            before = stored.get((case_id, version - 1), [])
            link = links.get((case_id, version - 1))
            if (
                len(stored.get((case_id, version), ())) != 1
                or len(before) != 1
                or before[0] >= position
                or link is None
                or _text(link[10]) != found[9]  # the link before: its hash; this one's prev
            ):
                self.partial.irregular.add(case_id)

    def _compare_kept(self, last_position: int) -> None:
        """The roots just completed against the kept tree's (where it keeps them)."""
        partial = self.partial
        for first, level, digest in self.frontier.completed:
            kept = self.kept.pop((first, level), None)
            if kept is None:
                continue
            ends = (self.block_first, last_position) if level == BLOCK_LEVEL else (None, None)
            if kept[0] != digest.hex() or (_int(kept[1]), _int(kept[2])) != ends:
                partial.tree_altered_count += 1
                if len(partial.tree_altered) < 3:
                    partial.tree_altered.append((first, level))
        self.frontier.completed.clear()

    def result(self) -> Partial:
        self.partial.digests = self.frontier.digests()
        self.partial.kept_open = self.kept
        return self.partial


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def combine(partials: Sequence[Partial], opened: Opened, report: Report | None = None) -> Report:
    """The report of the ranges together (in log order, each starting where the one
    before ended, every one but the last a perfect subtree), checked against every opened
    checkpoint (`open_checkpoints`, whose problems `report` holds: each signature is
    checked once). The irregular cases are still to be checked by `check_cases`. The
    partials' roots and positions at the checkpoints' sizes are moved out of them."""
    report = report if report is not None else Report()
    before = _Frontier()  # the ranges so far, each a leaf of this tree of subtrees
    # The log's root and the positions around it at each checkpoint size (rising).
    sizes, roots, last, after = array("q"), bytearray(), array("q"), array("q")
    first: int | None = None
    problems: list[Problem] = []
    for partial in partials:
        if partial.offset != report.log_size:
            raise ValueError("the ranges do not follow each other")
        if first is None:
            first = partial.first_position
        if after and after[-1] == NO_POSITION and sizes[-1] == partial.offset:
            after[-1] = NO_POSITION if partial.first_position is None else partial.first_position
        # `root_from_frontier` folds from the right: the range's own frontier, folded,
        # stands for it after the ranges before.
        prefix = before.digests()
        at = partial.roots_at
        for index in range(len(partial.sizes_at)):
            roots += root_from_frontier([*prefix, bytes(at[32 * index : 32 * index + 32])])
        sizes += partial.sizes_at
        last += partial.last_at
        after += partial.next_at
        for moved in (partial.sizes_at, partial.roots_at, partial.last_at, partial.next_at):
            del moved[:]
        problems += partial.problems
        report.checked_events += partial.checked
        report.log_size += partial.count
        if partial.digests:
            if len(partial.digests) == 1:
                before.append(partial.digests[0])
            elif partial is not partials[-1]:
                raise ValueError("only the last range may be an imperfect subtree")
    report.problems[:0] = problems
    match_roots(
        report,
        opened,
        report.log_size,
        _Roots(sizes, roots),
        _Positions(first, sizes, last, after),
    )
    _check_kept(report, partials)
    return report


class _Roots(Mapping[int, bytes]):
    """The log's roots at the checkpoints' sizes (`sizes` rising, 32 bytes each)."""

    def __init__(self, sizes: array[int], roots: bytearray) -> None:
        self.sizes, self.roots = sizes, roots

    def __getitem__(self, size: int) -> bytes:
        if size == 0:
            return EMPTY_ROOT
        index = bisect_left(self.sizes, size)
        if index == len(self.sizes) or self.sizes[index] != size:
            raise KeyError(size)
        return bytes(self.roots[32 * index : 32 * index + 32])

    def __iter__(self) -> Iterator[int]:
        yield 0
        yield from self.sizes

    def __len__(self) -> int:
        return len(self.sizes) + 1


class _Positions(Mapping[int, int]):
    """The positions of the log's leaves at index 0, and just before and just after each
    checkpoint size (`sizes` rising; `last` and `after` beside it)."""

    def __init__(
        self, first: int | None, sizes: array[int], last: array[int], after: array[int]
    ) -> None:
        self.first, self.sizes, self.last, self.after = first, sizes, last, after

    def __getitem__(self, leaf: int) -> int:
        if leaf == 0 and self.first is not None:
            return self.first
        sizes = self.sizes
        index = bisect_left(sizes, leaf + 1)
        if index < len(sizes) and sizes[index] == leaf + 1:
            return self.last[index]
        index = bisect_left(sizes, leaf)
        if index < len(sizes) and sizes[index] == leaf and self.after[index] != NO_POSITION:
            return self.after[index]
        raise KeyError(leaf)

    def __iter__(self) -> Iterator[int]:
        leaves = {0} | {size - 1 for size in self.sizes} | set(self.sizes)
        return iter([leaf for leaf in sorted(leaves) if leaf in self])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _check_kept(report: Report, partials: Sequence[Partial]) -> None:
    """The kept tree's roots over more than one range (against the ranges' roots), and
    any kept root past the end of the log; one problem for all that differ."""
    altered = [at for p in partials for at in p.tree_altered]
    count = sum(p.tree_altered_count for p in partials)
    size = partials[0].count if partials else 0  # every range but the last has this size
    full = [p.digests[0] for p in partials if p.count == size and len(p.digests) == 1]
    beyond = report.log_size
    for (first, level), kept in sorted(kept for p in partials for kept in p.kept_open.items()):
        if first + (1 << level) > report.log_size:
            beyond = max(beyond, first + (1 << level))
            continue
        start, count_ranges = first // size, (1 << level) // size
        if kept[0] != root_of(full[start : start + count_ranges]).hex():
            count += 1
            altered.append((first, level))
    if count:
        first, level = sorted(altered)[0]
        report.add(
            "tree_altered",
            f"The kept Merkle tree of the log differs from the tree of its stored events at "
            f"{count} root(s), the first over events {first + 1} to {first + (1 << level)} of "
            "the log: the kept tree or the events were altered (the other problems say "
            "which; `casetrail audit rebuild-tree` keeps it again from the log).",
        )
    if beyond > report.log_size:
        report.add(
            "tree_beyond_log",
            f"The kept Merkle tree covers {beyond} events but the log holds only "
            f"{report.log_size}: events were removed from the log.",
        )


CaseRows = Callable[[str], tuple[list[StoredRow], list[LinkRow]]]


def check_cases(report: Report, cases: Iterable[str], rows_of: CaseRows) -> None:
    """The chain checks of `verify_log` for each irregular case, from all its rows (events
    without their bytes, in position order, and its hash-chain rows)."""
    chains = []
    missing: list[Problem] = []
    for case_id in sorted(cases):
        events, links = rows_of(case_id)
        links_by_key: dict[Key, LinkRow] = {}
        for link in links:
            version = _int(link.version)
            if version is None or _uuid(link.case_id) != case_id:
                continue
            if (case_id, version) in links_by_key:
                report.add(
                    "duplicate_link",
                    f"{stream_label(case_id, None)} version {version} has two hash-chain "
                    "rows: a row was duplicated.",
                    case=case_id,
                    version=version,
                )
            links_by_key[(case_id, version)] = link
        seen: set[Key] = set()
        entries = []
        for row in sorted(events, key=lambda row: _int(row.position) or 0):
            version, position = _int(row.version), _int(row.position)
            if version is None or position is None or _uuid(row.case_id) != case_id:
                continue
            if (case_id, version) in seen:
                report.add(
                    "duplicate_event",
                    f"{stream_label(case_id, row.topic)} version {version} is stored twice "
                    f"(again at position {position}): a row was duplicated.",
                    case=case_id,
                    version=version,
                    position=position,
                )
            seen.add((case_id, version))
            entries.append(
                (version, position, links_by_key.get((case_id, version)), None, row.topic)
            )
        for (_, version), link in sorted(links_by_key.items()):
            if (case_id, version) not in seen:
                missing.append(
                    Problem(
                        "event_missing",
                        f"{stream_label(case_id, None)} version {version} is in the hash chain "
                        f"(position {link.position}) but the event itself is missing: it was "
                        "deleted.",
                        case=case_id,
                        version=version,
                        position=_int(link.position),
                    )
                )
        chains.append((case_id, entries, links_by_key))
    report.problems += missing
    for case_id, entries, links_by_key in chains:
        if entries:
            _check_chain(report, case_id, entries, links_by_key)  # type: ignore[arg-type]


def range_sizes(count: int, parts: int) -> int:
    """The number of leaves in each range (a power of two) to split `count` in about
    `parts` ranges (more than one per process, so that none waits long for the last)."""
    size = 1
    while size * parts < count:
        size *= 2
    return max(size, 1024)
