"""Asking others to vouch for the latest checkpoint: the witnesses in `CASETRAIL_WITNESSES`
(C2SP tlog-witness, `POST /add-checkpoint`) and the time-stamping authority at
`CASETRAIL_TSA_URL` (RFC 3161). Run by the cron's checkpoint job, never on the append path.

A witness that is down is asked again at the next run, with a consistency proof from the
size it last cosigned (which it says itself, with a 409, when we do not know it)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from casetrail.audit import records, witnesses
from casetrail.bootstrap import Casetrail
from evidence.timestamp import TimestampError, read_token, timestamp_request, token_of_response
from evidence.witness import (
    WitnessKey,
    add_checkpoint_request,
    cosigners,
    parse_witnesses,
    split_note,
)

TIMEOUT_SECONDS = 5.0
log = logging.getLogger("casetrail.audit")


def _post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def witness(ct: Casetrail) -> list[str]:
    """Submits the latest checkpoint to every witness that has not cosigned it yet; the
    names of those that cosign it now. Only a cosignature that verifies is kept."""
    configured = parse_witnesses(ct.settings.witnesses)
    last = records.latest_checkpoint(ct.db)
    if last is None or not configured:
        return []
    tree = ct.audit.tree()
    number, note, size = int(last.number), str(last.note), int(last.tree_size)
    if size > tree.size:
        return []
    have = set(
        cosigners(note, witnesses.cosignatures(ct.db).get(number, []), [k for k, _ in configured])
    )
    body, _ = split_note(note)

    def ask(key: WitnessKey, url: str) -> str | None:
        old = min(witnesses.last_cosigned(ct.db, key.name), size)
        for _ in range(2):
            try:
                proof = tree.consistency_proof(old, size) if 0 < old < size else []
            except (LookupError, ValueError) as error:  # the kept tree or chain damaged
                log.warning("no consistency proof for witness %s (%s)", key.name, error)
                return None
            try:
                status, answer = _post(
                    url + "/add-checkpoint",
                    add_checkpoint_request(old, proof, note).encode(),
                    "text/plain",
                )
            except OSError as error:
                log.warning("witness %s unreachable (%s)", key.name, type(error).__name__)
                return None
            text = answer.decode(errors="replace").strip()
            if status == 409 and text.isdigit() and int(text) <= size:
                old = int(text)  # the witness says which size it last cosigned
                continue
            break
        if status != 200:
            log.warning(
                "witness %s refused checkpoint #%s: %s %s", key.name, number, status, text[:200]
            )
            return None
        return next((line for line in text.split("\n") if key.open(line, body) is not None), None)

    todo = [(key, url) for key, url in configured if key.name not in have]
    if not todo:
        return []
    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        lines = list(pool.map(lambda w: ask(*w), todo))
    added = []
    for (key, _), line in zip(todo, lines, strict=True):
        if line is not None:
            values = {"tree_size": size, "witness": key.name, "line": line}
            witnesses.keep(ct.db, witnesses.COSIGNATURE_TABLE, number, values)
            added.append(key.name)
    return added


def stamp(ct: Casetrail) -> bool:
    """Asks the TSA (if one is set) once for a timestamp token over the latest checkpoint's
    signed note; keeps it if it answers this request (nonce and messageImprint checked
    here, the TSA's signature offline by `casetrail audit verify --tsa-cert`)."""
    last = records.latest_checkpoint(ct.db)
    url = ct.settings.tsa_url
    if last is None or not url or int(last.number) in witnesses.timestamps(ct.db):
        return False
    note = str(last.note).encode()
    nonce = secrets.randbits(63)
    try:
        _, answer = _post(url, timestamp_request(note, nonce), "application/timestamp-query")
        token = token_of_response(answer)
        stamped, _ = read_token(token)
        if stamped.nonce != nonce or stamped.imprint != hashlib.sha256(note).digest():
            raise TimestampError("the TSA's answer is not for this request")
    except (OSError, ValueError) as error:  # TimestampError is a ValueError
        log.warning("no timestamp for checkpoint #%s (%s)", last.number, error)
        return False
    witnesses.keep(
        ct.db, witnesses.TIMESTAMP_TABLE, int(last.number), {"token": witnesses.encode_token(token)}
    )
    return True
