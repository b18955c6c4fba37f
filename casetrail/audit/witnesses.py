"""Submitting checkpoints to the witnesses (C2SP tlog-witness) and keeping their cosignatures.

Runs in the cron's checkpoint job, never on the append path. A witness that is down is
asked again at the next run, with a consistency proof from the size it last cosigned (which
it says itself, with a 409, when we do not know it)."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from casetrail.db import Database
from evidence.tree import Tree
from evidence.witness import WitnessKey, add_checkpoint_request, cosigners, split_note

COSIGNATURE_TABLE = "audit_cosignatures"
TIMEOUT_SECONDS = 5.0
log = logging.getLogger("casetrail.audit")


def create_tables(db: Database) -> None:
    db.execute_script(
        [
            f"CREATE TABLE IF NOT EXISTS {COSIGNATURE_TABLE} (checkpoint_number BIGINT NOT NULL, "
            "tree_size BIGINT NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, "
            "PRIMARY KEY (checkpoint_number, witness))"
        ]
    )


def cosignatures(db: Database) -> dict[int, list[str]]:
    """The stored cosignature lines, by checkpoint number."""
    result: dict[int, list[str]] = {}
    for row in db.query(
        f"SELECT checkpoint_number, line FROM {COSIGNATURE_TABLE} "
        "ORDER BY checkpoint_number, witness"
    ):
        result.setdefault(int(row["checkpoint_number"]), []).append(str(row["line"]))
    return result


def _last_cosigned(db: Database, witness: str) -> int:
    row = db.query_one(
        f"SELECT MAX(tree_size) AS size FROM {COSIGNATURE_TABLE} WHERE witness = ?", (witness,)
    )
    return int(row["size"]) if row and row["size"] is not None else 0


def _post(url: str, body: str) -> tuple[int, str]:
    request = urllib.request.Request(url + "/add-checkpoint", data=body.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode(errors="replace")


def submit(
    db: Database,
    tree: Tree,
    number: int,
    note: str,
    size: int,
    witnesses: list[tuple[WitnessKey, str]],
) -> list[str]:
    """Asks every witness that has not cosigned checkpoint `number` yet; returns the names
    of those that cosign it now. Only a cosignature that verifies is stored."""
    have = set(cosigners(note, cosignatures(db).get(number, []), [k for k, _ in witnesses]))

    def ask(key: WitnessKey, url: str) -> str | None:
        old = min(_last_cosigned(db, key.name), size)
        for _ in range(2):
            proof = tree.consistency_proof(old, size) if 0 < old < size else []
            try:
                status, text = _post(url, add_checkpoint_request(old, proof, note))
            except (OSError, ValueError) as error:
                log.warning("witness %s unreachable (%s)", key.name, type(error).__name__)
                return None
            if status == 409 and text.strip().isdigit() and int(text.strip()) <= size:
                old = int(text.strip())  # the witness says which size it last cosigned
                continue
            break
        if status != 200:
            log.warning(
                "witness %s refused checkpoint #%s: %s %s",
                key.name,
                number,
                status,
                text.strip()[:200],
            )
            return None
        body, _ = split_note(note)
        for line in text.strip().split("\n"):
            if key.open(line, body) is not None:
                return line
        log.warning("witness %s answered with no valid cosignature", key.name)
        return None

    todo = [(key, url) for key, url in witnesses if key.name not in have]
    if not todo:
        return []
    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        lines = list(pool.map(lambda w: ask(*w), todo))
    added = []
    for (key, _), line in zip(todo, lines, strict=True):
        if line is None:
            continue
        with db.transaction() as cur:
            cur.execute(
                f"DELETE FROM {COSIGNATURE_TABLE} WHERE checkpoint_number = ? AND witness = ?",
                (number, key.name),
            )
            cur.execute(
                f"INSERT INTO {COSIGNATURE_TABLE} (checkpoint_number, tree_size, witness, line) "
                "VALUES (?, ?, ?, ?)",
                (number, size, key.name, line),
            )
        added.append(key.name)
    return added
