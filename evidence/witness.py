"""Witnesses: C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature) and the witness side
of C2SP tlog-witness (https://c2sp.org/tlog-witness). Pure: no I/O.

A witness keeps, per log origin, the size and root of the last checkpoint it cosigned, and
cosigns a new checkpoint only when given a consistency proof from that one: a log that
rewrote its past cannot produce one, so it cannot get the witness's cosignature.

A cosignature is a note signature line `— <witness name> <base64(key id || timestamp ||
signature)>`, the key id being SHA-256(name || \\n || 0x04 || public key)[:4], the timestamp
a big-endian uint64 of POSIX seconds, and the signature Ed25519 over

    cosignature/v1\\ntime <timestamp>\\n<checkpoint body>
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from evidence.merkle import verify_consistency
from evidence.note import (
    SIGNATURE_PREFIX,
    NoteError,
    VerifierKey,
    _b64decode,
    open_checkpoint,
)
from evidence.verifier import Report

COSIGNATURE_TYPE = b"\x04"
WITNESS_PRIVATE_PREFIX = "PRIVATE+KEY+"
_NAME = re.compile(r"^[^\s+]+$")
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,18})$")
MAX_PROOF = 63


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE_TYPE + public_key).digest()[:4]


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def split_note(note: str) -> tuple[str, list[str]]:
    """The body of a signed note (ending in a newline) and its signature lines."""
    text, separator, signatures = note.rpartition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise NoteError("a signed note has a blank line before its signatures")
    return text + "\n", signatures[:-1].split("\n")


@dataclass(frozen=True)
class WitnessKey:
    """A witness's cosignature verifier key: `<name>+<hex key id>+<base64(0x04 || key)>`."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public_key)

    def encode(self) -> str:
        material = base64.b64encode(COSIGNATURE_TYPE + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def parse(cls, text: str) -> WitnessKey:
        parts = text.strip().split("+", 2)
        if (
            len(parts) != 3
            or not _NAME.match(parts[0])
            or not re.fullmatch(r"[0-9a-f]{8}", parts[1])
        ):
            raise NoteError("a witness key reads <name>+<8 hex digits>+<base64 key>")
        material = _b64decode(parts[2])
        if len(material) != 33 or material[:1] != COSIGNATURE_TYPE:
            raise NoteError("a witness key is an Ed25519 cosignature key (type 0x04)")
        key = cls(parts[0], material[1:])
        if key.key_id.hex() != parts[1]:
            raise NoteError("the witness key's id does not match its name and key")
        return key

    def open(self, line: str, body: str) -> int | None:
        """The timestamp of `line` if it is this witness's valid cosignature of `body`."""
        if not line.startswith(SIGNATURE_PREFIX):
            return None
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = _b64decode(encoded)
        except NoteError:
            return None
        if name != self.name or len(raw) != 4 + 8 + 64 or raw[:4] != self.key_id:
            return None
        (timestamp,) = struct.unpack(">Q", raw[4:12])
        if timestamp >= 1 << 63:
            return None
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                raw[12:], cosigned_message(body, timestamp)
            )
        except (InvalidSignature, ValueError):
            return None
        return int(timestamp)


class WitnessSigner:
    def __init__(self, name: str, seed: bytes) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key = WitnessKey(name, public)

    def encode(self) -> str:
        material = base64.b64encode(COSIGNATURE_TYPE + self._private.private_bytes_raw()).decode()
        return f"{WITNESS_PRIVATE_PREFIX}{self.key.name}+{self.key.key_id.hex()}+{material}"

    @classmethod
    def parse(cls, text: str) -> WitnessSigner:
        parts = text.strip().removeprefix(WITNESS_PRIVATE_PREFIX).split("+", 2)
        if not text.strip().startswith(WITNESS_PRIVATE_PREFIX) or len(parts) != 3:
            raise NoteError("a witness signing key reads PRIVATE+KEY+<name>+<hex id>+<base64>")
        material = _b64decode(parts[2])
        if len(material) != 33 or material[:1] != COSIGNATURE_TYPE:
            raise NoteError("a witness signing key is an Ed25519 cosignature key (type 0x04)")
        signer = cls(parts[0], material[1:])
        if signer.key.key_id.hex() != parts[1]:
            raise NoteError("the witness signing key's id does not match its name and key")
        return signer

    def cosign(self, body: str, timestamp: int) -> str:
        signature = self._private.sign(cosigned_message(body, timestamp))
        raw = self.key.key_id + struct.pack(">Q", timestamp) + signature
        return f"{SIGNATURE_PREFIX}{self.key.name} {base64.b64encode(raw).decode()}"


# --- the tlog-witness protocol ---------------------------------------------------------


def add_checkpoint_request(old_size: int, proof: Sequence[bytes], note: str) -> str:
    """The body of `POST /add-checkpoint`."""
    lines = [f"old {old_size}", *(base64.b64encode(node).decode() for node in proof)]
    return "\n".join(lines) + "\n\n" + note


def parse_add_checkpoint(body: str) -> tuple[int, list[bytes], str]:
    head, separator, note = body.partition("\n\n")
    lines = head.split("\n")
    if not separator or not lines[0].startswith("old ") or not _SIZE.match(lines[0][4:]):
        raise NoteError("the request starts with `old <size>`, proof lines and a blank line")
    if len(lines) - 1 > MAX_PROOF:
        raise NoteError("the consistency proof is too long")
    proof = [_b64decode(line) for line in lines[1:]]
    if any(len(node) != 32 for node in proof):
        raise NoteError("a consistency proof line is not a 32-byte hash")
    return int(lines[0][4:]), proof, note


@dataclass
class Answer:
    status: int
    text: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass
class WitnessState:
    """What a witness remembers: per log origin, the last size and root it cosigned."""

    logs: dict[str, VerifierKey]
    heads: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {origin: [size, root.hex()] for origin, (size, root) in self.heads.items()}

    @staticmethod
    def heads_of(document: Mapping[str, Any]) -> dict[str, tuple[int, bytes]]:
        return {o: (int(v[0]), bytes.fromhex(v[1])) for o, v in document.items()}


def add_checkpoint(
    state: WitnessState, body: str, signer: WitnessSigner, now: Callable[[], int]
) -> Answer:
    """tlog-witness `add-checkpoint`: cosigns and advances `state`, or says why not."""
    try:
        old_size, proof, note = parse_add_checkpoint(body)
        origin = note.split("\n", 1)[0]
    except (NoteError, ValueError) as error:
        return Answer(400, f"{error}\n")
    key = state.logs.get(origin)
    if key is None:
        return Answer(404, "unknown log origin\n")
    try:
        checkpoint = open_checkpoint(note, key)
    except NoteError as error:
        return Answer(403, f"the checkpoint is not signed by the log's key ({error})\n")
    if old_size > checkpoint.size:
        return Answer(400, "old size is larger than the checkpoint's\n")
    known_size, known_root = state.heads.get(origin, (0, b""))
    if old_size != known_size:
        return Answer(409, f"{known_size}\n", "text/x.tlog.size")
    if known_size == 0:
        consistent = not proof
    else:
        consistent = verify_consistency(
            known_size, checkpoint.size, known_root, checkpoint.root, proof
        )
    if not consistent:
        return Answer(422, "the consistency proof does not verify\n")
    state.heads[origin] = (checkpoint.size, checkpoint.root)
    body_text, _ = split_note(note)
    return Answer(200, signer.cosign(body_text, now()) + "\n")


# --- policy ----------------------------------------------------------------------------


def parse_witnesses(text: str) -> list[tuple[WitnessKey, str]]:
    """`CASETRAIL_WITNESSES`: comma-separated `<witness key>@<base URL>`."""
    result = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, separator, url = item.rpartition("@")
        if not separator or not url.startswith(("http://", "https://")):
            raise NoteError("a witness reads <name>+<hex id>+<base64 key>@<http(s) URL>")
        result.append((WitnessKey.parse(key), url.rstrip("/")))
    return result


def cosigners(note: str, lines: Sequence[str], keys: Sequence[WitnessKey]) -> list[str]:
    """The names of the witnesses among `keys` whose valid cosignature of `note` is in `lines`."""
    body, _ = split_note(note)
    return sorted({key.name for key in keys for line in lines if key.open(line, body) is not None})


def check_quorum(
    report: Report,
    checkpoints: Iterable[tuple[Any, str, Sequence[str]]],
    keys: Sequence[WitnessKey],
    quorum: int,
) -> None:
    """Each (number, signed note, cosignature lines) must be cosigned by `quorum` of `keys`.

    A cosignature by a key not given, or over another checkpoint (a replayed one), counts
    for nothing."""
    if quorum > len({key.name for key in keys}):
        report.add(
            "quorum_impossible",
            f"A quorum of {quorum} cannot be met with {len(keys)} witness key(s) given.",
        )
        return
    for number, note, lines in checkpoints:
        try:
            names = cosigners(note, lines, keys)
        except NoteError:
            names = []
        if len(names) < quorum:
            report.add(
                "not_witnessed",
                f"Checkpoint #{number} is cosigned by {len(names)} of the given witnesses "
                f"({', '.join(names) or 'none'}); the quorum is {quorum}: no independent "
                "witness vouches that this log extends what they saw.",
            )
