"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures, and the
C2SP tlog-checkpoint body (https://c2sp.org/tlog-checkpoint). Pure: no I/O.

Part of the verifier (the security boundary). A checkpoint's note text is

    <origin>\\n<tree size>\\n<base64 root hash>\\ntime <RFC 3339 UTC>\\n

(the last line is an extension line, which the checkpoint format allows), followed by a
blank line and one signature line `— <key name> <base64(key id || signature)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519_TYPE = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space
TIME_PREFIX = "time "
MAX_NOTE_SIZE = 1 << 16
_NAME = re.compile(r"^[^\s+]+$")
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,18})$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed or whose signature does not verify."""


@lru_cache(maxsize=64)
def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 key: SHA-256(name || \\n || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def _b64decode(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError("not valid base64") from None
    # Only the canonical encoding of the bytes is accepted (no stray padding bits).
    if base64.b64encode(raw).decode() != text:
        raise NoteError("not canonical base64")
    return raw


@dataclass(frozen=True)
class VerifierKey:
    """An Ed25519 note verifier key: `<name>+<hex key id>+<base64(0x01 || public key)>`."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def encode(self) -> str:
        material = base64.b64encode(ED25519_TYPE + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)
        if (
            len(parts) != 3
            or not _NAME.match(parts[0])
            or not re.fullmatch(r"[0-9a-f]{8}", parts[1])
        ):
            raise NoteError("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        material = _b64decode(parts[2])
        if len(material) != 33 or material[:1] != ED25519_TYPE:
            raise NoteError("only Ed25519 verifier keys are supported")
        key = cls(parts[0], material[1:])
        if key.key_id.hex() != parts[1]:
            raise NoteError("the verifier key's id does not match its name and key")
        return key

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            _public_key(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@lru_cache(maxsize=64)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    """The key object (parsed once: a verification opens a checkpoint per five minutes of
    the log's life, all under one key)."""
    return Ed25519PublicKey.from_public_bytes(raw)


# Any control character but the newline.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def open_note(note: str, key: VerifierKey) -> str:
    """The text of a signed note, if `key` signed it; raises NoteError otherwise."""
    if not isinstance(note, str) or len(note) > MAX_NOTE_SIZE:
        raise NoteError("a note is text of at most 64 KiB")
    text, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise NoteError("a signed note has a blank line before its signatures")
    text += "\n"
    if _CONTROL.search(text):
        raise NoteError("a note's text has no control characters")
    if not signatures.endswith("\n"):
        raise NoteError("a signed note ends with a newline")
    verified = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not _NAME.match(name) or not encoded:
            raise NoteError("a signature line names its key and carries a signature")
        raw = _b64decode(encoded)
        if len(raw) < 5:
            raise NoteError("a signature is a key id and a signature")
        if name == key.name and raw[:4] == key.key_id:
            if len(raw) != 4 + 64 or not key.verify(text.encode(), raw[4:]):
                raise NoteError(f"the signature of {name} does not verify")
            verified = True
    if not verified:
        raise NoteError(f"the note carries no signature by {key.name}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log's origin, its size, its root hash and when it was signed."""

    origin: str
    size: int
    root: bytes
    time: str  # RFC 3339, UTC, seconds: 2026-03-02T01:00:00Z

    def text(self) -> str:
        if not _NAME.match(self.origin):
            raise NoteError("an origin has no spaces and no '+'")
        if len(self.root) != 32 or not _TIME.match(self.time):
            raise NoteError("a checkpoint has a 32-byte root and a UTC time")
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\n{TIME_PREFIX}{self.time}\n"

    @property
    def moment(self) -> datetime:
        return datetime.strptime(self.time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) != 5 or lines[-1] != "":
        raise NoteError("a checkpoint has four lines: origin, size, root hash and time")
    origin, size, root, time = lines[:4]
    if not _NAME.match(origin):
        raise NoteError("the checkpoint's origin is malformed")
    if not _SIZE.match(size):
        raise NoteError("the checkpoint's tree size is not a decimal number")
    digest = _b64decode(root)
    if len(digest) != 32:
        raise NoteError("the checkpoint's root hash is not 32 bytes")
    if not time.startswith(TIME_PREFIX) or not _TIME.match(time[len(TIME_PREFIX) :]):
        raise NoteError("the checkpoint's time is malformed")
    return Checkpoint(origin, int(size), digest, time[len(TIME_PREFIX) :])


def open_checkpoint(note: str, key: VerifierKey) -> Checkpoint:
    """The checkpoint in a signed note, if `key` signed it for its own origin."""
    checkpoint = parse_checkpoint(open_note(note, key))
    if checkpoint.origin != key.name:
        raise NoteError("the checkpoint is for another log than the key's")
    return checkpoint
