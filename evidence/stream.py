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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from evidence.chain import GENESIS
from evidence.fields import _hex32, _int, _uuid
from evidence.merkle import EMPTY_ROOT, Frontier, leaf_hash, log_entry, root_from_frontier
from evidence.note import VerifierKey
from evidence.verifier import (
    CheckpointRow,
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
    open_checkpoints,
    stream_label,
)

Key = tuple[str, int]
# The positions of the stored events with each of these keys (case id, version).
EventLookup = Callable[[Sequence[Key]], dict[Key, list[int]]]
# The hash-chain rows with each of these keys.
LinkLookup = Callable[[Sequence[Key]], dict[Key, LinkRow]]
# Cases whose chains were last seen most recently, kept to follow their next event.
RECENT_CASES = 10_000


@dataclass
class Partial:
    """What one range of the log gives `combine` (small: no rows, no leaves)."""

    offset: int  # the index of the range's first leaf in the log
    count: int = 0
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    irregular: set[str] = field(default_factory=set)
    # The range's own subtree roots (its frontier) at its end and at each checkpoint size
    # that falls inside it (keyed by the size in the whole log).
    digests: list[bytes] = field(default_factory=list)
    digests_at: dict[int, list[bytes]] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)  # leaf index -> position


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
    ) -> None:
        """`case`: check only that case's events (the others give the log's leaves from
        their links' hashes, as `verify_log` does)."""
        self.partial = Partial(offset)
        self.report = Report(problems=self.partial.problems)
        self.sizes = {size for size in sizes if size > offset}
        self.needed = {0} | self.sizes | {size - 1 for size in self.sizes}
        self.lookup_events, self.lookup_links = events, links
        self.decode, self.case = decode, case
        self.recent = recent
        # case -> (version, position, link hash) of its latest event seen, oldest first.
        self.heads: dict[str, tuple[int, int, str | None]] = {}
        self.frontier = _Frontier()
        self.previous_position = 0

    def feed(self, rows: Sequence[StoredRow], range_links: Sequence[LinkRow]) -> None:
        """One chunk: its rows in position order, and the hash-chain rows whose positions
        fall between the chunk's first and last (and, for the range's first and last
        chunks, to the range's bounds)."""
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
            label = stream_label(case_id, row.topic)
            partial.checked += 1
            recomputed = _check_event(
                report, row, found, label, case_id, version, position, self.decode
            )
            chain_hash = bytes.fromhex(recomputed) if recomputed is not None else None
            self._leaf(leaf_hash(log_entry(position, chain_hash or b"\x00" * 32)), position)
            self._follow(case_id, version, position, found, in_range, matched, pending)
        for key in in_range:
            if key not in matched and self.case in (None, key[0]):
                partial.irregular.add(key[0])
        self._resolve(pending, by_key)

    def _leaf(self, leaf: bytes, position: int) -> None:
        index = self.partial.offset + self.frontier.size
        if index in self.needed:
            self.partial.positions[index] = position
        self.frontier.append(leaf)
        size = index + 1
        if size in self.sizes:
            self.partial.digests_at[size] = self.frontier.digests()
        self.partial.count += 1

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

    def _resolve(
        self, pending: list[tuple[str, int, int, LinkRow]], by_key: dict[Key, LinkRow]
    ) -> None:
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
                if found.prev_hash != GENESIS:
                    self.partial.irregular.add(case_id)
                continue
            before = stored.get((case_id, version - 1), [])
            link = links.get((case_id, version - 1))
            if (
                len(stored.get((case_id, version), ())) != 1
                or len(before) != 1
                or before[0] >= position
                or link is None
                or _text(link.hash) != found.prev_hash
            ):
                self.partial.irregular.add(case_id)

    def result(self) -> Partial:
        self.partial.digests = self.frontier.digests()
        return self.partial


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def combine(
    partials: Sequence[Partial],
    checkpoints: Sequence[CheckpointRow],
    key: VerifierKey,
    trusted: Sequence[str] = (),
) -> tuple[Report, Opened]:
    """The report of the ranges together (in log order, each starting where the one
    before ended, every one but the last a perfect subtree), checked against every
    checkpoint. The irregular cases are still to be checked by `check_cases`."""
    report = Report()
    opened = open_checkpoints(report, checkpoints, key, trusted)
    before = _Frontier()  # the ranges so far, each a leaf of this tree of subtrees
    roots: dict[int, bytes] = {0: EMPTY_ROOT}
    positions: dict[int, int] = {}
    problems: list[Problem] = []
    for partial in partials:
        if partial.offset != report.log_size:
            raise ValueError("the ranges do not follow each other")
        for size, digests in partial.digests_at.items():
            roots[size] = root_from_frontier(before.digests() + digests)
        positions.update(partial.positions)
        problems += partial.problems
        report.checked_events += partial.checked
        report.log_size += partial.count
        if partial.digests:
            if len(partial.digests) == 1:
                before.append(partial.digests[0])
            elif partial is not partials[-1]:
                raise ValueError("only the last range may be an imperfect subtree")
    report.problems[:0] = problems
    match_roots(report, opened, report.log_size, roots, positions)
    return report, opened


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
