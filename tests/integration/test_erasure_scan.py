"""Issue 20's "done when", first two bullets: ten people of the demo province erased, then
every byte scanned for them: the store (the SQLite file and its WAL, or every row of the
PostgreSQL schema, read models included), the Redis data (RQ job payloads, results,
rate-limit counters: every key), and every export, dossier (the PDF's text and its embedded
export) and backup made afterwards. Zero occurrences of their names (simplified and
traditional), ID numbers or phones, plain, JSON-escaped, UTF-16 (PDF text) or as a keyed hash
that still matches; `audit verify` exits 0; every other case is unchanged; and the export,
dossier and backup made before the erasure still verify.

The demo's data are synthetic and its names repeat: the people chosen (in turn from each
kind) are those with every record closed whose name, ID number and phone appear in no
record but those erased with them (nor in units, users or registers), so that any
occurrence found is a trace. Before the erasure the same scans find each of them in the
store and its backup, and the first in their case's dossier: the scans can fail."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import opencc
import psycopg
import pytest
import redis
from rq import Queue, SimpleWorker

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from cli.dossier import dossier
from demo.generator import DemoSize, demo_clock, load_demo
from domain.case import CaseEvent
from evidence.envelope import subject_hash
from evidence.offline import verify_export
from evidence.pdf import export_from_pdf
from projections import engine_for
from projections.privacy import Privacy, normalise
from projections.queries import ReadModels
from tests.conftest import POSTGRES_URL, make_settings
from tests.integration.test_erasure import cli, erase_at_console, every_byte
from web.app import wire_app
from workers import jobs
from workers.redis_conn import connect
from workers.signals import ProjectionSignal

SIZE = DemoSize(disputes=40, resettlement=20, correction=30, bases=1, townships_per_county=2)
ERASED_PEOPLE = 10


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    phone: str | None
    cases: frozenset[str]


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    """conftest's, but SQLite on /dev/shm when there is one: the demo commits every event
    durably, and on tmpfs the fsyncs cost nothing (as in test_demo.py)."""
    shm = Path("/dev/shm")
    if backend != "sqlite" or not shm.is_dir():
        yield from make_settings(backend, tmp_path)
        return
    root = Path(tempfile.mkdtemp(prefix="casetrail-scan-", dir=shm))
    try:
        yield Settings(data_dir=root / "var")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_ten_erased_people_of_the_demo_leave_no_trace_in_any_byte_and_all_still_verifies(
    redis_settings: Settings, tmp_path: Path
) -> None:
    settings = redis_settings
    ct = bootstrap(settings, clock=demo_clock(), on_append=ProjectionSignal(settings))
    conn = connect(settings)
    worker_casetrail = jobs._casetrail
    jobs.use(ct)  # the RQ jobs run in this process, on this store
    try:
        load_demo(ct, SIZE, seed=20)
        run_jobs(settings, conn)
        catalogue = Catalogue.of(ct)
        chosen = catalogue.choose(ct, ERASED_PEOPLE)
        erased = frozenset().union(*(person.cases for person in chosen))
        client = wire_app(ct, shared=True).test_client()  # rate limits counted in Redis
        _, admin = ct.directory.create_user("省管理员", "admin", "320000")
        _, auditor = ct.directory.create_user("省审计员", "auditor", "320000")
        for person in chosen:  # searches before the erasure: read-access records, counters
            for query in (
                "/api/v1/cases?q=" + person.name,
                "/api/v1/people?id_number=" + person.id_number,
            ):
                assert client.get(query, headers=bearer(auditor)).status_code == 200
        others = sorted(set(catalogue.texts) - erased)
        kept_before = {case: events_of(ct, case) for case in others}
        rows_before = case_rows(ct, others)
        sample = sorted(chosen[0].cases)[0]
        export_before = ct.audit.export_case(sample)
        dossier_before = dossier(ct, sample)
        code, output = cli(settings, "backup", str(tmp_path / "backup-before"))
        assert code == 0, output
        backup_before = files_bytes(tmp_path / "backup-before")
        traces = Traces(ct, chosen)
        # The scanners find what is there: the dossier shows the person, the store
        # holds their keyed search terms and (in the case list) their names.
        assert traces.found_for(chosen[0], pdf_bytes(dossier_before))
        live_before = every_byte(ct, settings)
        assert all(traces.found_for(person, live_before) for person in chosen)
        assert all(traces.found_for(person, backup_before) for person in chosen)
        # An export carries the events' stored bytes: the person's fields sealed only.
        assert traces.found_for(chosen[0], export_bytes(export_before)) == []

        for n, person in enumerate(chosen):  # half by an admin over HTTP, half at the console
            if n % 2:
                code, output = erase_at_console(settings, person.id_number)
                assert code == 0, output
            else:
                answer = client.post(
                    "/api/v1/people/erasures",
                    json={"id_number": person.id_number, "reason": "PIPL §47"},
                    headers=bearer(admin),
                )
                assert answer.status_code == 200, answer.get_json()
        # This process's cached keys of the records erased at the console (another
        # process's erasure reaches it within KEY_CACHE_SECONDS; test_erasure.py waits).
        ct.app.mapper.keys.forget(list(erased))  # type: ignore[attr-defined]
        run_jobs(settings, conn)
        for person in chosen:
            assert (
                client.get("/api/v1/cases?q=" + person.name, headers=bearer(auditor)).get_json()[
                    "total"
                ]
                == 0
            )

        # Read now, with the jobs just run and these searches just counted: RQ keeps a
        # job's result 60 s and a rate limit's counter lives for its minute, and the
        # exports, dossiers and backup below can take longer than that on a loaded machine.
        redis_after = redis_bytes(conn)

        exports = {case: ct.audit.export_case(case) for case in sorted(erased)[:4] + others[:1]}
        dossiers = {case: dossier(ct, case) for case in sorted(erased)[:2] + others[:1]}
        code, output = cli(settings, "backup", str(tmp_path / "backup-after"))
        assert code == 0, output
        scanned = {
            "store": every_byte(ct, settings),  # the SQLite file and its WAL, or every row
            "data directory": files_bytes(settings.data_dir),  # keys, Redis's files, …
            "redis": redis_after,
            "redis at the end": redis_bytes(conn),
            "backup": files_bytes(tmp_path / "backup-after"),
            **{f"export {case}": export_bytes(text) for case, text in exports.items()},
            **{f"dossier {case}": pdf_bytes(pdf) for case, pdf in dossiers.items()},
        }
        # What the Redis data hold: RQ's jobs and results, the rate limits' counters.
        assert b"rq:job:" in scanned["redis"] and b":limits" in scanned["redis"]
        found = {where: hits for where, blob in scanned.items() if (hits := traces.found(blob))}
        assert found == {}

        code, output = cli(settings, "audit", "verify")
        assert code == 0, output
        assert {case: events_of(ct, case) for case in others} == kept_before
        assert case_rows(ct, others) == rows_before
        # What was made before the erasure still verifies.
        assert verify_export(export_before).ok
        assert verify_export(export_from_pdf(dossier_before).decode()).ok
        assert restored(settings, tmp_path / "backup-before", tmp_path / "restored") == 0
    finally:
        jobs._casetrail = worker_casetrail
        ct.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_jobs(settings: Settings, conn: redis.Redis) -> None:
    """The queued catch-up jobs, run to the end by an RQ worker in this process."""
    SimpleWorker([Queue(settings.queue_name, connection=conn)], connection=conn).work(
        burst=True, logging_level="WARNING"
    )


def events_of(ct: Casetrail, case_id: str) -> list[dict[str, Any]]:
    return [
        {"class": type(event).__name__, **event.__dict__}
        for event in ct.app.events.get(UUID(case_id))
    ]


def case_rows(ct: Casetrail, cases: list[str]) -> dict[str, Any]:
    wanted = set(cases)
    items = ReadModels(ct).list_cases(per_page=1000)["items"]
    return {item["id"]: item for item in items if item["id"] in wanted}


@dataclass
class Catalogue:
    """The demo's records as decoded text, the people (by ID number) named in them, and
    the text outside any record (administration acts, units, users, registers)."""

    texts: dict[str, str]
    people: dict[str, Person]
    outside: list[str]

    @classmethod
    def of(cls, ct: Casetrail) -> Catalogue:
        texts: dict[str, str] = {}
        named: dict[str, dict[str, Any]] = {}
        outside = [
            json.dumps(ct.db.query(f"SELECT * FROM {table}"), ensure_ascii=False, default=str)
            for table in ("units", "users", "registers")
        ]
        for notification in ct.app.recorder.select_notifications(None, 10**7):
            event = ct.app.mapper.to_domain_event(notification)
            text = json.dumps(event.__dict__, ensure_ascii=False, default=str)
            if not isinstance(event, CaseEvent):
                outside.append(text)
                continue
            case = str(event.originator_id)
            texts[case] = texts.get(case, "") + text
            for found in people_in(event.data):
                entry = named.setdefault(found["id_number"], {**found, "cases": set()})
                entry["cases"].add(case)
        people = {
            number: Person(entry["name"], number, entry["phone"], frozenset(entry["cases"]))
            for number, entry in named.items()
        }
        return cls(texts, people, outside)

    def choose(self, ct: Casetrail, count: int) -> list[Person]:
        """People whose every record is closed and whose name, ID number and phone appear
        in no record but those erased with them, nor outside the records."""
        by_kind: dict[str, list[Person]] = {}
        for number in sorted(self.people):
            person = self.people[number]
            records = [ct.app.get_case(case) for case in sorted(person.cases)]
            if not any(record.is_open for record in records):
                by_kind.setdefault(records[0].kind, []).append(person)
        # Taken in turn from each kind: parties of disputes, people resettled, corrected.
        turns = itertools.zip_longest(*(by_kind[kind] for kind in sorted(by_kind)))
        chosen: list[Person] = []
        taken: frozenset[str] = frozenset()
        for person in (p for turn in turns for p in turn if p is not None):
            covered = taken | person.cases
            elsewhere = [t for case, t in self.texts.items() if case not in covered]
            if any(
                value in text for value in Traces.texts(person) for text in elsewhere + self.outside
            ):
                continue
            chosen.append(person)
            taken = covered
            if len(chosen) == count:
                return chosen
        raise AssertionError(f"only {len(chosen)} people of the demo can be told apart")


def people_in(data: Any) -> Iterator[dict[str, Any]]:
    """Every person (a dict with an ID number) in an event's data."""
    if isinstance(data, list):
        for item in data:
            yield from people_in(item)
    elif isinstance(data, dict):
        if isinstance(data.get("id_number"), str) and isinstance(data.get("name"), str):
            yield {"name": data["name"], "id_number": data["id_number"], "phone": data.get("phone")}
        for value in data.values():
            yield from people_in(value)


class Traces:
    """Every form in which a person could be left in bytes."""

    variants = (opencc.OpenCC("s2t"), opencc.OpenCC("t2s"))

    def __init__(self, ct: Casetrail, people: list[Person]) -> None:
        privacy: Privacy = engine_for(ct).privacy
        master: bytes = ct.app.mapper.keys.master  # type: ignore[attr-defined]
        self.needles: dict[str, dict[bytes, str]] = {}
        for person in people:
            needles: dict[bytes, str] = {}
            for text in self.texts(person):
                for form, encoded in encodings(text).items():
                    needles[encoded] = f"{text} ({form})"
            needles[subject_hash(master, person.id_number).encode()] = "subject hash"
            for value in (person.name, person.id_number, person.phone or ""):
                if value:
                    term = privacy.term("w:" + normalise(value))
                    needles[str(term).encode()] = f"search term of {value}"
                    needles[term.to_bytes(8, "big", signed=True)] = (
                        f"search term of {value} (int64)"
                    )
            self.needles[person.id_number] = needles

    @classmethod
    def texts(cls, person: Person) -> list[str]:
        names = {person.name, *(variant.convert(person.name) for variant in cls.variants)}
        numbers = {person.id_number, person.id_number.lower()}
        return sorted(names | numbers | ({person.phone} if person.phone else set()))

    def found_for(self, person: Person, blob: bytes) -> list[str]:
        return [label for needle, label in self.needles[person.id_number].items() if needle in blob]

    def found(self, blob: bytes) -> dict[str, list[str]]:
        return {
            number: hits
            for number, needles in self.needles.items()
            if (hits := [label for needle, label in needles.items() if needle in blob])
        }


def encodings(text: str) -> dict[str, bytes]:
    escaped = json.dumps(text)[1:-1]
    return {
        "utf-8": text.encode(),
        "json": escaped.encode(),
        "JSON": re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), escaped).encode(),
        "utf-16": text.encode("utf-16-be"),
    }


def redis_bytes(conn: redis.Redis) -> bytes:
    """Every key and value of the Redis database, and each value decompressed where it is
    zlib data (RQ's job payloads and results)."""
    client: Any = conn  # redis-py's types do not follow its decode_responses setting
    chunks: list[bytes] = []
    for key in client.scan_iter(count=1000):
        chunks.append(key)
        kind = client.type(key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "list":
            values = list(client.lrange(key, 0, -1))
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [member for member in client.zrange(key, 0, -1)]
        elif kind == "stream":
            values = [
                part for _, fields in client.xrange(key) for pair in fields.items() for part in pair
            ]
        for value in values:
            chunks.append(value)
            with contextlib.suppress(zlib.error):
                chunks.append(zlib.decompress(value))
    assert chunks, "the Redis data were read"
    return b"\n".join(chunks)


def files_bytes(directory: Path) -> bytes:
    """Every file under `directory`, with the bytea values of a PostgreSQL dump (COPY's
    `\\x…` hex) decoded."""
    chunks = [p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()]
    for chunk in list(chunks):
        chunks += [
            bytes.fromhex(h.decode()) for h in re.findall(rb"\\\\x((?:[0-9a-f]{2})+)", chunk)
        ]
    return b"\n".join(chunks)


def export_bytes(text: str) -> bytes:
    """An export, and the stored bytes its events carry in base64."""
    document = json.loads(text)
    states = [base64.b64decode(event["state"]) for event in document["events"]]
    return b"\n".join([text.encode(), *states])


_STREAM = re.compile(rb"stream\r?\n(.*?)(?:\r?\n)?endstream", re.S)


def pdf_bytes(pdf: bytes) -> bytes:
    """A PDF as it is, its streams inflated, the strings of its text decoded (reportlab
    writes them as PDF string literals with escapes), and its embedded export."""
    chunks = [pdf]
    for stream in _STREAM.findall(pdf):
        inflated = stream
        if inflated.endswith(b"~>"):  # reportlab's /ASCII85Decode /FlateDecode
            inflated = base64.a85decode(inflated.removeprefix(b"<~")[:-2])
        with contextlib.suppress(zlib.error):
            inflated = zlib.decompress(inflated)
        chunks += [inflated, b"".join(literal_strings(inflated))]
    chunks.append(export_bytes(export_from_pdf(pdf).decode()))
    return b"\n".join(chunks)


_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def literal_strings(content: bytes) -> Iterator[bytes]:
    """The `( … )` strings of a content stream, unescaped, in order."""
    at = 0
    while (start := content.find(b"(", at)) >= 0:
        depth, out, i = 1, bytearray(), start + 1
        while i < len(content) and depth:
            char = content[i : i + 1]
            if char == b"\\":
                nxt = content[i + 1 : i + 2]
                octal = re.match(rb"[0-7]{1,3}", content[i + 1 : i + 4])
                if octal:
                    out.append(int(octal.group(), 8) & 0xFF)
                    i += 1 + len(octal.group())
                    continue
                out += _ESCAPES.get(nxt, nxt if nxt != b"\n" else b"")
                i += 2
                continue
            depth += char == b"("
            depth -= char == b")"
            if depth:
                out += char
            i += 1
        yield bytes(out)
        at = i


def restored(settings: Settings, backup: Path, data_dir: Path) -> int:
    """`casetrail restore` of a backup into a new store; its exit status (0: verified)."""
    if settings.database_url is None:
        code, output = cli(
            Settings(data_dir=data_dir), "restore", str(backup), "--data-dir", str(data_dir)
        )
        assert code in (0, 1), output
        return code
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        code, output = cli(
            settings.with_(database_schema=schema),
            "restore",
            str(backup),
            "--data-dir",
            str(data_dir),
        )
        return code
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
