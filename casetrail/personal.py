"""A data key per person record (crypto-shredding): every personal field of an event
(domain.personal), and its free-text reason and note, is stored as an envelope
`{"_enc": key id, "ct": …}` sealed with AES-GCM under the data key of its case (the record
of a person; a dispute's parties share their case's key). Data keys are wrapped by the
master key (`CASETRAIL_MASTER_KEY`, or `master.key` made at first start, mode 0600).

The envelopes are made before the event is encoded, so the chain and the Merkle log hash
the ciphertext and verify with or without the keys. Destroying a case's key (erasure)
leaves every read showing its fields as `ERASED`. The ID numbers of a record's people are
kept only as keyed hashes, to find a person's records. Old stores: docs/privacy.md."""

from __future__ import annotations

import base64
import copy
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent

from casetrail.files import write_private
from domain import personal
from domain.access import ReadRecord
from domain.case import CaseEvent
from domain.clock import cst_date
from domain.correction import ElectronicMonitoringEnded, ElectronicMonitoringStarted
from evidence import envelope
from store.db import Cursor, Database

ERASED = "[erased]"
KEYS_TABLE = "person_keys"
SUBJECTS_TABLE = "person_key_subjects"
EVENT_TEXT = ("reason", "note")
# How long a process trusts its cached key (an erasure elsewhere is seen within this).
KEY_CACHE_SECONDS = 2.0
DEDUP = "ON CONFLICT DO NOTHING"
# What a read-access record says of whose records were read (the cases, a search's keyed
# hash): sealed under the key of its month (CST), destroyed when the month's retention ends.
ACCESS_SEALED = ("cases", "search")
ACCESS_KEY_PREFIX = "access:"
# Electronic monitoring's data (社區矯正法 §29: for correction work only) has a key of its
# own per record, destroyed a set time after the correction ends.
MONITORING_EVENTS = (ElectronicMonitoringStarted, ElectronicMonitoringEnded)
MONITORING_KEY_SUFFIX = ":monitoring"
# The read models' search terms (keyed hashes of names and ID numbers, projections.privacy)
# are made under a key derived from the master key: every store has its own, unconfigured.
SEARCH_TERMS_PURPOSE = "casetrail/search-terms/v1"
# A read-access record's search hash is made under a key derived from its month's access
# key: destroyed with it when the month's retention ends (casetrail.audit.access).
ACCESS_SEARCH_PURPOSE = "casetrail/access-search/v1"


def access_key_id(moment: Any) -> str:
    return ACCESS_KEY_PREFIX + cst_date(moment).strftime("%Y-%m")


def monitoring_key_id(case_id: str) -> str:
    return f"{case_id}{MONITORING_KEY_SUFFIX}"


def record_key_ids(case_id: str) -> list[str]:
    """Every key of a person record: its own and its monitoring data's."""
    return [case_id, monitoring_key_id(case_id)]


def load_master_key(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        return base64.b64decode(configured)
    path = data_dir / "master.key"
    if not path.exists():  # made aside, then linked: a racing process never reads half a key
        aside = path.with_name(f"master.key.{os.getpid()}")
        write_private(aside, base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
        with suppress(FileExistsError):
            os.link(aside, path)
        aside.unlink()
    return base64.b64decode(path.read_text().strip())


@dataclass
class StagedKeys:
    """The record keys (and keyed ID numbers) that events being stored were sealed with
    and that are not in the store yet: written in the events' own transaction, so that an
    opening commits once (a key without its events, or events without their key, never
    stands)."""

    keys: list[tuple[str, str]] = field(default_factory=list)  # (key id, wrapped key)
    subjects: list[tuple[str, str]] = field(default_factory=list)  # (keyed hash, key id)

    def __bool__(self) -> bool:
        return bool(self.keys or self.subjects)

    def key_ids(self) -> list[str]:
        return [key_id for key_id, _ in self.keys]

    def writer(self, also: Callable[[Cursor], None] | None) -> Callable[[Cursor], None]:
        """What the recorder runs in the events' transaction: these rows, then `also`."""

        def write(cur: Cursor) -> None:
            # No ON CONFLICT for keys: another key under the same id would leave these
            # events sealed with a key nobody keeps; the events fail with it instead.
            cur.insert_many(KEYS_TABLE, ("key_id", "wrapped"), self.keys)
            cur.insert_many(SUBJECTS_TABLE, ("subject", "key_id"), self.subjects, on_conflict=DEDUP)
            if also is not None:
                also(cur)

        return write


class PersonKeys:
    """One wrapped data key per person record (its case id); ID numbers as keyed hashes."""

    def __init__(self, db: Database, master: bytes) -> None:
        self.db = db
        self.master = master
        self._cache: dict[str, tuple[float, AESGCM | None]] = {}
        self._derived: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._local = threading.local()

    @contextmanager
    def staging(self) -> Iterator[StagedKeys]:
        """Within it, a record key made (or an ID number added) is staged for the events'
        transaction (`StagedKeys.writer`) instead of committed on its own."""
        staged = StagedKeys()
        self._local.staged = staged
        try:
            yield staged
        finally:
            self._local.staged = None

    def create_tables(self) -> None:
        self.db.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (key_id TEXT PRIMARY KEY, "
                "wrapped TEXT NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS {SUBJECTS_TABLE} (subject TEXT NOT NULL, "
                "key_id TEXT NOT NULL, PRIMARY KEY (subject, key_id))",
            ]
        )

    def attach(self, app: Any) -> bool:
        """Seals `app`'s personal fields if the store is new or has per-person keys."""
        if app.recorder.max_notification_id():
            try:
                self.db.query(f"SELECT key_id FROM {KEYS_TABLE} LIMIT 1")
            except Exception:  # no key table: a store from before per-person keys
                return False
        self.create_tables()
        app.mapper.keys = self
        return True

    def key(
        self, key_id: str, *, create: bool = False, subjects: Any = (), new: bool = False
    ) -> AESGCM | None:
        """The record's key (made if `create`; `subjects`: ID numbers to find it by, with
        the key in one transaction; `new`: the record is opening, it has no key yet)."""
        cached = self._cache.get(key_id)
        fresh = cached is not None and time.monotonic() - cached[0] < KEY_CACHE_SECONDS
        if cached is not None and cached[1] is not None and (fresh or create) and not subjects:
            return cached[1]
        if fresh and not create:
            return None
        staged: StagedKeys | None = getattr(self._local, "staged", None)
        if staged is not None and create and not key_id.startswith(ACCESS_KEY_PREFIX):
            return self._stage(staged, key_id, subjects, new=new)
        select = f"SELECT wrapped FROM {KEYS_TABLE} WHERE key_id = ?"
        row = None if subjects else self.db.query_one(select, (key_id,))
        if row is None and create:
            with self.db.transaction() as cur:
                cur.execute(
                    f"INSERT INTO {KEYS_TABLE} (key_id, wrapped) VALUES (?, ?) "
                    "ON CONFLICT (key_id) DO NOTHING",
                    (key_id, envelope.new_wrapped_key(self.master)),
                )
                found_by = [(envelope.subject_hash(self.master, n), key_id) for n in subjects]
                cur.insert_many(SUBJECTS_TABLE, ("subject", "key_id"), found_by, on_conflict=DEDUP)
                row = cur.execute(select, (key_id,)).fetchone()
        found = envelope.unwrap(self.master, row["wrapped"]) if row is not None else None
        self._cache[key_id] = (time.monotonic(), found)
        return found

    def _stage(self, staged: StagedKeys, key_id: str, subjects: Any, *, new: bool) -> AESGCM:
        """The record's key, staged with the events that use it if it is new (a staged key
        is cached at once, so a second event of the batch finds it there). Safe for a
        record's own keys only: two commands that would both make one are two appends to
        the same case at the same version, and one of them fails whole; an opening (`new`)
        looks for no key, since a key already there fails the opening's insert rather than
        sealing with another. (A month's access key is shared by every case: it keeps its
        own transaction.)"""
        cached = self._cache.get(key_id)
        found = cached[1] if cached is not None else None
        if found is None:
            row = None
            if not new:
                select = f"SELECT wrapped FROM {KEYS_TABLE} WHERE key_id = ?"
                row = self.db.query_one(select, (key_id,))
            wrapped = str(row["wrapped"]) if row is not None else None
            if wrapped is None:
                wrapped = envelope.new_wrapped_key(self.master)
                staged.keys.append((key_id, wrapped))
            found = envelope.unwrap(self.master, wrapped)
        staged.subjects.extend((envelope.subject_hash(self.master, n), key_id) for n in subjects)
        self._cache[key_id] = (time.monotonic(), found)
        return found

    def prefetch(self, key_ids: list[str]) -> None:
        """Reads the keys of many records in one query into the cache (a sweep, a
        rebuild: a query per record costs more than opening its fields)."""
        wanted = sorted(set(key_ids))
        now = time.monotonic()
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            rows = self.db.query(
                f"SELECT key_id, wrapped FROM {KEYS_TABLE} WHERE key_id IN "
                f"({', '.join('?' for _ in part)})",
                part,
            )
            found = {str(row["key_id"]): str(row["wrapped"]) for row in rows}
            for key_id in part:
                wrapped = found.get(key_id)
                key = envelope.unwrap(self.master, wrapped) if wrapped is not None else None
                self._cache[key_id] = (now, key)

    def search_term_key(self) -> bytes:
        """The key of the read models' search terms (HKDF of the master key)."""
        return envelope.derive_key(self.master, SEARCH_TERMS_PURPOSE)

    def derived(self, key_id: str, purpose: str) -> bytes:
        """A key derived (HKDF) from the data key `key_id`, made if need be: it goes when
        that key is destroyed. For a month's access key (its own transaction)."""
        at = (key_id, purpose)
        cached = self._derived.get(at)
        if cached is not None and time.monotonic() - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        self.key(key_id, create=True)
        row = self.db.query_one(f"SELECT wrapped FROM {KEYS_TABLE} WHERE key_id = ?", (key_id,))
        if row is None:  # destroyed in between: nothing to derive from
            raise LookupError(f"no key {key_id}")
        derived = envelope.derive_key(envelope.unwrap_raw(self.master, row["wrapped"]), purpose)
        self._derived[at] = (time.monotonic(), derived)
        return derived

    def forget(self, key_ids: list[str]) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k not in key_ids}
        self._derived = {k: v for k, v in self._derived.items() if k[0] not in key_ids}

    def seal(self, key_id: str, value: Any) -> dict[str, str]:
        key: Any = self.key(key_id, create=True)  # made if need be: never None
        return envelope.seal(key, key_id, value)

    def open(self, sealed: dict[str, str]) -> Any:
        key = self.key(sealed["_enc"])
        return ERASED if key is None else envelope.open_sealed(key, sealed)


class PersonalMapper(Mapper[Any]):
    """The library's mapper, sealing personal fields on the way in and opening them on the
    way out, when the store has per-person keys (`keys`, set by the bootstrap)."""

    keys: PersonKeys | None = None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        keys = self.keys
        if keys is None:
            return super().to_stored_event(domain_event)
        key_id = str(domain_event.originator_id)
        if isinstance(domain_event, ReadRecord.CasesRead):
            key_id = access_key_id(domain_event.timestamp)
        elif isinstance(domain_event, MONITORING_EVENTS):
            key_id = monitoring_key_id(key_id)

        def seal(value: Any) -> Any:
            return keys.seal(key_id, value)

        shadow = copy.copy(domain_event)  # the same class (topic), some fields sealed
        if isinstance(domain_event, ReadRecord.CasesRead):
            shadow.__dict__["data"] = {
                name: seal(value) if name in ACCESS_SEALED and value is not None else value
                for name, value in domain_event.data.items()
            }
        elif isinstance(domain_event, CaseEvent):
            tree = personal.tree_of(type(domain_event))
            numbers = personal.id_numbers(domain_event.data)
            opening = domain_event.originator_version == 1
            if numbers or opening:
                keys.key(
                    str(domain_event.originator_id), create=True, subjects=numbers, new=opening
                )
            shadow.__dict__["data"] = personal.map_personal(domain_event.data, tree, seal)
            for name in EVENT_TEXT:
                if domain_event.__dict__.get(name) is not None:
                    shadow.__dict__[name] = seal(domain_event.__dict__[name])
        elif isinstance(domain_event.__dict__.get("state"), dict):  # a snapshot
            shadow.__dict__["state"] = personal.map_named(domain_event.state, seal)
        return super().to_stored_event(shadow)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self._decoded(stored_event, None if self.keys is None else self.keys.open)

    def to_domain_event_unopened(self, stored_event: StoredEvent) -> Any:
        """The event with every sealed field as `ERASED`, none opened: for work that reads
        no personal field (deadline sweeps), a third of the cost of decoding. The domain
        reads such an event as it reads an erased person's (tests/integration/test_erasure)."""
        return self._decoded(stored_event, lambda _: ERASED)

    def _decoded(self, stored_event: StoredEvent, open_: Callable[[Any], Any] | None) -> Any:
        event = super().to_domain_event(stored_event)
        if open_ is not None and self._may_be_sealed(stored_event):
            fields = event.__dict__
            for name, value in list(fields.items()):
                if isinstance(value, dict | list):
                    fields[name] = _opened(value, open_)
        return event

    def _may_be_sealed(self, stored_event: StoredEvent) -> bool:
        plain = self.cipher is None and self.compressor is None
        return not plain or b'"_enc"' in stored_event.state

    def prefetch_keys(self, stored_events: Iterable[StoredEvent]) -> None:
        """Reads the record keys of these events' sealed fields into the cache, one query
        for many records (a catch-up or a rebuild decodes thousands of cases' events; a
        query per case cost more than opening its fields, most of all on PostgreSQL).
        Keys of other ids (a month's access key, monitoring data's) are read as needed."""
        if self.keys is None:
            return
        self.keys.prefetch(
            [str(event.originator_id) for event in stored_events if self._may_be_sealed(event)]
        )


def _opened(value: Any, open_: Callable[[dict[str, str]], Any]) -> Any:
    """`value` with each envelope in it opened, at any depth (dicts and lists are copied,
    everything else is kept as it is)."""
    if isinstance(value, dict):
        if envelope.is_envelope(value):
            return open_(value)
        return {
            name: _opened(item, open_) if isinstance(item, dict | list) else item
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_opened(item, open_) if isinstance(item, dict | list) else item for item in value]
    return value
