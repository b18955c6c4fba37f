"""The streaming verifier over ranges of the log (`evidence.stream`) against the verifier
that holds the whole log (`verify_log`): the same report, with checkpoints at and around
the ranges' bounds, each root and the positions around it kept compactly."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from evidence.merkle import leaf_hash, log_entry, root_of
from evidence.note import Checkpoint
from evidence.stream import RangeChecker, check_cases, combine
from evidence.verifier import CheckpointRow, LinkRow, Report, StoredRow, open_checkpoints
from tests.domain.test_audit_verifier import SIGNER, honest_log, verify

RANGE = 16
SIZES = (8, 16, 17, 31, 32, 40)


def checkpointed(events: int = 40) -> tuple[list[StoredRow], list[LinkRow], list[CheckpointRow]]:
    rows, links, _ = honest_log(events)
    leaves = [leaf_hash(log_entry(link.position, bytes.fromhex(link.hash))) for link in links]
    checkpoints = []
    for number, size in enumerate(SIZES, start=1):
        checkpoint = Checkpoint(SIGNER.name, size, root_of(leaves[:size]), "2026-03-02T02:00:00Z")
        note = SIGNER.sign_note(checkpoint.text())
        checkpoints.append(CheckpointRow(number, size, checkpoint.root.hex(), note))
    return rows, links, checkpoints


def streamed(rows: list[StoredRow], links: list[LinkRow], checkpoints: list[Any]) -> Report:
    def events(keys: Any) -> dict[Any, list[int]]:
        found: dict[Any, list[int]] = {}
        for row in rows:
            key = (str(UUID(row.case_id)), row.version)
            if key in keys:
                found.setdefault(key, []).append(row.position)
        return found

    def chain(keys: Any) -> dict[Any, LinkRow]:
        return {
            (link.case_id, link.version): link
            for link in links
            if (link.case_id, link.version) in keys
        }

    report = Report()
    opened = open_checkpoints(report, checkpoints, SIGNER.verifier, ())
    sizes = sorted({checkpoint.size for _, _, checkpoint in opened})
    partials = []
    for offset in range(0, len(rows), RANGE):
        checker = RangeChecker(offset, sizes, events, chain)
        part = rows[offset : offset + RANGE]
        low, high = part[0].position, part[-1].position
        checker.feed(part, [link for link in links if low <= link.position <= high])
        partials.append(checker.result())
    report = combine(partials, opened, report)
    irregular = set().union(*(p.irregular for p in partials))

    def of_case(case: str) -> tuple[list[StoredRow], list[LinkRow]]:
        mine = [row for row in rows if str(UUID(row.case_id)) == case]
        return mine, [link for link in links if link.case_id == case]

    check_cases(report, irregular, of_case)
    return report


def test_an_honest_log_streamed_verifies_against_every_checkpoint() -> None:
    rows, links, checkpoints = checkpointed()
    report = streamed(rows, links, checkpoints)
    assert report.ok, report.problems
    assert report.checkpoint is not None and report.checkpoint.size == 40
    assert report.as_dict() == verify(rows, links, checkpoints).as_dict()


@pytest.mark.parametrize("altered", [7, 15, 16, 17, 30, 31, 39])
def test_an_altered_event_is_placed_between_the_same_positions(altered: int) -> None:
    rows, links, checkpoints = checkpointed()
    row = rows[altered]
    rows[altered] = row._replace(state=row.state.replace(b'"n"', b'"m"'))
    report = streamed(rows, links, checkpoints)
    whole = verify(rows, links, checkpoints)
    rewritten = [p.message for p in report.problems if p.code == "log_rewritten"]
    assert rewritten, report.problems
    assert rewritten == [p.message for p in whole.problems if p.code == "log_rewritten"]
    assert sorted(p.code for p in report.problems) == sorted(p.code for p in whole.problems)


def test_opened_checkpoints_are_kept_compactly_and_given_back_as_they_were() -> None:
    _, _, checkpoints = checkpointed()
    report = Report()
    trusted = [checkpoints[0].note]
    opened = open_checkpoints(report, checkpoints, SIGNER.verifier, trusted)
    assert report.ok and len(opened) == len(SIZES) + 1
    assert [name for name, _, _ in opened][-1] == "The trusted checkpoint 1"
    assert [c.size for _, _, c in opened] == [*SIZES, SIZES[0]]
    assert list(opened.distinct_sizes()) == sorted(SIZES)
    assert [(n, c.text()) for _, n, c in opened][:-1] == [
        (row.number, row.note.split("\n\n")[0] + "\n") for row in checkpoints
    ]


def test_checkpoints_given_out_of_order_report_the_same_rollback_and_gap() -> None:
    _, _, checkpoints = checkpointed()
    # #5 signs fewer events than #4; #3 is gone.
    swapped = [checkpoints[0], checkpoints[1], checkpoints[4], checkpoints[3], checkpoints[5]]
    swapped = [row._replace(number=n) for n, row in zip((1, 2, 4, 5, 6), swapped, strict=True)]
    in_order, reversed_order = Report(), Report()
    open_checkpoints(in_order, swapped, SIGNER.verifier, ())
    open_checkpoints(reversed_order, swapped[::-1], SIGNER.verifier, ())
    assert [p.code for p in in_order.problems] == ["checkpoint_missing", "log_rolled_back"]
    assert in_order.problems == reversed_order.problems
