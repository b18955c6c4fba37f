"""Trusted time: RFC 3161 timestamps of the checkpoints from a real TSA on 127.0.0.1, kept,
exported and verified offline against the TSA's certificate."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from casetrail.audit.witnesses import TIMESTAMP_TABLE
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from cli.main import main
from domain.clock import FixedClock
from evidence.offline import verify_export
from evidence.timestamp import TimestampError, read_token, verify_token
from evidence.verifier import Report
from tests.integration.audit_support import WORKER, registration
from tests.integration.tsa_support import TimeStampingAuthority, tsa_certificate
from tests.units import TEST_UNITS
from workers.witnessing import stamp


@pytest.fixture
def tsa() -> Iterator[TimeStampingAuthority]:
    authority = TimeStampingAuthority()
    yield authority
    authority.close()


@pytest.fixture
def stamped(
    settings: Settings, clock: FixedClock, tsa: TimeStampingAuthority
) -> Iterator[tuple[Casetrail, list[str]]]:
    ct = bootstrap(settings.with_(tsa_url=tsa.url), clock=clock)
    ct.directory.load_units(TEST_UNITS)
    ids = []
    try:
        for round_ in range(3):
            for n in range(2):
                clock.advance(timedelta(minutes=5))
                case = ct.service.open_case(
                    WORKER, "dispute", "320102", "DisputeRegistered", registration(round_ + n)
                )
                ids.append(case.id)
            ct.audit.write_checkpoint()  # what the cron's checkpoint job does
            assert stamp(ct)
        yield ct, ids
    finally:
        ct.close()


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {"CASETRAIL_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env.update(
            CASETRAIL_DATABASE_URL=settings.database_url,
            CASETRAIL_DATABASE_SCHEMA=settings.database_schema or "",
        )
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_every_checkpoint_carries_a_timestamp_that_verifies_offline(
    stamped: tuple[Casetrail, list[str]],
    settings: Settings,
    tsa: TimeStampingAuthority,
    tmp_path: Path,
) -> None:
    ct, ids = stamped
    assert not stamp(ct)  # once per checkpoint
    listed = ct.audit.checkpoints()
    assert len(listed) == 3 and all(entry["timestamp"] for entry in listed)
    for entry in listed:
        answered = verify_token(
            base64.b64decode(entry["timestamp"]), entry["note"].encode(), tsa.certificate
        )
        assert abs(answered.time.timestamp() - time.time()) < 60
    cert = tmp_path / "tsa.pem"
    cert.write_bytes(tsa.pem)
    code, output = cli(settings, "audit", "verify", "--tsa-cert", str(cert))
    assert code == 0, output
    export = tmp_path / "case.json"
    code, output = cli(settings, "audit", "export", "--case", ids[0], str(export))
    assert code == 0, output
    assert json.loads(export.read_text())["timestamp"] == listed[-1]["timestamp"]
    code, output = cli(
        settings, "audit", "verify-export", str(export), "--public-key", ct.audit.public_key,
        "--tsa-cert", str(cert),
    )  # fmt: skip
    assert code == 0, output
    # Another TSA's certificate: the same token does not verify.
    other = TimeStampingAuthority()
    try:
        cert.write_bytes(other.pem)
        code, output = cli(settings, "audit", "verify-export", str(export), "--tsa-cert", str(cert))
        assert code == 1 and "timestamp_invalid" in output
    finally:
        other.close()


def test_a_token_moved_to_another_checkpoint_is_reported(
    stamped: tuple[Casetrail, list[str]], tsa: TimeStampingAuthority
) -> None:
    ct, _ = stamped
    tokens = {row["checkpoint_number"]: row["token"] for row in ct.db.query(
        f"SELECT checkpoint_number, token FROM {TIMESTAMP_TABLE}"
    )}  # fmt: skip
    with ct.db.transaction() as cur:
        cur.execute(
            f"UPDATE {TIMESTAMP_TABLE} SET token = ? WHERE checkpoint_number = ?",
            (tokens[1], 3),
        )
    report = ct.audit.verify()
    ct.audit.check_timestamps(report, tsa.certificate)
    assert [(p.code, "#3" in p.message) for p in report.problems] == [("timestamp_invalid", True)]
    # Offline, every way round (100 pairs: cheap), and one flipped bit anywhere in a token.
    notes = [entry["note"] for entry in ct.audit.checkpoints()]
    rng = random.Random(3161)
    for _ in range(100):
        a, b = rng.sample(range(3), 2)
        with pytest.raises(TimestampError):
            verify_token(base64.b64decode(tokens[a + 1]), notes[b].encode(), tsa.certificate)
        # One flipped bit in the time-stamp info (its time, nonce, imprint, serial): the
        # TSA's signature no longer holds.
        token = bytearray(base64.b64decode(tokens[a + 1]))
        _, signed_data = read_token(bytes(token))
        info = signed_data.children()[2].children()[1].children()[0].body
        start = bytes(token).find(info)
        token[start + rng.randrange(len(info))] ^= 1 << rng.randrange(8)
        with pytest.raises(TimestampError):
            verify_token(bytes(token), notes[a].encode(), tsa.certificate)


def test_a_checkpoint_without_a_timestamp_and_a_wrong_nonce_are_refused(
    settings: Settings, clock: FixedClock, tsa: TimeStampingAuthority
) -> None:
    ct = bootstrap(settings.with_(tsa_url=tsa.url), clock=clock)
    ct.directory.load_units(TEST_UNITS)
    try:
        ct.service.open_case(WORKER, "dispute", "320102", "DisputeRegistered", registration(1))
        ct.audit.write_checkpoint()
        tsa.wrong_nonce = True
        assert not stamp(ct)  # an answer to another request is not kept
        report = Report()
        ct.audit.check_timestamps(report, tsa.certificate)
        assert [p.code for p in report.problems] == ["not_timestamped"]
        tsa.wrong_nonce = False
        assert stamp(ct)
        report = Report()
        ct.audit.check_timestamps(report, tsa.certificate)
        assert report.ok
        # A certificate without the timeStamping key usage is not a TSA's.
        report = Report()
        ct.audit.check_timestamps(report, tsa_certificate(tsa.key, usage=False))
        assert "not a time-stamping authority" in report.problems[0].message
        export = ct.audit.export_case(_first_case(ct))
        assert verify_export(export, ct.audit.signer.verifier, (), 0, tsa.certificate).ok
    finally:
        ct.close()


def _first_case(ct: Casetrail) -> str:
    return str(ct.db.query("SELECT case_id FROM case_event_chain ORDER BY position")[0]["case_id"])
