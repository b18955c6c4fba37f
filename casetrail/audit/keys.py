"""The log's Ed25519 signing key: from `CASETRAIL_SIGNING_KEY`, or a file under the data
directory made on first start.

Keys are written in the C2SP signed-note form, `PRIVATE+KEY+<name>+<hex id>+<base64>`, so
that standard note tooling reads them; the name is also the log's checkpoint origin.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from evidence.note import (
    ED25519_TYPE,
    SIGNATURE_PREFIX,
    NoteError,
    VerifierKey,
    _b64decode,
    key_id,
)

KEY_FILE = "audit-signing.key"
SIGNER_PREFIX = "PRIVATE+KEY+"


class Signer:
    def __init__(self, name: str, seed: bytes) -> None:
        self.name = name
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = VerifierKey(name, public)

    @classmethod
    def generate(cls) -> Signer:
        seed = os.urandom(32)
        public = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        name = "casetrail.local/log-" + hashlib.sha256(public).hexdigest()[:12]
        return cls(name, seed)

    @classmethod
    def parse(cls, text: str) -> Signer:
        text = text.strip()
        if not text.startswith(SIGNER_PREFIX):
            raise NoteError("a signing key reads PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        parts = text[len(SIGNER_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise NoteError("a signing key reads PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        material = _b64decode(parts[2])
        if len(material) != 33 or material[:1] != ED25519_TYPE:
            raise NoteError("only Ed25519 signing keys are supported")
        signer = cls(parts[0], material[1:])
        if signer.verifier.key_id.hex() != parts[1]:
            raise NoteError("the signing key's id does not match its name and key")
        return signer

    def encode(self) -> str:
        seed = self._private.private_bytes_raw()
        material = base64.b64encode(ED25519_TYPE + seed).decode()
        return f"{SIGNER_PREFIX}{self.name}+{self.verifier.key_id.hex()}+{material}"

    def sign_note(self, text: str) -> str:
        """The signed note of `text` (which ends with a newline)."""
        if not text.endswith("\n"):
            raise NoteError("a note's text ends with a newline")
        signature = self._private.sign(text.encode())
        encoded = base64.b64encode(key_id(self.name, self.verifier.public_key) + signature)
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {encoded.decode()}\n"


def _read_when_written(path: Path) -> Signer:
    """Another process made the file a moment ago; wait until its key is in it."""
    for _ in range(100):
        text = path.read_text()
        if text.endswith("\n"):
            return Signer.parse(text)
        time.sleep(0.02)
    return Signer.parse(path.read_text())


def load_signer(configured: str | None, data_dir: Path) -> Signer:
    """The configured key, else the key file under the data directory (made if missing)."""
    if configured:
        return Signer.parse(configured)
    path = data_dir / KEY_FILE
    if path.exists():
        return _read_when_written(path)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = Signer.generate()
    # O_EXCL: when two processes start at once, one key wins and both use it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(signer.encode() + "\n")
    return signer
