"""Verifying one case without reading the log: its own rows get every check the
whole-store verifier gives a case (`verifier`), and each of its events is proved to be a
leaf of the log signed in the latest checkpoint by an RFC 9162 inclusion proof (and in
each checkpoint kept outside the store, `trusted`). Pure: the caller reads the case's
rows and answers the proofs; nothing it gives is trusted but the public key.

What it cannot tell: that the case had no later events than those stored (events
removed from the end of a case together with their chain links). The log's leaves do not
say which case they belong to, so only the whole-store verify (the tree no longer
matches the checkpoint) or a kept export or checkpoint finds that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from evidence.fields import _int
from evidence.merkle import leaf_hash, log_entry, verify_consistency, verify_inclusion
from evidence.note import Checkpoint, NoteError, VerifierKey, open_checkpoint
from evidence.stream import check_cases
from evidence.verifier import (
    CheckpointRow,
    Decoder,
    LinkRow,
    Report,
    StoredRow,
    _check_event,
)

# (positions, tree size) → for each position that is one of the first `size` leaves of
# the log, its (leaf index, inclusion proof); None for a position after them. A position
# that is no leaf of the log is left out.
Prover = Callable[[Sequence[int], int], Mapping[int, tuple[int, list[bytes]] | None]]
# (first, second) → the consistency proof between the log's trees of those sizes.
Consistency = Callable[[int, int], list[bytes]]


def verify_case(
    case_id: str,
    events: Sequence[StoredRow],
    links: Sequence[LinkRow],
    checkpoint: CheckpointRow | None,
    key: VerifierKey,
    prove: Prover,
    consistency: Consistency,
    *,
    decode: Decoder | None = None,
    trusted: Sequence[str] = (),
) -> Report:
    """`events`: the case's stored events with their bytes; `links`: its hash-chain rows;
    `checkpoint`: the latest stored checkpoint."""
    report = Report()
    hashes = _check_rows(report, case_id, events, links, decode)
    signed: list[tuple[str, Checkpoint]] = []
    if checkpoint is not None:
        latest = _open_row(report, checkpoint, key)
        if latest is not None:
            report.checkpoint, report.checkpoint_number = latest, _int(checkpoint.number)
            signed.append((f"checkpoint #{checkpoint.number}", latest))
    for index, note in enumerate(trusted):
        try:
            kept = open_checkpoint(note, key)
        except NoteError as error:
            report.add(
                "checkpoint_invalid",
                f"The trusted checkpoint {index + 1} does not verify with this log's public "
                f"key ({error}).",
            )
            continue
        name = f"the trusted checkpoint {index + 1}"
        if signed:
            _check_consistent(report, signed[0], (name, kept), consistency)
        signed.append((name, kept))
    after = set(hashes)  # the events no checkpoint covers yet
    for name, signed_checkpoint in signed:
        after &= _check_included(report, case_id, hashes, name, signed_checkpoint, prove)
    report.after_checkpoint = len(after)
    return report


def _check_rows(
    report: Report,
    case_id: str,
    events: Sequence[StoredRow],
    links: Sequence[LinkRow],
    decode: Decoder | None,
) -> dict[int, tuple[int, bytes]]:
    """Every check `verify_log` makes of one case's rows; the recomputed chain hash of
    each event that has one, by position (with its version)."""
    by_key: dict[int, LinkRow] = {}
    for link in links:
        version = _int(link.version)
        if version is not None:
            by_key.setdefault(version, link)
    hashes: dict[int, tuple[int, bytes]] = {}
    for row in sorted(events, key=lambda row: _int(row.position) or 0):
        position, version = _int(row.position), _int(row.version)
        if position is None or version is None:
            report.add(
                "malformed_event",
                f"A stored event row of case {case_id} has no valid position or version "
                f"({row.position!r}, {row.version!r}): the row was altered.",
                case=case_id,
            )
            continue
        report.checked_events += 1
        found = by_key.get(version)
        recomputed = _check_event(report, row, found, case_id, version, position, decode)
        if recomputed is not None:
            hashes[position] = (version, bytes.fromhex(recomputed))
    check_cases(report, [case_id], lambda _: (list(events), list(links)))
    return hashes


def _open_row(report: Report, row: CheckpointRow, key: VerifierKey) -> Checkpoint | None:
    try:
        checkpoint = open_checkpoint(row.note if isinstance(row.note, str) else "", key)
    except NoteError as error:
        report.add(
            "checkpoint_invalid",
            f"Checkpoint #{row.number} does not verify with this log's public key ({error}): "
            "the checkpoint was altered or forged.",
        )
        return None
    if _int(row.tree_size) != checkpoint.size or row.root_hash != checkpoint.root.hex():
        report.add(
            "checkpoint_altered",
            f"Checkpoint #{row.number}: its stored tree size or root hash differs from what "
            "its signed note says: the checkpoint row was altered.",
        )
    return checkpoint


def _check_consistent(
    report: Report,
    stored: tuple[str, Checkpoint],
    kept: tuple[str, Checkpoint],
    consistency: Consistency,
) -> None:
    """The stored checkpoint and one kept outside must sign trees of which the smaller
    is the start of the larger."""
    (first_name, first), (second_name, second) = sorted((stored, kept), key=lambda s: s[1].size)
    proof = consistency(first.size, second.size)
    if not verify_consistency(first.size, second.size, first.root, second.root, proof):
        report.add(
            "log_rewritten",
            f"The log of {second_name} ({second.size} events) does not extend that of "
            f"{first_name} ({first.size} events): the log was rewritten after the earlier "
            "one was signed.",
        )


def _check_included(
    report: Report,
    case_id: str,
    hashes: dict[int, tuple[int, bytes]],
    name: str,
    checkpoint: Checkpoint,
    prove: Prover,
) -> set[int]:
    """Each event is a leaf of the checkpoint's tree, or after it; the positions after."""
    after = set()
    proofs = prove(sorted(hashes), checkpoint.size)
    for position, (version, chain_hash) in sorted(hashes.items()):
        if position in proofs and proofs[position] is None:
            after.add(position)  # appended after this checkpoint
            continue
        answer = proofs.get(position)
        leaf = leaf_hash(log_entry(position, chain_hash))
        if answer is not None and verify_inclusion(
            leaf, answer[0], checkpoint.size, answer[1], checkpoint.root
        ):
            continue
        report.add(
            "not_in_checkpoint",
            f"Case {case_id} version {version} (position {position}) cannot be proved in the "
            f"log signed by {name} ({checkpoint.time}): the event, its place in the log, an "
            "event beside it or the kept tree of the log was altered after it was "
            "checkpointed (the whole-store verify tells which).",
            case=case_id,
            version=version,
            position=position,
        )
    return after
