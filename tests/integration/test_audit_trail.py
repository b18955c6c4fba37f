"""The audit trail on real stores: the CLI, signed checkpoints and their proofs, exported
cases checked offline, the read-access log, and encryption at rest."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from eventsourcing.cryptography import AESCipher

from casetrail.audit.trail import LogInconsistent
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from cli.main import main
from domain.case import Actor
from domain.clock import FixedClock, cst_date
from domain.errors import CaseNotFound, InvalidData, NotPermitted
from evidence.merkle import leaf_hash, log_entry, verify_consistency, verify_inclusion
from evidence.note import VerifierKey, open_checkpoint
from evidence.offline import verify_export
from tests.conftest import start_of_2026
from tests.integration.audit_support import (
    AUDITOR,
    ID_NUMBERS,
    NAMES,
    OUTSIDER,
    WORKER,
    build_store,
)

UNITS = [
    {"code": "320102", "name": "玄武区", "parent": "320100"},
    {"code": "320104", "name": "秦淮区", "parent": "320100"},
]


@pytest.fixture
def store(casetrail: Casetrail, clock: FixedClock) -> tuple[Casetrail, list[str]]:
    return casetrail, build_store(casetrail, clock, 12)


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {"CASETRAIL_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env.update(
            CASETRAIL_DATABASE_URL=settings.database_url,
            CASETRAIL_DATABASE_SCHEMA=settings.database_schema or "",
        )
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_an_untouched_store_verifies_and_the_cli_exits_zero(
    store: tuple[Casetrail, list[str]], settings: Settings
) -> None:
    ct, ids = store
    report = ct.audit.verify()
    assert report.ok and report.checked_events == report.log_size > 48
    code, output = cli(settings, "audit", "verify")
    assert code == 0, output
    assert "verified" in output
    code, output = cli(settings, "audit", "verify", "--case", ids[3], "--json")
    assert code == 0 and json.loads(output)["checked_events"] == 4


def test_a_changed_byte_makes_the_cli_name_the_case_version_and_fault(
    store: tuple[Casetrail, list[str]], settings: Settings
) -> None:
    _ct, ids = store
    if settings.backend != "sqlite":
        pytest.skip("edits the SQLite file directly")
    with sqlite3.connect(settings.sqlite_path) as conn:
        (state,) = conn.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 2",
            (ids[5].replace("-", ""),),
        ).fetchone()
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 2",
            (state.replace(b"ordinary", b"major\x20\x20\x20"), ids[5].replace("-", "")),
        )
    code, output = cli(settings, "audit", "verify")
    assert code == 1
    assert f"Case {ids[5]} version 2" in output
    assert "data was altered" in output
    code, output = cli(settings, "audit", "verify", "--case", ids[5])
    assert code == 1 and "data was altered" in output
    # Another case's verification reads only that case's bytes (and every chain hash).
    code, _ = cli(settings, "audit", "verify", "--case", ids[6])
    assert code == 0


def test_checkpoints_come_with_consistency_proofs_and_events_with_inclusion_proofs(
    store: tuple[Casetrail, list[str]],
) -> None:
    ct, _ = store
    trail = ct.audit
    key = trail.signer.verifier
    listed = trail.checkpoints()
    assert [c["number"] for c in listed] == [1, 2, 3]
    for before, after in itertools.pairwise(listed):
        a, b = open_checkpoint(before["note"], key), open_checkpoint(after["note"], key)
        proof = [bytes.fromhex(h) for h in after["consistency_proof"]]
        assert verify_consistency(a.size, b.size, a.root, b.root, proof)
    proof = trail.inclusion(17)
    checkpoint = open_checkpoint(proof["checkpoint"]["note"], key)
    leaf = leaf_hash(log_entry(17, bytes.fromhex(proof["hash"])))
    path = [bytes.fromhex(h) for h in proof["inclusion_proof"]]
    assert verify_inclusion(leaf, proof["leaf_index"], checkpoint.size, path, checkpoint.root)


def test_the_cron_job_signs_only_a_grown_log_and_never_a_rewritten_one(
    store: tuple[Casetrail, list[str]], settings: Settings
) -> None:
    ct, ids = store
    assert ct.audit.write_checkpoint() is None  # nothing new since the last one
    ct.reads.history(AUDITOR, ids[0])  # a read is an event too
    assert ct.audit.write_checkpoint() is not None
    code, output = cli(settings, "audit", "checkpoint")
    assert code == 0 and "checkpoint #5" in output
    key = ct.audit.signer.verifier
    # An old link rewritten (its block of the tree is kept): the job signs the tree it
    # kept, which extends the last checkpoint and holds none of the rewrite; verify says so.
    previous = open_checkpoint(str(ct.audit.checkpoints()[-1]["note"]), key)
    ct.db.execute_script(
        [f"UPDATE case_event_chain SET hash = '{'0' * 64}' WHERE case_id = '{ids[1]}'"]
    )
    ct.reads.history(AUDITOR, ids[2])
    signed = ct.audit.write_checkpoint()
    assert signed is not None
    later = open_checkpoint(str(signed.note), key)
    proof = ct.audit.tree().consistency_proof(previous.size, later.size)
    assert verify_consistency(previous.size, later.size, previous.root, later.root, proof)
    assert {p.case for p in ct.audit.verify().problems} >= {ids[1]}
    # A link of the newest events (not yet in a kept block) rewritten: the job refuses.
    for case in ids[3:]:  # reads of other cases (one of the same case within a minute is one)
        if ct.audit.tree().size % 16 not in (0, 15):
            break
        ct.reads.history(AUDITOR, case)
    assert ct.audit.write_checkpoint(force=True) is not None
    top = ct.db.query_one("SELECT MAX(position) AS p FROM case_event_chain")
    assert top is not None
    ct.db.execute_script(
        [f"UPDATE case_event_chain SET hash = '{'0' * 64}' WHERE position = {int(top['p'])}"]
    )
    ct.reads.history(AUDITOR, ids[0])
    with pytest.raises(LogInconsistent):
        ct.audit.write_checkpoint()


def test_a_checkpoint_kept_outside_the_store_catches_a_rewrite_after_its_row_is_deleted(
    store: tuple[Casetrail, list[str]], tmp_path: Path, settings: Settings
) -> None:
    ct, _ = store
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(ct.audit.checkpoints()[-1]["note"])
    last = ct.db.query_one("SELECT MAX(number) AS n FROM audit_checkpoints")
    top = ct.db.query_one("SELECT MAX(position) AS p FROM case_event_chain")
    assert last is not None and top is not None
    # Someone with database access removes the last checkpoint and the newest events.
    events = ct.audit.events_table
    column = "rowid" if settings.backend == "sqlite" else "notification_id"
    ct.db.execute_script(
        [
            f"DELETE FROM audit_checkpoints WHERE number = {last['n']}",
            f"DELETE FROM {events} WHERE {column} > {int(top['p']) - 3}",
            f"DELETE FROM case_event_chain WHERE position > {int(top['p']) - 3}",
        ]
    )
    assert ct.audit.verify().ok, "the store alone cannot tell"
    code, output = cli(settings, "audit", "verify", "--checkpoint", str(kept))
    assert code == 1 and "events were removed" in output


def test_an_exported_case_verifies_offline_and_one_changed_character_does_not(
    store: tuple[Casetrail, list[str]], tmp_path: Path, settings: Settings
) -> None:
    ct, ids = store
    exported = tmp_path / "case.json"
    code, output = cli(settings, "audit", "export", "--case", ids[2], str(exported))
    assert code == 0, output
    key = ct.audit.public_key
    code, output = cli(settings, "audit", "verify-export", str(exported), "--public-key", key)
    assert code == 0, output
    text = exported.read_text()
    assert verify_export(text, VerifierKey.parse(key)).checked_events == 4
    rng = random.Random(5)
    for _ in range(300):
        at = rng.randrange(len(text))
        replacement = rng.choice(
            [ch for ch in 'abcdef0123456789 "{}:,\n+/=xyzAZ' if ch != text[at]]
        )
        changed = text[:at] + replacement + text[at + 1 :]
        assert not verify_export(changed, VerifierKey.parse(key)).ok, (at, text[at], replacement)
    exported.write_text(text[:100] + ("1" if text[100] != "1" else "2") + text[101:])
    code, output = cli(settings, "audit", "verify-export", str(exported), "--public-key", key)
    assert code == 1 and "PROBLEM" in output
    other = VerifierKey(key.split("+")[0], bytes(32))
    assert not verify_export(text, other).ok


def test_every_read_of_personal_data_is_recorded_granted_or_denied_for_auditors(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    reads = casetrail.reads
    ids = build_store(casetrail, clock, 3)
    before = clock.now()
    clock.advance(timedelta(hours=1))
    reads.case_state(WORKER, ids[1])
    reads.history(AUDITOR, ids[1])
    with pytest.raises(CaseNotFound):  # outside the reader's reach: 404, and recorded
        reads.history(OUTSIDER, ids[1])
    reads.feed(AUDITOR, 0, 10)
    log = reads.access_log(AUDITOR, case=ids[1], from_=before)
    assert [(e["user"], e["granted"], e["refusal"]) for e in log] == [
        ("u_worker", True, None),
        ("u_audit", True, None),
        ("u_outsider", False, "outside_jurisdiction"),
        ("u_audit", True, None),
    ]
    assert [e["endpoint"] for e in log] == ["case_state", "history", "history", "feed"]
    assert all(e["case"] == ids[1] for e in log)
    assert [e["case"] for e in reads.access_log(AUDITOR, user="u_outsider")] == [
        ids[0],
        ids[1],
    ]
    assert reads.access_log(AUDITOR, to=before - timedelta(days=1)) == []
    with pytest.raises(NotPermitted):
        reads.access_log(WORKER)
    assert casetrail.audit.verify().ok  # access events are chained and in the tree


def test_access_events_keep_their_ids_out_of_the_case_streams(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    ids = build_store(casetrail, clock, 1)
    history = casetrail.reads.history(AUDITOR, ids[0])
    assert [e["version"] for e in history] == [1, 2, 3, 4]
    feed = casetrail.reads.feed(AUDITOR, 0, 100)
    kinds = {e["type"]: e["kind"] for e in feed}
    assert kinds["CasesRead"] == "unknown" and kinds["DisputeRegistered"] == "dispute"


def encrypted(tmp_path: Path, name: str) -> Settings:
    return Settings(data_dir=tmp_path / name, cipher_key=AESCipher.create_key(num_bytes=32))


def test_with_the_cipher_key_the_files_hold_no_personal_data_and_everything_verifies(
    tmp_path: Path,
) -> None:
    plain_clock, secret_clock = FixedClock(start_of_2026()), FixedClock(start_of_2026())
    plain = bootstrap(Settings(data_dir=tmp_path / "plain"), clock=plain_clock)
    plain.app.mapper.keys = None  # type: ignore[attr-defined]  # a store without per-person keys
    secret = bootstrap(encrypted(tmp_path, "secret"), clock=secret_clock)
    try:
        answers = []
        for ct, clock in ((plain, plain_clock), (secret, secret_clock)):
            ct.directory.load_units(UNITS)
            ids = build_store(ct, clock, 4)
            # 60 events in one case: a snapshot is taken at version 50.
            for n in range(56):
                ct.service.append(
                    WORKER,
                    ids[0],
                    "MediationSessionHeld",
                    {
                        "held_on": cst_date(clock.now()).isoformat(),
                        "mediators": ["王调解"],
                        "attendees": [NAMES[n % 4]],
                        "notes": f"第{n}次调解",
                    },
                )
            snapshots = ct.db.query("SELECT state FROM stored_snapshots")
            assert snapshots, "a snapshot was taken"
            state = ct.reads.case_state(AUDITOR, ids[0])
            history = ct.reads.history(AUDITOR, ids[0])
            answers.append((state, history))
            report = ct.audit.verify()
            assert report.ok, report.problems[:3]
        (plain_state, plain_history), (secret_state, secret_history) = answers
        assert strip_ids(plain_state) == strip_ids(secret_state)
        assert [strip_ids(e) for e in plain_history] == [strip_ids(e) for e in secret_history]
        plain_bytes = raw_files(tmp_path / "plain")
        assert any(name.encode() in plain_bytes for name in NAMES), "the plain store holds names"
        while_open = raw_files(tmp_path / "secret")  # the WAL holds the recent pages
        assert (tmp_path / "secret" / "casetrail.sqlite-wal").exists()
        secret.close()
        for secret_bytes in (while_open, raw_files(tmp_path / "secret")):
            for secret_text in (*NAMES, *ID_NUMBERS, "13800001111"):
                assert secret_text.encode() not in secret_bytes, secret_text
                assert json.dumps(secret_text).encode() not in secret_bytes, secret_text
    finally:
        plain.close()
        secret.close()


def strip_ids(value: object) -> object:
    """An answer without what differs between two stores: ids, hashes, positions."""
    if isinstance(value, dict):
        return {
            k: strip_ids(v)
            for k, v in value.items()
            if k not in ("id", "hash", "prev_hash", "position")
        }
    if isinstance(value, list):
        return [strip_ids(v) for v in value]
    return value


def raw_files(directory: Path) -> bytes:
    """Every byte of the SQLite database, its WAL and shared memory, as on disk."""
    return b"".join(path.read_bytes() for path in sorted(directory.glob("casetrail.sqlite*")))


def test_the_signing_key_is_made_once_and_can_come_from_the_environment(tmp_path: Path) -> None:
    from casetrail.audit.keys import Signer

    first = bootstrap(Settings(data_dir=tmp_path / "a"))
    again = bootstrap(Settings(data_dir=tmp_path / "a"))
    configured = Signer.generate()
    chosen = bootstrap(Settings(data_dir=tmp_path / "b", signing_key=configured.encode()))
    try:
        assert first.audit.public_key == again.audit.public_key
        assert chosen.audit.public_key == configured.verifier.encode()
        assert not (tmp_path / "b" / "audit-signing.key").exists()
        assert oct((tmp_path / "a" / "audit-signing.key").stat().st_mode & 0o777) == "0o600"
    finally:
        for ct in (first, again, chosen):
            ct.close()


def test_an_auditor_elsewhere_sees_the_same_actor_in_the_log(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    # Reads by an auditor at the province are recorded with their own unit.
    ids = build_store(casetrail, clock, 1)
    province = Actor("u_province", "auditor", "320000")
    casetrail.reads.case_state(province, ids[0])
    [entry] = casetrail.reads.access_log(AUDITOR, user="u_province")
    assert (entry["role"], entry["unit"]) == ("auditor", "320000")


def test_casetrail_cron_schedules_the_checkpoint_job_which_signs_a_grown_log(
    store: tuple[Casetrail, list[str]], settings: Settings
) -> None:
    from workers import jobs
    from workers.cron import register
    from workers.jobs import checkpoint_job

    scheduled: dict[str, object] = {}
    register(lambda func, queue, **options: scheduled.setdefault(options["name"], func), settings)
    assert scheduled[f"{settings.queue_name}:audit-checkpoint"] is checkpoint_job
    ct, ids = store
    previous = jobs._casetrail
    jobs.use(ct)
    try:
        assert checkpoint_job() is None  # nothing appended since the last checkpoint
        ct.reads.case_state(AUDITOR, ids[0])
        assert checkpoint_job() == 4
    finally:
        jobs._casetrail = previous


def test_the_store_still_verifies_after_the_read_models_are_rebuilt(
    store: tuple[Casetrail, list[str]],
) -> None:
    from projections import engine_for

    ct, _ = store
    engine = engine_for(ct)
    engine.catch_up()
    for name in list(engine.projections):
        engine.rebuild(name)
    report = ct.audit.verify()
    assert report.ok and report.checked_events == report.log_size


def test_an_access_log_is_not_a_case(casetrail: Casetrail, clock: FixedClock) -> None:
    from casetrail.audit.access import access_log_id
    from domain.errors import CaseNotFound

    ids = build_store(casetrail, clock, 1)  # its first case's history was read
    with pytest.raises(CaseNotFound):
        casetrail.reads.case_state(AUDITOR, str(access_log_id(ids[0])))


def test_a_snapshot_that_is_not_the_replay_of_its_events_is_reported(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    ids = build_store(casetrail, clock, 1)
    for n in range(50):
        casetrail.service.append(
            WORKER,
            ids[0],
            "MediationSessionHeld",
            {
                "held_on": cst_date(clock.now()).isoformat(),
                "mediators": ["王调解"],
                "attendees": [NAMES[n % 4]],
                "notes": f"第{n}次调解",
            },
        )
    trail = casetrail.audit
    table = casetrail.app.snapshots.recorder.events_table_name  # type: ignore[union-attr]
    [row] = casetrail.db.query(f"SELECT originator_version AS v, state FROM {table}")
    assert trail.verify().ok
    state = bytes(row["state"])
    forged = state.replace(b'"status":"in_mediation"', b'"status":"closed"')
    assert forged != state
    with casetrail.db.transaction() as cur:
        cur.execute(
            f"UPDATE {table} SET state = ? WHERE originator_version = ?", (forged, row["v"])
        )
    problems = trail.verify(ids[0]).problems
    assert [p.code for p in problems] == ["snapshot_altered"]
    assert f"Case {ids[0]}: its snapshot at version 50" in problems[0].message


def test_concurrent_reads_of_one_case_are_all_recorded(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    casetrail.audit.access.coalesce_seconds = 0  # every read a record of its own
    ids = build_store(casetrail, clock, 1)
    readers = [Actor(f"u_reader{n}", "auditor", "320000") for n in range(8)]

    def read(actor: Actor) -> None:
        for _ in range(4):
            casetrail.reads.case_state(actor, ids[0])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(read, readers))
    log = casetrail.reads.access_log(AUDITOR, case=ids[0])
    assert sum(1 for entry in log if entry["user"].startswith("u_reader")) == 32
    assert casetrail.audit.verify().ok


def test_repeated_reads_within_the_window_are_one_record_and_later_ones_another(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    assert casetrail.audit.access.coalesce_seconds == 60
    ids = build_store(casetrail, clock, 2)
    head = casetrail.reads.head_position()
    reader = Actor("u_reader", "auditor", "320000")
    for _ in range(5):
        casetrail.reads.case_state(reader, ids[0])
    assert casetrail.reads.head_position() == head + 1
    casetrail.reads.history(reader, ids[0])  # another endpoint: recorded
    stranger = Actor("u_stranger", "caseworker", "320104")
    for _ in range(3):
        with pytest.raises(CaseNotFound):  # refusals (404 outside reach) are coalesced alike
            casetrail.reads.case_state(stranger, ids[0])
    clock.advance(timedelta(seconds=61))
    casetrail.reads.case_state(reader, ids[0])
    log = casetrail.reads.access_log(AUDITOR, case=ids[0])
    assert [(e["user"], e["endpoint"], e["granted"]) for e in log if e["position"] > head] == [
        ("u_reader", "case_state", True),
        ("u_reader", "history", True),
        ("u_stranger", "case_state", False),
        ("u_reader", "case_state", True),
    ]
    assert casetrail.audit.verify().ok


def test_a_refusal_by_role_is_recorded_with_its_reason(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    ids = build_store(casetrail, clock, 1)
    admin = Actor("u_admin", "admin", "320102")
    with pytest.raises(NotPermitted) as refusal:
        casetrail.reads.case_state(admin, ids[0])
    assert refusal.value.code == "role_cannot_read"
    [entry] = casetrail.reads.access_log(AUDITOR, user="u_admin")
    assert (entry["granted"], entry["refusal"]) == (False, "role_cannot_read")


def test_the_access_log_is_paged_with_a_cursor_and_says_when_more_exist(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    ids = build_store(casetrail, clock, 3)
    readers = [Actor(f"u_reader{n}", "auditor", "320000") for n in range(5)]
    for reader in readers:
        casetrail.reads.record_reads(reader, ids, "list")  # one record naming 3 cases
    whole, more = casetrail.reads.access_page(AUDITOR, user=None)
    assert more is None
    pages, after = [], None
    while True:
        page, after = casetrail.reads.access_page(AUDITOR, after=after, limit=4)
        pages.append(page)
        if after is None:
            break
    assert [item for page in pages for item in page] == whole
    assert all(len(page) == 4 for page in pages[:-1]) and len(pages) > 3
    listed = [e for e in whole if e["user"].startswith("u_reader")]
    assert len(listed) == 15 and len({e["position"] for e in listed}) == 5
    with pytest.raises(InvalidData):
        casetrail.reads.access_page(AUDITOR, after="not-a-cursor")


def old_shape_read(casetrail: Casetrail, clock: FixedClock, reader: Actor, case_id: str) -> None:
    """A read as stores written before one record per request hold it: a stream per case,
    opened by its first read, one AccessRecorded per read."""
    from eventsourcing.utils import get_topic

    from casetrail.audit.access import AccessLog, access_log_id
    from evidence.chain import ChainEntry

    now = clock.now()
    common = {
        "actor": reader.user_id,
        "actor_role": reader.role,
        "actor_unit": reader.unit,
        "reason": None,
        "note": None,
        "idempotency_key": None,
        "timestamp": now,
    }
    log_id = access_log_id(case_id)
    opened: Any = AccessLog.AccessLogOpened
    recorded: Any = AccessLog.AccessRecorded
    events = [
        opened(
            originator_id=log_id,
            originator_version=1,
            originator_topic=get_topic(AccessLog),
            data={"case": case_id},
            **common,
        ),
        recorded(
            originator_id=log_id,
            originator_version=2,
            data={"case": case_id, "endpoint": "GET /old", "granted": True, "refusal": None},
            **common,
        ),
    ]
    chain = [
        ChainEntry(type(e).__name__, now.isoformat(), reader.user_id, reader.role, reader.unit)
        for e in events
    ]
    casetrail.app.save(*events, chain=chain)


def test_a_store_with_the_old_per_case_access_streams_verifies_and_answers_both_shapes(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    ids = build_store(casetrail, clock, 2)
    old_reader = Actor("u_old", "auditor", "320000")
    old_shape_read(casetrail, clock, old_reader, ids[1])
    casetrail.reads.record_reads(Actor("u_new", "auditor", "320000"), ids, "list")
    log = casetrail.reads.access_log(AUDITOR, case=ids[1])
    assert [(e["user"], e["endpoint"]) for e in log if e["user"] != "u_audit"] == [
        ("u_old", "GET /old"),
        ("u_new", "list"),
    ]
    assert [e["case"] for e in casetrail.reads.access_log(AUDITOR, user="u_old")] == [ids[1]]
    assert casetrail.audit.verify().ok


def test_verify_catches_an_access_record_or_its_index_altered(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    from store.access_index import ACCESS_INDEX_TABLE

    ids = build_store(casetrail, clock, 2)
    casetrail.reads.record_reads(Actor("u_seen", "auditor", "320000"), ids, "list")
    assert casetrail.audit.verify().ok
    db = casetrail.db
    # Hiding that u_seen saw the second case: its index row removed.
    db.execute_script(
        [f"DELETE FROM {ACCESS_INDEX_TABLE} WHERE actor = 'u_seen' AND case_id = '{ids[1]}'"]
    )
    assert [p.code for p in casetrail.audit.verify().problems] == ["access_index_altered"]
    assert [e["case"] for e in casetrail.reads.access_log(AUDITOR, user="u_seen")] == [ids[0]]
    db.execute_script(
        [
            f"INSERT INTO {ACCESS_INDEX_TABLE} SELECT position, '{ids[1]}', actor, recorded_at, "
            f"endpoint, granted FROM {ACCESS_INDEX_TABLE} WHERE actor = 'u_seen'"
        ]
    )
    assert casetrail.audit.verify().ok
    # Blaming someone else in the index.
    db.execute_script([f"UPDATE {ACCESS_INDEX_TABLE} SET actor = 'u_other' WHERE actor = 'u_seen'"])
    assert "access_index_altered" in {p.code for p in casetrail.audit.verify().problems}
    db.execute_script([f"UPDATE {ACCESS_INDEX_TABLE} SET actor = 'u_seen' WHERE actor = 'u_other'"])
    # The record itself rewritten: its chain link no longer matches.
    table = casetrail.app.recorder.events_table_name  # type: ignore[attr-defined]
    [link] = db.query("SELECT case_id FROM case_event_chain WHERE actor = 'u_seen'")
    stream = db.stored_id(str(link["case_id"]))
    [row] = db.query(f"SELECT state FROM {table} WHERE originator_id = ?", (stream,))
    forged = bytes(row["state"]).replace(b"u_seen", b"u_else")
    with db.transaction() as cur:
        cur.execute(f"UPDATE {table} SET state = ? WHERE originator_id = ?", (forged, stream))
    assert not casetrail.audit.verify().ok
