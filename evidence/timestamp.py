"""RFC 3161 trusted timestamps of signed checkpoints: the request, and the offline check of
a token against the time-stamping authority's certificate. Pure: stdlib and cryptography
(a small DER reader instead of an ASN.1 library, so that a verifier needs nothing else).

A token is a CMS SignedData (RFC 5652) whose content is a TSTInfo; it verifies when the
TSA's signature over the signed attributes holds, the attributes' message digest is that of
the TSTInfo, and the TSTInfo's messageImprint is SHA-256 of the checkpoint's signed note.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from evidence.verifier import Report

SHA256_OID = "2.16.840.1.101.3.4.2.1"
SIGNED_DATA_OID = "1.2.840.113549.1.7.2"
TST_INFO_OID = "1.2.840.113549.1.9.16.1.4"
CONTENT_TYPE_OID = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST_OID = "1.2.840.113549.1.9.4"
HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    SHA256_OID: hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}


class TimestampError(ValueError):
    """A token or response that is malformed or does not verify."""


# --- DER ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    tag: int
    body: bytes
    raw: bytes  # the whole element, tag and length included

    def children(self) -> list[Node]:
        if not self.tag & 0x20:
            raise TimestampError("a primitive element has no children")
        result, at = [], 0
        while at < len(self.body):
            node, at = _read(self.body, at)
            result.append(node)
        return result

    def oid(self) -> str:
        if self.tag != 0x06 or not self.body:
            raise TimestampError("not an object identifier")
        first, values, value = self.body[0], [], 0
        values += [min(first // 40, 2), first - 40 * min(first // 40, 2)]
        for byte in self.body[1:]:
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                values.append(value)
                value = 0
        return ".".join(str(v) for v in values)

    def integer(self) -> int:
        if self.tag != 0x02 or not self.body:
            raise TimestampError("not an integer")
        return int.from_bytes(self.body, "big", signed=True)


def _read(data: bytes, at: int) -> tuple[Node, int]:
    if at + 2 > len(data):
        raise TimestampError("truncated DER")
    tag, length, start = data[at], data[at + 1], at + 2
    if tag & 0x1F == 0x1F:
        raise TimestampError("high tag numbers are not used in a token")
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise TimestampError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise TimestampError("truncated DER")
    return Node(tag, data[start:end], data[at:end]), end


def parse(data: bytes) -> Node:
    node, end = _read(data, 0)
    if end != len(data):
        raise TimestampError("trailing bytes after DER")
    return node


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | ((n.bit_length() + 7) // 8)])
        + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + body


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


# --- request and response ----------------------------------------------------------------


def timestamp_request(message: bytes, nonce: int) -> bytes:
    """TimeStampReq v1: SHA-256 messageImprint of `message`, `nonce`, the TSA's certificate."""
    sha256 = _der(0x30, _der(0x06, bytes.fromhex("608648016503040201")) + _der(0x05, b""))
    imprint = _der(0x30, sha256 + _der(0x04, hashlib.sha256(message).digest()))
    return _der(0x30, _der_int(1) + imprint + _der_int(nonce) + _der(0x01, b"\xff"))


def token_of_response(data: bytes) -> bytes:
    """The token in a TimeStampResp whose status is granted (0) or grantedWithMods (1)."""
    parts = parse(data).children()
    status = parts[0].children()[0].integer()
    if status not in (0, 1) or len(parts) < 2:
        raise TimestampError(f"the TSA did not grant a timestamp (status {status})")
    return parts[1].raw


@dataclass(frozen=True)
class Stamp:
    time: datetime
    nonce: int | None
    imprint: bytes


def read_token(token: bytes) -> tuple[Stamp, Node]:
    """The TSTInfo of a token (unverified) and its SignedData."""
    content_info = parse(token).children()
    if content_info[0].oid() != SIGNED_DATA_OID or content_info[1].tag != 0xA0:
        raise TimestampError("the token is not a CMS SignedData")
    signed_data = content_info[1].children()[0]
    encapsulated = signed_data.children()[2].children()
    if encapsulated[0].oid() != TST_INFO_OID:
        raise TimestampError("the token's content is not a TSTInfo")
    info = parse(encapsulated[1].children()[0].body).children()
    algorithm = info[2].children()[0].children()[0].oid()
    if algorithm != SHA256_OID:
        raise TimestampError("the token's messageImprint is not SHA-256")
    imprint = info[2].children()[1].body
    gen_time = info[4]
    if gen_time.tag != 0x18:
        raise TimestampError("the token has no genTime")
    text = gen_time.body.decode("ascii")
    moment = datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    nonce = next((node.integer() for node in info[5:] if node.tag == 0x02), None)
    return Stamp(moment, nonce, imprint), signed_data


def verify_token(token: bytes, message: bytes, certificate: x509.Certificate) -> Stamp:
    """The token's time, if the TSA of `certificate` signed it over SHA-256 of `message`."""
    try:
        stamp, signed_data = read_token(token)
        parts = signed_data.children()
        signer_infos = parts[-1].children()
        if len(signer_infos) != 1:
            raise TimestampError("the token has not exactly one signer")
        signer = signer_infos[0].children()
        digest_oid = signer[2].children()[0].oid()
        attributes = signer[3]
        if attributes.tag != 0xA0 or digest_oid not in HASHES:
            raise TimestampError("the token's signer has no signed attributes")
        found = {}
        for attribute in attributes.children():
            oid, values = attribute.children()
            found[oid.oid()] = values.children()[0]
        info_der = parts[2].children()[1].children()[0].body
        algorithm = HASHES[digest_oid]()
        digest = hashes.Hash(algorithm)
        digest.update(info_der)
        if (
            found.get(CONTENT_TYPE_OID) is None
            or found[CONTENT_TYPE_OID].oid() != TST_INFO_OID
            or found.get(MESSAGE_DIGEST_OID) is None
            or found[MESSAGE_DIGEST_OID].body != digest.finalize()
        ):
            raise TimestampError("the signed attributes do not match the TSTInfo")
        signed = b"\x31" + attributes.raw[1:]  # signed as a SET OF (RFC 5652 §5.4)
        _check_signature(certificate, signer[5].body, signed, algorithm)
    except (IndexError, ValueError, UnicodeDecodeError) as error:
        if isinstance(error, TimestampError):
            raise
        raise TimestampError("the token is malformed") from None
    if stamp.imprint != hashlib.sha256(message).digest():
        raise TimestampError("the token is for another message than this checkpoint's note")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or ExtendedKeyUsageOID.TIME_STAMPING not in usage:
        raise TimestampError("the certificate is not a time-stamping authority's")
    return stamp


def _check_signature(
    certificate: x509.Certificate, signature: bytes, signed: bytes, algorithm: hashes.HashAlgorithm
) -> None:
    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signed)
        else:
            raise TimestampError("the TSA's key type is not supported")
    except InvalidSignature:
        raise TimestampError("the TSA's signature does not verify") from None


def load_certificate(data: bytes) -> x509.Certificate:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise TimestampError("not an X.509 certificate (PEM or DER)") from None


def check_timestamps(
    report: Report,
    checkpoints: Iterable[tuple[Any, str, str | None]],
    certificate: x509.Certificate,
) -> None:
    """Each (number, signed note, base64 token) must carry a token of this TSA over its note."""
    for number, note, encoded in checkpoints:
        if not encoded:
            report.add("not_timestamped", f"Checkpoint #{number} has no RFC 3161 timestamp.")
            continue
        try:
            token = base64.b64decode(encoded, validate=True)
            verify_token(token, note.encode(), certificate)
        except (TimestampError, ValueError) as error:
            report.add(
                "timestamp_invalid",
                f"Checkpoint #{number}: its timestamp does not verify ({error}).",
            )
