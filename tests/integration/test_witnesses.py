"""Witnessed checkpoints on real stores: `casetrail witness` processes speaking C2SP
tlog-witness over HTTP, cosignatures stored and exported, quorum checked offline, and the
attacks of an insider who holds the database and the signing key."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casetrail.audit import trail
from casetrail.audit.records import create_tables as create_checkpoint_table
from casetrail.audit.witnesses import COSIGNATURE_TABLE
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from cli.main import main
from cli.witness import Witness, handler_for, load_witness_key
from domain.clock import FixedClock
from evidence.chain import ChainEntry, event_hash
from evidence.note import Checkpoint, open_checkpoint
from evidence.offline import verify_export
from evidence.verifier import Report
from evidence.witness import (
    WitnessKey,
    WitnessSigner,
    WitnessState,
    add_checkpoint,
    cosigners,
    parse_witnesses,
)
from evidence.witness import add_checkpoint_request as request_body
from store.log_tree import TREE_TABLE
from tests.integration.audit_support import WORKER, build_store, registration
from tests.units import TEST_UNITS
from workers import jobs
from workers.witnessing import witness


class ThreadWitness:
    """A witness served from a thread of the test (real HTTP, its own key and state file)."""

    def __init__(self, directory: Path, name: str, log_key: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.signer = load_witness_key(directory / f"{name}.key", name)
        self.witness = Witness(self.signer, directory / f"{name}.json", [log_key])
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self.witness))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def key(self) -> WitnessKey:
        return self.signer.key

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def witnessed(
    settings: Settings, clock: FixedClock, urls: list[tuple[WitnessKey, str]]
) -> Casetrail:
    spec = ",".join(f"{key.encode()}@{url}" for key, url in urls)
    ct = bootstrap(settings.with_(witnesses=spec, witness_quorum=2), clock=clock)
    ct.directory.load_units(TEST_UNITS)
    return ct


def checkpoint_job(ct: Casetrail) -> list[str]:
    """The cron's checkpoint job on this casetrail; the witnesses of the latest checkpoint."""
    previous = jobs._casetrail
    jobs.use(ct)
    try:
        jobs.checkpoint_job()
    finally:
        jobs._casetrail = previous
    latest = ct.audit.checkpoints()[-1]
    keys = parse_witnesses(ct.settings.witnesses)
    return cosigners(latest["note"], latest["cosignatures"], [key for key, _ in keys])


def add_cases(ct: Casetrail, clock: FixedClock, n: int) -> None:
    for i in range(n):
        clock.advance(timedelta(minutes=3))
        ct.service.open_case(WORKER, "dispute", "320102", "DisputeRegistered", registration(i))


# --- real witness processes --------------------------------------------------------------


def start_witness(
    directory: Path, name: str, log_key: str, port: int = 0
) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable, "-c", "from cli.main import main; main()", "witness",
        "--key-file", str(directory / f"{name}.key"), "--name", name,
        "--state", str(directory / f"{name}.json"), "--log", log_key,
        "--port", str(port),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("witness "), line
    return process, line.split(" on ")[1].strip()


def test_witness_processes_cosign_and_one_that_was_down_is_asked_again(
    settings: Settings, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = bootstrap(settings, clock=clock)
    log_key = first.audit.public_key
    first.close()
    processes = [start_witness(tmp_path, f"w{i}", log_key) for i in range(3)]
    try:
        keys = [
            WitnessKey.parse(
                subprocess.run(
                    [sys.executable, "-c", "from cli.main import main; main()", "witness",
                     "--key-file", str(tmp_path / f"w{i}.key"), "--print-key"],
                    capture_output=True, text=True, check=True,
                ).stdout
            )
            for i in range(3)
        ]  # fmt: skip
        urls = [(key, url) for key, (_, url) in zip(keys, processes, strict=True)]
        ct = witnessed(settings, clock, urls)
        try:
            ids = build_store(ct, clock, 6)
            started = time.perf_counter()
            assert sorted(witness(ct)) == ["w0", "w1", "w2"]
            seconds = time.perf_counter() - started
            print(f"checkpoint submission to 3 witness processes: {seconds * 1000:.0f} ms")
            assert seconds < 1.0
            report = ct.audit.verify()
            ct.audit.check_witnesses(report, keys, 3)
            # Only the last checkpoint was submitted; the two before it were not witnessed.
            assert [p.code for p in report.problems] == ["not_witnessed", "not_witnessed"]
            # The checkpoints read two at a time, with their cosignatures: the same findings.
            monkeypatch.setattr(trail, "VOUCHED_CHUNK", 2)
            chunked = Report()
            ct.audit.check_witnesses(chunked, keys, 3)
            assert chunked.problems == report.problems
            monkeypatch.undo()
            # One case is proved in the latest checkpoint alone, which all three cosigned.
            one = ct.audit.verify(ids[0])
            ct.audit.check_witnesses(one, keys, 3, latest=True)
            assert one.ok and one.checkpoint is not None, one.problems
            ct.audit.check_witnesses(one, keys[:1], 1, latest=True)
            ct.audit.check_witnesses(one, keys[:2], 3, latest=True)
            assert [p.code for p in one.problems] == ["quorum_impossible"]
            listed = ct.audit.checkpoints()
            assert len(listed[-1]["cosignatures"]) == 3
            export = ct.audit.export_case(ids[0])
            assert json.loads(export)["cosignatures"] == listed[-1]["cosignatures"]
            assert verify_export(export, ct.audit.signer.verifier, keys, 3).ok
            saved = tmp_path / "case.json"
            saved.write_text(export)
            arguments = ["audit", "verify-export", str(saved), "--public-key", log_key]
            for key in keys:
                arguments += ["--witness-key", key.encode()]
            result = CliRunner().invoke(main, [*arguments, "--quorum", "3"])
            assert result.exit_code == 0, result.output
            result = CliRunner().invoke(main, [*arguments[:-2], "--quorum", "3"])
            assert result.exit_code == 2  # two keys cannot make a quorum of three

            # w2 goes down; the next checkpoint is cosigned by two, which is the quorum.
            process, url = processes[2]
            process.terminate()
            process.wait(10)
            add_cases(ct, clock, 3)
            assert sorted(checkpoint_job(ct)) == ["w0", "w1"]
            report = ct.audit.verify()
            ct.audit.check_witnesses(report, keys[:2], 2)
            assert report.ok or {p.code for p in report.problems} == {"not_witnessed"}
            # Back up (same key, same state): asked again at the next run, with a proof
            # from the size it last cosigned, which it says itself.
            processes[2] = start_witness(tmp_path, "w2", log_key, int(url.rsplit(":", 1)[1]))
            add_cases(ct, clock, 2)
            assert sorted(checkpoint_job(ct)) == ["w0", "w1", "w2"]
            assert len(ct.audit.checkpoints()[-1]["cosignatures"]) == 3
            state = json.loads((tmp_path / "w2.json").read_text())
            assert (
                state[ct.audit.signer.name][0]
                == open_checkpoint(
                    str(ct.audit.checkpoints()[-1]["note"]), ct.audit.signer.verifier
                ).size
            )
        finally:
            ct.close()
    finally:
        for process, _ in processes:
            process.terminate()
            process.wait(10)


# --- the insider ---------------------------------------------------------------------------


def log_links(ct: Casetrail) -> list[dict[str, Any]]:
    """The log's leaves in order: one chain row per event, case events and read-access
    records alike (both are in the Merkle log)."""
    return ct.db.query(
        "SELECT case_id, version, position, event_type FROM case_event_chain ORDER BY position"
    )


def rewrite_event(ct: Casetrail, leaf: int, erase_cosignatures: bool) -> None:
    """As an insider with the database and the signing key: rewrites the event that is
    leaf `leaf` of the log (its `reason` field: a read-access record's index rows do not
    name it, so they still match), recomputes its case's chain and the kept Merkle tree,
    erases the checkpoints' cosignatures or not, re-signs every checkpoint and signs a new
    one."""
    db = ct.db
    link = log_links(ct)[leaf]
    case_id = str(link["case_id"])
    position_column = db.position_column
    rows = db.query(
        "SELECT version, position, event_type, recorded_at, actor, actor_role, actor_unit "
        "FROM case_event_chain WHERE case_id = ? ORDER BY version",
        (case_id,),
    )
    prev = "0" * 64
    with db.transaction() as cur:
        for row in rows:
            stored = cur.execute(
                f"SELECT topic, state FROM {ct.audit.events_table} WHERE {position_column} = ?",
                (row["position"],),
            ).fetchone()
            assert stored is not None
            state = bytes(stored["state"])
            if row["version"] == link["version"]:
                if b'"reason":null' in state:
                    state = state.replace(b'"reason":null', '"reason":"改寫"'.encode(), 1)
                else:  # a sealed reason (per-person keys): another byte of the JSON then
                    state = b" " + state
                cur.execute(
                    f"UPDATE {ct.audit.events_table} SET state = ? WHERE {position_column} = ?",
                    (state, row["position"]),
                )
                written = cur.execute(
                    f"SELECT state FROM {ct.audit.events_table} WHERE {position_column} = ?",
                    (row["position"],),
                ).fetchone()
                assert written is not None and bytes(written["state"]) == state
                assert state != bytes(stored["state"]), "the rewrite changed no stored byte"
            if row["version"] < link["version"]:
                prev = str(
                    cur.execute(
                        "SELECT hash FROM case_event_chain WHERE case_id = ? AND version = ?",
                        (case_id, row["version"]),
                    ).fetchone()["hash"]  # type: ignore[index]
                )
                continue
            entry = ChainEntry(
                row["event_type"], row["recorded_at"], row["actor"], row["actor_role"],
                row["actor_unit"],
            )  # fmt: skip
            digest = hashlib.sha256(state).hexdigest()
            new = event_hash(case_id, row["version"], entry, digest, prev, topic=stored["topic"])
            cur.execute(
                "UPDATE case_event_chain SET data_sha256 = ?, prev_hash = ?, hash = ? "
                "WHERE case_id = ? AND version = ?",
                (digest, prev, new, case_id, row["version"]),
            )
            prev = new
        if erase_cosignatures:
            cur.execute(f"DELETE FROM {COSIGNATURE_TABLE}")
    # Every checkpoint re-signed over the rewritten tree, under its old number and time.
    ct.audit.rebuild_tree()
    tree = ct.audit.tree()
    for row in ct.db.query("SELECT number, tree_size, note FROM audit_checkpoints"):
        old = open_checkpoint(str(row["note"]), ct.audit.signer.verifier)
        again = Checkpoint(old.origin, old.size, tree.root(old.size), old.time)
        with db.transaction() as cur:
            cur.execute(
                "UPDATE audit_checkpoints SET root_hash = ?, note = ? WHERE number = ?",
                (again.root.hex(), ct.audit.signer.sign_note(again.text()), row["number"]),
            )
    ct.audit.write_checkpoint(force=True)


def test_the_insider_who_rewrites_a_witnessed_event_is_caught_every_time(
    settings: Settings, clock: FixedClock, tmp_path: Path, backend: str
) -> None:
    first = bootstrap(settings, clock=clock)
    log_key = first.audit.signer.verifier
    first.close()
    witnesses = [ThreadWitness(tmp_path / "w", f"w{i}", log_key) for i in range(3)]
    ct = witnessed(settings, clock, [(w.key, w.url) for w in witnesses])
    keys = [w.key for w in witnesses]
    rng = random.Random(1919)
    rewritten: dict[str, int] = {}  # kinds of event rewritten: case events, read records
    try:
        # 100 rounds on SQLite; 20 on PostgreSQL (each builds a store over the network).
        rounds = 100 if backend == "sqlite" else 20
        for round_ in range(rounds):
            if round_:
                reset(ct, witnesses)
            ids = build_store(ct, clock, 2)
            assert len(witness(ct)) == 3
            before = ct.audit.export_case(ids[rng.randrange(2)])
            cosigned = open_checkpoint(
                str(ct.audit.checkpoints()[-1]["note"]), ct.audit.signer.verifier
            )
            add_cases(ct, clock, 1)
            # Event k of the log, k inside what the witnesses cosigned (a later event is
            # not theirs to vouch for: they rightly cosign a log rewritten after it).
            k = rng.randrange(cosigned.size)
            kind = log_links(ct)[k]["event_type"]
            rewritten[kind] = rewritten.get(kind, 0) + 1
            rewrite_event(ct, k, round_ % 2 == 0)
            # The rewrite reached the witnessed log: its first `size` leaves are no longer
            # those the witnesses cosigned.
            tree = ct.audit.tree()
            assert tree.root(cosigned.size) != cosigned.root
            # Without witnesses, the rewrite is perfect: everything verifies.
            assert ct.audit.verify().ok
            # The witnesses refuse: no consistency proof leads from what they cosigned.
            assert witness(ct) == []
            report = ct.audit.verify()
            ct.audit.check_witnesses(report, keys, 2)
            assert "not_witnessed" in {p.code for p in report.problems}
            # The export made before still verifies, and contradicts the new log.
            assert verify_export(before, ct.audit.signer.verifier, keys, 2).ok
            old = open_checkpoint(json.loads(before)["checkpoint"], ct.audit.signer.verifier)
            assert tree.root(old.size) != old.root
        # Both kinds of leaf were rewritten: case events and read-access records.
        assert "CasesRead" in rewritten and len(rewritten) > 1, rewritten
    finally:
        ct.close()
        for w in witnesses:
            w.close()


def reset(ct: Casetrail, witnesses: list[ThreadWitness]) -> None:
    """A fresh log for the next round: empty tables, witnesses that saw nothing."""
    db = ct.db
    with db.transaction() as cur:
        for table in ("case_event_chain", "case_access_index", COSIGNATURE_TABLE, TREE_TABLE):
            cur.execute(f"DELETE FROM {table}")
        cur.execute(f"DELETE FROM {ct.audit.events_table}")
        cur.execute("DROP TABLE audit_checkpoints")  # numbered from 1 again
    create_checkpoint_table(db)
    for w in witnesses:
        w.witness.state.heads.clear()


# --- forks, strangers and replays -----------------------------------------------------------


def test_a_fork_shown_to_different_witnesses_cannot_meet_the_quorum_twice(
    settings: Settings,
) -> None:
    """Two logs under one key, each pushed to the witnesses in a random order: a witness
    that cosigned one has no consistency proof from it for the other, so with 2 of 3 no
    fork gets a quorum beside the other (100 rounds: pure protocol, cheap)."""
    from casetrail.audit.keys import Signer
    from evidence.merkle import leaf_hash
    from evidence.note import Checkpoint
    from evidence.tree import Tree

    log = Signer.generate()
    rng = random.Random(7)
    for _ in range(100):
        size = rng.randrange(2, 40)
        common = rng.randrange(1, size)
        base = [leaf_hash(os.urandom(8)) for _ in range(common)]
        forks = [
            Tree(base + [leaf_hash(os.urandom(8)) for _ in range(size - common)]) for _ in "ab"
        ]
        notes = [
            log.sign_note(Checkpoint(log.name, size, t.root(), "2026-03-02T01:00:00Z").text())
            for t in forks
        ]
        witnesses = [WitnessSigner(f"w{i}", os.urandom(32)) for i in range(3)]
        states = [WitnessState({log.name: log.verifier}) for _ in witnesses]
        # Each witness first saw the common past (size `common`) or nothing.
        for state in states:
            if rng.random() < 0.5:
                state.heads[log.name] = (common, forks[0].root(common))
        attempts = [(f, w) for f in range(2) for w in range(3)]
        rng.shuffle(attempts)
        cosigned: list[set[int]] = [set(), set()]
        for f, w in attempts:
            old = states[w].heads.get(log.name, (0, b""))[0]
            proof = forks[f].consistency_proof(old, size) if 0 < old < size else []
            answer = add_checkpoint(
                states[w], request_body(old, proof, notes[f]), witnesses[w], lambda: 1
            )
            if answer.status == 200:
                cosigned[f].add(w)
        assert not (len(cosigned[0]) >= 2 and len(cosigned[1]) >= 2)
        assert not cosigned[0] & cosigned[1]


def test_a_strangers_cosignature_or_a_replayed_one_does_not_count(
    settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    first = bootstrap(settings, clock=clock)
    log_key = first.audit.signer.verifier
    first.close()
    witnesses = [ThreadWitness(tmp_path / "w", f"w{i}", log_key) for i in range(3)]
    ct = witnessed(settings, clock, [(w.key, w.url) for w in witnesses[:2]])
    keys = [w.key for w in witnesses[:2]]
    try:
        ids = build_store(ct, clock, 3)
        assert len(witness(ct)) == 2
        add_cases(ct, clock, 1)
        assert len(checkpoint_job(ct)) == 2
        report = ct.audit.verify()
        ct.audit.check_witnesses(report, keys, 2)
        assert [p.message for p in report.problems if "#3" in p.message or "#4" in p.message] == []
        rows = ct.db.query(
            f"SELECT checkpoint_number, witness, line FROM {COSIGNATURE_TABLE} ORDER BY 1, 2"
        )
        last = max(int(r["checkpoint_number"]) for r in rows)
        earlier = [r for r in rows if int(r["checkpoint_number"]) < last]
        # A witness replays its old cosignature (of the checkpoint before) for the last one.
        with ct.db.transaction() as cur:
            cur.execute(
                f"UPDATE {COSIGNATURE_TABLE} SET line = ? WHERE checkpoint_number = ? AND witness = ?",
                (earlier[-1]["line"], last, earlier[-1]["witness"]),
            )
        report = ct.audit.verify()
        ct.audit.check_witnesses(report, keys, 2)
        assert any(f"#{last} " in p.message for p in report.problems if p.code == "not_witnessed")
        # A cosignature by a key the auditor was not given counts for nothing.
        stranger = WitnessSigner("w1", os.urandom(32))
        note = str(ct.audit.checkpoints()[-1]["note"])
        body = note.rpartition("\n\n")[0] + "\n"
        with ct.db.transaction() as cur:
            cur.execute(
                f"UPDATE {COSIGNATURE_TABLE} SET line = ? WHERE checkpoint_number = ? AND witness = ?",
                (stranger.cosign(body, 1), last, "w1"),
            )
        export = ct.audit.export_case(ids[0])
        assert not verify_export(export, ct.audit.signer.verifier, keys, 2).ok
        assert verify_export(export, ct.audit.signer.verifier, keys, 0).ok
        # The third witness never saw this log: its key cannot make up the quorum.
        assert not verify_export(
            export, ct.audit.signer.verifier, [witnesses[2].key, keys[0]], 2
        ).ok
    finally:
        ct.close()
        for w in witnesses:
            w.close()
