"""What the chain hashes of a personal field: an envelope `{"_enc": key id, "ct": …}`,
the field's JSON sealed with AES-GCM under the data key of the person's record (the key id
is the associated data, so an envelope cannot be moved to another record). Data keys are
stored wrapped by a master key. Without the data key the envelope still hashes the same:
the chain and the Merkle log verify with the key, without it, and after it is destroyed.

Pure, like the rest of `evidence`: no store, no files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE = 12


def is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 2 and "_enc" in value and "ct" in value


def new_wrapped_key(master: bytes) -> str:
    """A fresh data key, wrapped by `master` (base64 of nonce and ciphertext)."""
    nonce = os.urandom(NONCE)
    data_key = AESGCM.generate_key(bit_length=256)
    return base64.b64encode(nonce + AESGCM(master).encrypt(nonce, data_key, None)).decode()


def unwrap(master: bytes, wrapped: str) -> AESGCM:
    return AESGCM(unwrap_raw(master, wrapped))


def unwrap_raw(master: bytes, wrapped: str) -> bytes:
    """The data key's bytes (to derive keys from it: they go when it goes)."""
    raw = base64.b64decode(wrapped)
    return AESGCM(master).decrypt(raw[:NONCE], raw[NONCE:], None)


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from a secret key (HKDF-SHA256, RFC 5869,
    the purpose as its `info`): keys of different purposes are independent, and none
    tells anything of the secret."""
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return kdf.derive(secret)


def seal(key: AESGCM, key_id: str, value: Any) -> dict[str, str]:
    nonce = os.urandom(NONCE)
    plain = json.dumps(value, ensure_ascii=False).encode()
    sealed = base64.b64encode(nonce + key.encrypt(nonce, plain, key_id.encode()))
    return {"_enc": key_id, "ct": sealed.decode()}


def open_sealed(key: AESGCM, envelope: dict[str, str]) -> Any:
    raw = base64.b64decode(envelope["ct"])
    plain = key.decrypt(raw[:NONCE], raw[NONCE:], envelope["_enc"].encode())
    return json.loads(plain.decode())  # seal() wrote UTF-8: no encoding to detect


def subject_hash(master: bytes, id_number: str) -> str:
    """The keyed hash that finds a person's records (never the ID number itself)."""
    key = hmac.new(master, b"casetrail/person-subject", hashlib.sha256).digest()
    return hmac.new(key, id_number.strip().upper().encode(), hashlib.sha256).hexdigest()
