"""Verifying one case without reading the log: its own rows, and an RFC 9162 inclusion
proof of each of its events in the latest signed checkpoint, from the kept tree. Each
way of tampering with the case, the tree or the checkpoint is still reported."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest

from casetrail.audit.keys import Signer
from casetrail.audit.trail import LogInconsistent
from casetrail.bootstrap import Casetrail
from domain.clock import FixedClock
from evidence.chain import ChainEntry, event_hash
from evidence.merkle import leaf_hash, log_entry, verify_inclusion
from evidence.note import Checkpoint, open_checkpoint
from evidence.verifier import Report
from store.log_tree import TREE_TABLE
from tests.integration.audit_support import AUDITOR, WORKER, build_store

CASES = 30  # about 130 events: eight kept blocks of 16 and a tree seven levels high


@pytest.fixture
def store(casetrail: Casetrail, clock: FixedClock) -> tuple[Casetrail, list[str]]:
    return casetrail, build_store(casetrail, clock, CASES)


def codes(report: Report) -> set[str]:
    return {problem.code for problem in report.problems}


def execute(ct: Casetrail, sql: str, params: tuple[Any, ...] = ()) -> None:
    with ct.db.transaction() as cur:
        cur.execute(sql, params)


def events_of(ct: Casetrail, case_id: str) -> list[dict[str, Any]]:
    column = ct.db.position_column
    return ct.db.query(
        f"SELECT {column} AS position, originator_version AS version, topic, state "
        f"FROM {ct.audit.events_table} WHERE originator_id = ? ORDER BY {column}",
        (ct.db.stored_id(case_id),),
    )


def rewrite_with_chain(ct: Casetrail, case_id: str, version: int) -> None:
    """Changes a byte of the event's data and recomputes the case's chain from it, as
    someone with write access to the database would (the kept tree left as it was)."""
    links = ct.db.query(
        "SELECT * FROM case_event_chain WHERE case_id = ? ORDER BY version", (case_id,)
    )
    stored = {int(e["version"]): e for e in events_of(ct, case_id)}
    prev = "0" * 64
    for link in links:
        v = int(link["version"])
        state = bytes(stored[v]["state"])
        if v == version:
            changed = state.replace(b'"ordinary"', b'"major"', 1).replace(b"320102", b"320104", 1)
            assert changed != state
            state = changed
            execute(
                ct,
                f"UPDATE {ct.audit.events_table} SET state = ? WHERE {ct.db.position_column} = ?",
                (state, stored[v]["position"]),
            )
        if v >= version:
            entry = ChainEntry(
                link["event_type"], link["recorded_at"], link["actor"], link["actor_role"],
                link["actor_unit"],
            )  # fmt: skip
            digest = hashlib.sha256(state).hexdigest()
            new = event_hash(case_id, v, entry, digest, prev, topic=stored[v]["topic"])
            execute(
                ct,
                "UPDATE case_event_chain SET data_sha256 = ?, prev_hash = ?, hash = ? "
                "WHERE case_id = ? AND version = ?",
                (digest, prev, new, case_id, v),
            )
            prev = new
        else:
            prev = str(link["hash"])


def test_one_case_is_proved_in_the_latest_checkpoint_from_the_kept_tree(
    store: tuple[Casetrail, list[str]],
) -> None:
    ct, ids = store
    case = ids[17]
    report = ct.audit.verify(case)
    assert report.ok, report.problems
    assert report.checked_events == 4 and report.after_checkpoint == 0
    latest = open_checkpoint(str(ct.audit.checkpoints()[-1]["note"]), ct.audit.signer.verifier)
    assert report.checkpoint == latest and report.log_size == latest.size
    # The kept tree answers the proofs (no reading of the log), and they are the proofs
    # the pure verifier accepts.
    tree = ct.audit.tree()
    assert tree.kept >= 16 * 7
    for event in events_of(ct, case):
        position = int(event["position"])
        proof = ct.audit.inclusion(position)
        leaf = leaf_hash(log_entry(position, bytes.fromhex(proof["hash"])))
        path = [bytes.fromhex(node) for node in proof["inclusion_proof"]]
        assert verify_inclusion(leaf, proof["leaf_index"], latest.size, path, latest.root)
    assert ct.audit._verify_case(case, []) is not None  # the fast path, not a fallback


def test_an_edited_event_of_the_case_is_reported(store: tuple[Casetrail, list[str]]) -> None:
    ct, ids = store
    event = events_of(ct, ids[4])[1]
    state = bytes(event["state"])
    execute(
        ct,
        f"UPDATE {ct.audit.events_table} SET state = ? WHERE {ct.db.position_column} = ?",
        (state.replace(b"ordinary", b"major   ", 1), event["position"]),
    )
    report = ct.audit.verify(ids[4])
    assert {"data_altered", "link_altered", "not_in_checkpoint"} <= codes(report)
    assert all(p.case == ids[4] for p in report.problems)
    assert ct.audit.verify(ids[5]).ok


def test_an_event_rewritten_with_its_chain_recomputed_is_no_leaf_of_the_checkpoint(
    store: tuple[Casetrail, list[str]],
) -> None:
    ct, ids = store
    rewrite_with_chain(ct, ids[9], 2)
    report = ct.audit.verify(ids[9])
    # The chain alone holds together; the signed tree does not have these leaves (nor,
    # maybe, the first event's: its proof goes through the leaves beside it).
    assert codes(report) == {"not_in_checkpoint"}
    assert {p.version for p in report.problems} >= {2, 3, 4}
    assert "log_rewritten" in codes(ct.audit.verify())


def test_a_deleted_or_reordered_event_of_the_case_is_reported(
    store: tuple[Casetrail, list[str]],
) -> None:
    ct, ids = store
    events = events_of(ct, ids[12])
    execute(
        ct,
        f"DELETE FROM {ct.audit.events_table} WHERE {ct.db.position_column} = ?",
        (events[1]["position"],),
    )
    execute(ct, "DELETE FROM case_event_chain WHERE position = ?", (events[1]["position"],))
    assert "version_missing" in codes(ct.audit.verify(ids[12]))
    # Two events of another case swap places in the log.
    column, table = ct.db.position_column, ct.audit.events_table
    a, b = (int(e["position"]) for e in events_of(ct, ids[13])[1:3])
    execute(ct, f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (-1, a))
    execute(ct, f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (a, b))
    execute(ct, f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (b, -1))
    assert {"position_mismatch", "order_broken", "not_in_checkpoint"} <= codes(
        ct.audit.verify(ids[13])
    )


def test_a_forged_or_altered_checkpoint_is_reported(store: tuple[Casetrail, list[str]]) -> None:
    ct, ids = store
    last = ct.db.query_one("SELECT number, note FROM audit_checkpoints ORDER BY number DESC")
    assert last is not None
    note = str(last["note"])
    checkpoint = open_checkpoint(note, ct.audit.signer.verifier)
    # Signed by another key under the log's name, over another root.
    forger = Signer(ct.audit.signer.name, bytes(range(32)))
    forged = forger.sign_note(
        Checkpoint(checkpoint.origin, checkpoint.size, b"\1" * 32, checkpoint.time).text()
    )
    execute(ct, "UPDATE audit_checkpoints SET note = ? WHERE number = ?", (forged, last["number"]))
    report = ct.audit.verify(ids[3])
    assert codes(report) == {"checkpoint_invalid"} and report.checkpoint is None
    execute(
        ct,
        "UPDATE audit_checkpoints SET note = ?, tree_size = 1 WHERE number = ?",
        (note, last["number"]),
    )
    assert codes(ct.audit.verify(ids[3])) == {"checkpoint_altered"}


def test_an_altered_root_of_the_kept_tree_fails_the_proofs_and_the_full_verify_names_it(
    store: tuple[Casetrail, list[str]],
) -> None:
    ct, ids = store
    execute(
        ct, f"UPDATE {TREE_TABLE} SET hash = ? WHERE first_leaf = 0 AND level = 6", ("ab" * 32,)
    )
    reports = [ct.audit.verify(case) for case in ids]
    assert not all(r.ok for r in reports)
    assert all(codes(r) <= {"not_in_checkpoint"} for r in reports)
    whole = ct.audit.verify()
    assert codes(whole) == {"tree_altered"}, whole.problems
    # Derived data: kept again from the log, and everything verifies.
    ct.audit.rebuild_tree()
    assert ct.audit.verify().ok and all(ct.audit.verify(case).ok for case in ids)
    # A kept root lost: the next checkpoint keeps the tree again.
    execute(ct, f"DELETE FROM {TREE_TABLE} WHERE level = 5")
    assert ct.audit.write_checkpoint(force=True) is not None
    assert ct.audit.verify().ok and ct.audit.verify(ids[0]).ok


def test_events_after_the_latest_checkpoint_are_checked_by_their_chain_and_counted(
    store: tuple[Casetrail, list[str]], clock: FixedClock
) -> None:
    ct, ids = store
    clock.advance(timedelta(days=1))
    ct.service.append(WORKER, ids[20], "DisputeReturned", {"reason": "当事人要求"})
    report = ct.audit.verify(ids[20])
    assert report.ok and report.checked_events == 5 and report.after_checkpoint == 1
    assert ct.audit.write_checkpoint() is not None
    assert ct.audit.verify(ids[20]).after_checkpoint == 0


def test_a_checkpoint_kept_outside_catches_an_insider_who_re_signs(
    store: tuple[Casetrail, list[str]],
) -> None:
    ct, ids = store
    kept = str(ct.audit.checkpoints()[-1]["note"])
    # The insider rewrites an event, keeps the tree again and signs a new checkpoint.
    rewrite_with_chain(ct, ids[2], 3)
    ct.audit.rebuild_tree()
    execute(ct, "DELETE FROM audit_checkpoints")
    ct.reads.history(AUDITOR, ids[0])
    assert ct.audit.write_checkpoint(force=True) is not None
    assert ct.audit.verify(ids[2]).ok, "the store alone cannot tell"
    report = ct.audit.verify(ids[2], [kept])
    assert {"not_in_checkpoint", "log_rewritten"} <= codes(report)


def test_without_a_kept_tree_one_case_is_verified_by_reading_the_log(
    store: tuple[Casetrail, list[str]],
) -> None:
    ct, ids = store
    execute(ct, f"DELETE FROM {TREE_TABLE}")  # a store from before the kept tree
    assert ct.audit._verify_case(ids[1], []) is None
    assert ct.audit.verify(ids[1]).ok
    rewrite_with_chain(ct, ids[1], 2)
    assert "log_rewritten" in codes(ct.audit.verify(ids[1]))
    # The next checkpoint keeps the tree from the log; it refuses the rewritten one.
    with pytest.raises(LogInconsistent):
        ct.audit.write_checkpoint(force=True)
    assert ct.audit.tree().kept == 0
