"""Verifies an exported case with nothing but the file and the log's public key. Pure.

Part of the verifier (the security boundary). The file must be exactly in the canonical
form `casetrail audit export` writes, so that no character of it goes unchecked: every
value is covered by a hash, a proof or the checkpoint's signature, and the layout is
checked by re-encoding.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from cryptography.x509 import Certificate

from evidence.chain import GENESIS
from evidence.merkle import leaf_hash, log_entry, verify_inclusion
from evidence.note import NoteError, VerifierKey, open_checkpoint
from evidence.timestamp import check_timestamps
from evidence.verifier import LinkRow, Report, StoredRow, recompute_link
from evidence.witness import WitnessKey, check_quorum

EXPORT_FORMAT = "casetrail-case-export/v1"
EXPORT_FIELDS = frozenset({"format", "case", "public_key", "checkpoint", "events"})
# The witnesses' cosignatures of the checkpoint and its RFC 3161 token (base64 DER).
OPTIONAL_FIELDS = frozenset({"cosignatures", "timestamp"})
EVENT_FIELDS = frozenset(
    {
        "position",
        "version",
        "topic",
        "state",
        "type",
        "recorded_at",
        "actor",
        "actor_role",
        "actor_unit",
        "prev_hash",
        "hash",
        "leaf_index",
        "inclusion_proof",
    }
)


def canonical_export(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, indent=1) + "\n"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_export(
    text: str,
    trusted_key: VerifierKey | None = None,
    witness_keys: Sequence[WitnessKey] = (),
    quorum: int = 0,
    tsa_certificate: Certificate | None = None,
) -> Report:
    """Checks an exported case; `trusted_key` is the log's public key as the auditor knows
    it (without it, the key in the file is used and the caller must say so); with
    `quorum`, the checkpoint must be cosigned by that many of `witness_keys`; with
    `tsa_certificate`, it must carry an RFC 3161 timestamp of that TSA over its note."""
    report = Report()
    try:
        document = json.loads(text)
    except (ValueError, TypeError):
        report.add("export_malformed", "The file is not a casetrail case export (not JSON).")
        return report
    if not isinstance(document, dict) or not (
        EXPORT_FIELDS <= set(document) <= EXPORT_FIELDS | OPTIONAL_FIELDS
    ):
        report.add("export_malformed", "The file does not have the fields of a case export.")
        return report
    if document["format"] != EXPORT_FORMAT:
        report.add("export_malformed", f"The file is not in the {EXPORT_FORMAT} format.")
        return report
    if canonical_export(document) != text:
        report.add(
            "export_altered",
            "The file is not byte for byte in the form casetrail writes: it was edited.",
        )
    try:
        key = VerifierKey.parse(str(document["public_key"]))
    except NoteError as error:
        report.add("export_malformed", f"The file's public key is malformed ({error}).")
        return report
    if trusted_key is not None and key != trusted_key:
        report.add(
            "wrong_key",
            "The file names another public key than the one given: it was not signed by this log.",
        )
        key = trusted_key
    try:
        checkpoint = open_checkpoint(str(document["checkpoint"]), key)
    except NoteError as error:
        report.add(
            "checkpoint_invalid",
            f"The file's checkpoint does not verify with the public key ({error}): it was "
            "altered or forged.",
        )
        return report
    report.checkpoint = checkpoint
    report.log_size = checkpoint.size
    if quorum:
        lines = document.get("cosignatures", [])
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            lines = []
        check_quorum(
            report, [("in the file", str(document["checkpoint"]), lines)], witness_keys, quorum
        )
    if tsa_certificate is not None:
        token = document.get("timestamp")
        rows = [
            ("in the file", str(document["checkpoint"]), token if isinstance(token, str) else None)
        ]
        check_timestamps(report, rows, tsa_certificate)
    case = document["case"]
    events = document["events"]
    if not isinstance(case, str) or not isinstance(events, list) or not events:
        report.add("export_malformed", "The file names no case or holds no events.")
        return report
    previous_hash, previous_position, previous_index = GENESIS, 0, -1
    for number, event in enumerate(events, start=1):
        if not isinstance(event, dict) or set(event) != EVENT_FIELDS:
            report.add("export_malformed", f"Event {number} of the file is malformed.")
            return report
        report.checked_events += 1
        problem = _check_exported_event(
            case, number, event, previous_hash, previous_position, previous_index, checkpoint
        )
        if problem is not None:
            code, message = problem
            report.add(code, message, case=case, version=number)
        previous_hash = str(event["hash"])
        previous_position = event["position"] if _is_int(event["position"]) else 0
        previous_index = event["leaf_index"] if _is_int(event["leaf_index"]) else -1
    return report


def _check_exported_event(
    case: str,
    number: int,
    event: dict[str, Any],
    previous_hash: str,
    previous_position: int,
    previous_index: int,
    checkpoint: Any,
) -> tuple[str, str] | None:
    label = f"Case {case} version {number}"
    if event["version"] != number:
        return (
            "version_missing",
            f"{label}: the file's event {number} says version {event['version']}.",
        )
    if not _is_int(event["position"]) or event["position"] <= previous_position:
        return "order_broken", f"{label}: its position is not after the previous event's."
    if not _is_int(event["leaf_index"]) or event["leaf_index"] <= previous_index:
        return "order_broken", f"{label}: its place in the log is not after the previous event's."
    if event["prev_hash"] != previous_hash:
        return "chain_broken", f"{label} does not follow version {number - 1} in the hash chain."
    try:
        state = base64.b64decode(str(event["state"]), validate=True)
    except (binascii.Error, ValueError):
        return "data_altered", f"{label}: its stored data is not valid base64."
    if base64.b64encode(state).decode() != event["state"]:
        return "data_altered", f"{label}: its stored data is not canonical base64."
    row = StoredRow(event["position"], case, number, event["topic"], state)
    link = LinkRow(
        case,
        number,
        event["position"],
        event["type"],
        event["recorded_at"],
        event["actor"],
        event["actor_role"],
        event["actor_unit"],
        None,
        event["prev_hash"],
        event["hash"],
    )
    recomputed = recompute_link(row, link)
    if recomputed is None or recomputed != event["hash"]:
        return (
            "link_altered",
            f"{label}: its hash does not match its contents (data, type, time or actor): "
            "the event was altered.",
        )
    proof = event["inclusion_proof"]
    try:
        path = [bytes.fromhex(node) for node in proof] if isinstance(proof, list) else None
    except (ValueError, TypeError):
        path = None
    if path is None or any(node.hex() != given for node, given in zip(path, proof, strict=True)):
        return "proof_malformed", f"{label}: its inclusion proof is malformed."
    leaf = leaf_hash(log_entry(event["position"], bytes.fromhex(recomputed)))
    if not verify_inclusion(leaf, event["leaf_index"], checkpoint.size, path, checkpoint.root):
        return (
            "not_in_log",
            f"{label}: its inclusion proof does not lead to the signed checkpoint's root: the "
            "event is not in the log as signed.",
        )
    return None
