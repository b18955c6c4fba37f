"""The pure verifier on rows made in memory: an honest log verifies; any single change to
any row, or a missing, duplicated or reordered row, is reported; nothing crashes it."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from casetrail.audit.keys import Signer
from evidence.chain import GENESIS, ChainEntry, canonical_encoding, link_hash
from evidence.merkle import leaf_hash, log_entry, root_of
from evidence.note import Checkpoint
from evidence.offline import verify_export
from evidence.verifier import CheckpointRow, LinkRow, StoredRow, verify_log

SIGNER = Signer("example.org/verifier-test", bytes(range(32)))
STREAMS = [str(uuid.UUID(int=n + 1)) for n in range(4)]


def honest_log(events: int = 24) -> tuple[list[StoredRow], list[LinkRow], list[CheckpointRow]]:
    rows, links, last = [], [], {}
    for position in range(1, events + 1):
        case = STREAMS[(position * 7) % len(STREAMS)]
        version, prev = last.get(case, (0, GENESIS))
        version += 1
        topic = (
            "domain.dispute:DisputeTriaged" if version > 1 else "domain.dispute:DisputeRegistered"
        )
        state = json.dumps({"data": {"n": position}, "actor": "u_1"}).encode()
        fields = (
            topic.rpartition(":")[2],
            f"2026-03-02T01:{position:02d}:00+00:00",
            "u_1",
            "caseworker",
            "320102",
        )
        digest = hashlib.sha256(state).hexdigest()
        chain_hash = link_hash(case, version, topic, *fields, digest, prev)
        rows.append(StoredRow(position, case.replace("-", ""), version, topic, state))
        links.append(LinkRow(case, version, position, *fields, digest, prev, chain_hash))
        last[case] = (version, chain_hash)
    leaves = [leaf_hash(log_entry(link.position, bytes.fromhex(link.hash))) for link in links]
    checkpoints = []
    for number, size in enumerate((events // 2, events), start=1):
        checkpoint = Checkpoint(SIGNER.name, size, root_of(leaves[:size]), "2026-03-02T02:00:00Z")
        note = SIGNER.sign_note(checkpoint.text())
        checkpoints.append(CheckpointRow(number, size, checkpoint.root.hex(), note))
    return rows, links, checkpoints


def verify(rows: list[Any], links: list[Any], checkpoints: list[Any]) -> Any:
    return verify_log(rows, links, checkpoints, SIGNER.verifier)


def test_an_honest_log_verifies() -> None:
    report = verify(*honest_log())
    assert report.ok and report.checked_events == 24 and report.checkpoint is not None


def changed(value: Any, how: int) -> Any:
    """Some other value of about the same kind."""
    if isinstance(value, bytes):
        data = bytearray(value)
        data[how % len(data)] ^= 1 << (how % 8)
        return bytes(data)
    if isinstance(value, str) and value:
        at = how % len(value)
        return value[:at] + ("x" if value[at] != "x" else "y") + value[at + 1 :]
    if isinstance(value, int):
        return value + 1 + how % 3
    return "changed"


@settings(max_examples=300)
@given(data=st.data())
def test_any_single_change_to_any_row_is_reported(data: st.DataObject) -> None:
    rows, links, checkpoints = honest_log()
    table = data.draw(st.sampled_from(["events", "links", "checkpoints"]))
    target = {"events": rows, "links": links, "checkpoints": checkpoints}[table]
    index = data.draw(st.integers(0, len(target) - 1))
    row = target[index]
    action = data.draw(st.sampled_from(["change", "delete", "duplicate", "swap"]))
    if action == "change":
        field = data.draw(st.integers(0, len(row) - 1))
        values = list(row)
        values[field] = changed(values[field], data.draw(st.integers(0, 10_000)))
        target[index] = type(row)(*values)
    elif action == "delete":
        if table == "checkpoints" and index == len(target) - 1:
            return  # the newest checkpoint's row: only a copy kept elsewhere can tell
        del target[index]
    elif action == "duplicate":
        target.insert(index, row)
    else:
        other = data.draw(st.integers(0, len(target) - 1).filter(lambda i: target[i] != row))
        target[index], target[other] = target[other], target[index]
        if table == "events":  # rows swap their contents, positions stay
            a, b = target[index], target[other]
            target[index] = StoredRow(b.position, *a[1:])
            target[other] = StoredRow(a.position, *b[1:])
        elif table == "links":
            a, b = target[index], target[other]
            target[index] = LinkRow(*a[:2], b.position, *a[3:])
            target[other] = LinkRow(*b[:2], a.position, *b[3:])
        else:
            return  # checkpoint rows are read in number order; their order is not data
    assert not verify(rows, links, checkpoints).ok, (table, index, action)


junk = st.one_of(
    st.none(), st.integers(-5, 5), st.text(max_size=8), st.binary(max_size=8), st.floats()
)


@settings(max_examples=200)
@given(values=st.lists(junk, min_size=16, max_size=16))
def test_malformed_rows_are_reported_without_a_crash(values: list[Any]) -> None:
    rows, links, checkpoints = honest_log(6)
    rows.append(StoredRow(*values[:5]))
    links.append(LinkRow(*values[5:16]))
    checkpoints.append(CheckpointRow(*values[:4]))
    assert not verify(rows, links, checkpoints).ok


@given(fields=st.lists(st.text(), min_size=8, max_size=8), version=st.integers(0, 2**40))
def test_the_fast_canonical_encoding_is_the_documented_json(
    fields: list[str], version: int
) -> None:
    case, topic, event_type, recorded_at, actor, role, unit, prev = fields
    entry = ChainEntry(event_type, recorded_at, actor, role, unit)
    document = {
        "case": case,
        "version": version,
        "topic": topic,
        "type": event_type,
        "recorded_at": recorded_at,
        "actor": actor,
        "actor_role": role,
        "actor_unit": unit,
        "data_sha256": "d" * 64,
        "prev": prev,
    }
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (
        canonical_encoding(case, version, entry, "d" * 64, prev, topic=topic) == expected.encode()
    )


@settings(max_examples=300)
@given(text=st.text(max_size=300))
def test_random_files_are_not_exports_and_do_not_crash_the_offline_check(text: str) -> None:
    assert not verify_export(text).ok
    assert not verify_export(json.dumps({"format": "casetrail-case-export/v1", "x": text})).ok
