"""The verifier: recomputes every case's hash chain from the stored rows, the Merkle tree
of the whole log, and checks it against the signed checkpoints. Pure: it reads nothing
itself; `casetrail.audit.records` hands it the rows.

This module is the security boundary. It trusts nothing it is given except the public
key; every problem it finds is reported in words an auditor reads: which case, which
version, what is wrong.
"""

from __future__ import annotations

import hashlib
import itertools
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from evidence.chain import GENESIS, link_hash
from evidence.checkpoints import Opened
from evidence.fields import _hex32, _int, _uuid
from evidence.merkle import EMPTY_ROOT, Frontier, leaf_hash, log_entry
from evidence.note import Checkpoint, NoteError, VerifierKey, open_checkpoint

ACCESS_LOG_TOPIC_PREFIX = "casetrail.audit.access:"
ADMINISTRATION_TOPIC_PREFIX = "casetrail.administration:"


class StoredRow(NamedTuple):
    """A row of the event store: position (notification id), stream id, version, topic, bytes.

    `state` is None when the row was read without its bytes (a single-case verification
    reads only the case's own bytes)."""

    position: Any
    case_id: Any
    version: Any
    topic: Any
    state: Any


class LinkRow(NamedTuple):
    """A row of the hash chain table."""

    case_id: Any
    version: Any
    position: Any
    event_type: Any
    recorded_at: Any
    actor: Any
    actor_role: Any
    actor_unit: Any
    data_sha256: Any
    prev_hash: Any
    hash: Any


class CheckpointRow(NamedTuple):
    number: Any
    tree_size: Any
    root_hash: Any
    note: Any


class Decoded(NamedTuple):
    """What the stored event itself says about its type, time and actor."""

    event_type: str
    recorded_at: str
    actor: str
    actor_role: str
    actor_unit: str


Decoder = Callable[[StoredRow], Decoded]


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    case: str | None = None
    version: int | None = None
    position: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "case": self.case,
            "version": self.version,
            "position": self.position,
        }


@dataclass
class Report:
    checked_events: int = 0
    problems: list[Problem] = field(default_factory=list)
    checkpoint: Checkpoint | None = None  # the latest one that verified
    checkpoint_number: int | None = None
    log_size: int = 0
    # Checked events appended after the latest checkpoint: their chains verified, but no
    # signed checkpoint covers them yet.
    after_checkpoint: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, message: str, **where: Any) -> None:
        self.problems.append(Problem(code, message, **where))

    def as_dict(self) -> dict[str, Any]:
        latest = None
        if self.checkpoint is not None:
            latest = {
                "number": self.checkpoint_number,
                "tree_size": self.checkpoint.size,
                "root_hash": self.checkpoint.root.hex(),
                "time": self.checkpoint.time,
            }
        return {
            "ok": self.ok,
            "checked_events": self.checked_events,
            "log_size": self.log_size,
            "latest_checkpoint": latest,
            "after_checkpoint": self.after_checkpoint,
            "problems": [problem.as_dict() for problem in self.problems],
        }


def link_key(link: LinkRow, report: Report) -> tuple[str, int] | None:
    """A hash-chain row's (case, version), or None with a `malformed_link` problem."""
    link_case, link_version = _uuid(link.case_id), _int(link.version)
    if link_case is None or link_version is None:
        report.add(
            "malformed_link",
            f"A hash-chain row names no valid case and version ({link.case_id!r}, "
            f"{link.version!r}): the row was altered.",
            position=_int(link.position),
        )
        return None
    return link_case, link_version


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@lru_cache(maxsize=4096)  # a store has a few dozen topics; every event is checked
def type_of_topic(topic: str) -> str:
    """The event class name a topic names: `domain.dispute:DisputeTriaged` → `DisputeTriaged`."""
    return topic.rpartition(":")[2].rpartition(".")[2]


def stream_label(case_id: str, topic: Any) -> str:
    if isinstance(topic, str) and topic.startswith(ACCESS_LOG_TOPIC_PREFIX):
        return f"The read-access log {case_id}"
    if isinstance(topic, str) and topic.startswith(ADMINISTRATION_TOPIC_PREFIX):
        return f"The administration log {case_id}"
    return f"Case {case_id}"


def recompute_link(
    row: StoredRow, link: LinkRow, digest: str | None = None, case_id: str | None = None
) -> str | None:
    """The chain hash of a stored event under its link's metadata, or None if malformed.

    `digest` (the SHA-256 of the stored bytes) and `case_id` (the row's stream id in its
    canonical form) when the caller has them already."""
    if case_id is None:
        case_id = _uuid(row.case_id)
    state = row.state
    if case_id is None or not isinstance(state, bytes | bytearray | memoryview):
        return None
    if digest is None:
        digest = hashlib.sha256(bytes(state)).hexdigest()
    try:
        return link_hash(
            case_id,
            row.version,
            row.topic,
            link.event_type,
            link.recorded_at,
            link.actor,
            link.actor_role,
            link.actor_unit,
            digest,
            link.prev_hash,
        )
    except TypeError:  # a field of the wrong type: the row was altered
        return None


# --- the log --------------------------------------------------------------------------


def verify_log(
    events: Iterable[StoredRow],
    links: Iterable[LinkRow],
    checkpoints: Sequence[CheckpointRow],
    key: VerifierKey,
    *,
    decode: Decoder | None = None,
    case: str | None = None,
    trusted: Sequence[str] = (),
) -> Report:
    """Verifies the event store: every case's chain (or only `case`'s), the log's Merkle
    tree against every stored checkpoint, and against `trusted` signed notes kept by the
    auditor elsewhere."""
    report = Report()
    rows = sorted(events, key=lambda row: _int(row.position) or 0)
    report.log_size = len(rows)
    links_by_key: dict[tuple[str, int], LinkRow] = {}
    for link in links:
        keyed = link_key(link, report)
        if keyed is None:
            continue
        link_case, link_version = keyed
        if (link_case, link_version) in links_by_key:
            report.add(
                "duplicate_link",
                f"{stream_label(link_case, None)} version {link_version} has two hash-chain "
                "rows: a row was duplicated.",
                case=link_case,
                version=link_version,
            )
        links_by_key[(link_case, link_version)] = link
    seen: set[tuple[str, int]] = set()
    by_case: dict[str, list[tuple[int, int, LinkRow | None, str | None, Any]]] = {}
    frontier = Frontier()
    leaves: list[bytes] = []
    positions: list[int] = []
    previous_position = 0
    for row in rows:
        position, case_id, version = _int(row.position), _uuid(row.case_id), _int(row.version)
        if position is None or case_id is None or version is None:
            report.add(
                "malformed_event",
                f"A stored event row has no valid position, case or version ({row.position!r}, "
                f"{row.case_id!r}, {row.version!r}): the row was altered.",
            )
            leaves.append(leaf_hash(b"malformed"))
            positions.append(previous_position)
            continue
        examined = case is None or case_id == case
        if position <= previous_position:
            report.add(
                "duplicate_position",
                f"Two stored events share position {position}: rows were duplicated.",
                position=position,
            )
        previous_position = max(previous_position, position)
        found = links_by_key.get((case_id, version))
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
        recomputed: str | None = None
        if examined:
            report.checked_events += 1
            recomputed = _check_event(report, row, found, case_id, version, position, decode)
            by_case.setdefault(case_id, []).append(
                (version, position, found, recomputed, row.topic)
            )
        if recomputed is not None:
            chain_hash: bytes | None = bytes.fromhex(recomputed)  # our own hex digest
        else:
            chain_hash = _hex32(found.hash) if found is not None and not examined else None
        if chain_hash is None:
            chain_hash = b"\x00" * 32  # unverifiable: the root cannot match, as it should not
        leaf = leaf_hash(log_entry(position, chain_hash))
        leaves.append(leaf)
        positions.append(position)
    for (link_case, link_version), link in sorted(links_by_key.items()):
        if (link_case, link_version) in seen or (case is not None and link_case != case):
            continue
        report.add(
            "event_missing",
            f"{stream_label(link_case, None)} version {link_version} is in the hash chain "
            f"(position {link.position}) but the event itself is missing: it was deleted.",
            case=link_case,
            version=link_version,
            position=_int(link.position),
        )
    for case_id, entries in by_case.items():
        _check_chain(report, case_id, entries, links_by_key)
    _check_checkpoints(report, leaves, positions, frontier, checkpoints, key, trusted)
    return report


def _check_event(
    report: Report,
    row: StoredRow,
    link: LinkRow | None,
    case_id: str,
    version: int,
    position: int,
    decode: Decoder | None,
) -> str | None:
    """The checks of one event against its link; its recomputed chain hash (hex). The
    words of a finding are made only when there is one (this runs for every event)."""
    if link is None:
        report.add(
            "link_missing",
            f"{stream_label(case_id, row.topic)} version {version} (position {position}) has "
            "no hash-chain link: the event was added outside casetrail, or its link was "
            "deleted.",
            **_where(case_id, version, position),
        )
        return None
    if type(link.position) is not int or link.position != position:
        report.add(
            "position_mismatch",
            f"{stream_label(case_id, row.topic)} version {version} is stored at position "
            f"{position} but its hash-chain link records position {link.position}: rows were "
            "moved or swapped.",
            **_where(case_id, version, position),
        )
    topic = row.topic
    if not isinstance(topic, str) or type_of_topic(topic) != link.event_type:
        report.add(
            "type_altered",
            f"{stream_label(case_id, topic)} version {version} is stored as {topic!r} but its "
            f"hash chain says {link.event_type!r}: the event's type was altered.",
            **_where(case_id, version, position),
        )
    state = row.state
    if not isinstance(state, bytes | bytearray | memoryview):
        report.add(
            "data_missing",
            f"{stream_label(case_id, topic)} version {version} has no stored data: the row "
            "was altered.",
            **_where(case_id, version, position),
        )
        return None
    digest = hashlib.sha256(state).hexdigest()
    if digest != link.data_sha256:
        report.add(
            "data_altered",
            f"{stream_label(case_id, topic)} version {version}: the stored data no longer "
            "matches the hash recorded when it was appended: the event's data was altered.",
            **_where(case_id, version, position),
        )
    recomputed = recompute_link(row, link, digest, case_id)
    if recomputed is None or recomputed != link.hash:
        report.add(
            "link_altered",
            f"The hash-chain link of {stream_label(case_id, topic)} version {version} does not "
            "match its contents (version, type, time, actor, role, unit, data or previous "
            "hash): the event or its link was altered.",
            **_where(case_id, version, position),
        )
    if decode is not None:
        _check_decoded(report, row, link, case_id, version, position, decode)
    return recomputed


def _where(case_id: str, version: int, position: int) -> dict[str, Any]:
    return {"case": case_id, "version": version, "position": position}


def _check_decoded(
    report: Report,
    row: StoredRow,
    link: LinkRow,
    case_id: str,
    version: int,
    position: int,
    decode: Decoder,
) -> None:
    try:
        decoded = decode(row)
    except Exception as error:  # any failure to read the bytes is the finding
        report.add(
            "undecodable",
            f"{stream_label(case_id, row.topic)} version {version} cannot be read back "
            f"from the store ({type(error).__name__}): its data or type was altered.",
            **_where(case_id, version, position),
        )
        return
    if decoded == (
        link.event_type,
        link.recorded_at,
        link.actor,
        link.actor_role,
        link.actor_unit,
    ):
        return
    for name, stored in (
        ("type", decoded.event_type),
        ("recorded_at", decoded.recorded_at),
        ("actor", decoded.actor),
        ("actor_role", decoded.actor_role),
        ("actor_unit", decoded.actor_unit),
    ):
        said = link.event_type if name == "type" else getattr(link, name)
        if stored != said:
            report.add(
                "metadata_mismatch",
                f"{stream_label(case_id, row.topic)} version {version}: the event says "
                f"{name} = {stored!r} but its hash-chain link says {said!r}: one of them was "
                "altered.",
                **_where(case_id, version, position),
            )


def _check_chain(
    report: Report,
    case_id: str,
    entries: list[tuple[int, int, LinkRow | None, str | None, Any]],
    links_by_key: dict[tuple[str, int], LinkRow],
) -> None:
    entries.sort(key=lambda entry: entry[0])
    topic = entries[0][4]
    label = stream_label(case_id, topic)
    expected = 1
    previous_position = 0
    for version, position, link, _, _ in entries:
        where = {"case": case_id, "version": version, "position": position}
        if version < 1:
            report.add("bad_version", f"{label} has an event with version {version}.", **where)
            continue
        if version > expected:
            missing = f"{expected}" if version == expected + 1 else f"{expected} to {version - 1}"
            report.add(
                "version_missing",
                f"{label} has no version {missing} before version {version}: "
                "events were deleted or renumbered.",
                **where,
            )
        expected = version + 1
        if position < previous_position:
            report.add(
                "order_broken",
                f"{label} version {version} (position {position}) comes before the version "
                f"before it (position {previous_position}) in the log: events were swapped.",
                **where,
            )
        previous_position = position
        if link is None:
            continue
        before = links_by_key.get((case_id, version - 1))
        want = GENESIS if version == 1 else (_text(before.hash) if before else None)
        if want is not None and link.prev_hash != want:
            report.add(
                "chain_broken",
                f"{label} version {version} does not follow version {version - 1} in the hash "
                "chain: an event before it was altered, removed or inserted.",
                **where,
            )


def _check_checkpoints(
    report: Report,
    leaves: list[bytes],
    positions: list[int],
    frontier: Frontier,
    checkpoints: Sequence[CheckpointRow],
    key: VerifierKey,
    trusted: Sequence[str],
) -> None:
    opened = open_checkpoints(report, checkpoints, key, trusted)
    roots, sizes = {0: EMPTY_ROOT}, {c.size for _, _, c in opened}
    for leaf in leaves:
        frontier.append(leaf)
        if frontier.size in sizes:
            roots[frontier.size] = frontier.root()
    match_roots(report, opened, len(leaves), roots, dict(enumerate(positions)))


def open_checkpoints(
    report: Report, checkpoints: Iterable[CheckpointRow], key: VerifierKey, trusted: Sequence[str]
) -> Opened:
    """The checkpoints that verify (name, number, checkpoint); the others, gaps in the
    numbering and a rollback are reported. `checkpoints` is read once, in its order (by
    number, as a store gives them in chunks, keeps memory to 8 bytes a checkpoint beside
    `Opened`)."""
    opened = Opened()
    numbers: array[int] | list[int] = array("q")
    rising = True
    for row in checkpoints:
        number = _int(row.number)
        name = f"Checkpoint #{row.number}"
        if number is not None:
            if numbers and number < numbers[-1]:
                rising = False
            try:
                numbers.append(number)
            except OverflowError:
                numbers = [*numbers, number]
        try:
            checkpoint = open_checkpoint(_text(row.note) or "", key)
        except NoteError as error:
            report.add(
                "checkpoint_invalid",
                f"{name} does not verify with this log's public key ({error}): "
                "the checkpoint was altered or forged.",
            )
            continue
        if _int(row.tree_size) != checkpoint.size or row.root_hash != checkpoint.root.hex():
            report.add(
                "checkpoint_altered",
                f"{name}: its stored tree size or root hash differs from what its signed note "
                "says: the checkpoint row was altered.",
            )
        opened.append((name, number, checkpoint))
    if not rising:
        numbers = sorted(numbers)
    if numbers and numbers[0] != 1:
        report.add(
            "checkpoint_missing",
            f"Checkpoints #1 to #{numbers[0] - 1} are missing: checkpoints were deleted."
            if numbers[0] > 2
            else "Checkpoint #1 is missing: it was deleted.",
        )
    for before, after in itertools.pairwise(numbers):
        if after != before + 1:
            report.add(
                "checkpoint_missing",
                f"Checkpoints #{before + 1} to #{after - 1} are missing between #{before} and "
                f"#{after}: checkpoints were deleted."
                if after > before + 2
                else f"Checkpoint #{before + 1} is missing: it was deleted.",
            )
    for index, note in enumerate(trusted):
        try:
            opened.append((f"The trusted checkpoint {index + 1}", None, open_checkpoint(note, key)))
        except NoteError as error:
            report.add(
                "checkpoint_invalid",
                f"The trusted checkpoint {index + 1} does not verify with this log's public "
                f"key ({error}).",
            )
    for (name_a, _, a), (name_b, _, b) in itertools.pairwise(opened.numbered_in_order()):
        if b.size < a.size:
            report.add(
                "log_rolled_back",
                f"{name_b} signs {b.size} events, fewer than the {a.size} of the earlier "
                f"{name_a}: the log was rolled back.",
            )
    return opened


def match_roots(
    report: Report,
    opened: Opened,
    size: int,
    roots: Mapping[int, bytes],
    positions: Mapping[int, int],
) -> None:
    """The log of `size` leaves against each opened checkpoint: `roots` its roots at their
    sizes, `positions` the positions of the leaves at 0, s - 1 and s for each size s."""
    matched = 0
    mismatched: list[tuple[str, Checkpoint]] = []
    for name, number, checkpoint in opened:
        if checkpoint.size > size:
            report.add(
                "log_truncated",
                f"{name} ({checkpoint.time}) signed {checkpoint.size} events but the log now "
                f"holds only {size}: {checkpoint.size - size} events were removed "
                "from it.",
            )
        elif roots[checkpoint.size] != checkpoint.root:
            mismatched.append((name, checkpoint))
        else:
            matched = max(matched, checkpoint.size)
            if number is not None and (
                report.checkpoint is None or checkpoint.size >= report.checkpoint.size
            ):
                report.checkpoint, report.checkpoint_number = checkpoint, number
    for name, checkpoint in mismatched:
        low = positions.get(matched) if matched < size else None
        high = positions.get(checkpoint.size - 1)
        span = (
            f"between positions {low} and {high}"
            if low is not None and matched < checkpoint.size
            else f"up to position {high}"
        )
        report.add(
            "log_rewritten",
            f"The log's first {checkpoint.size} events no longer hash to the root signed in "
            f"{name} ({checkpoint.time}): an event {span} was altered, inserted, removed or "
            "reordered after it was checkpointed.",
        )
