"""Shared by the audit tests: a realistic store built through the service, and the
mutation campaign (random single edits of the database itself, as someone with write
access to it would make them)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import FixedClock, cst_date
from evidence.chain import ChainEntry, event_hash
from evidence.verifier import Problem, Report
from store.db import Cursor
from store.postgres import PostgresDatabase

WORKER = Actor("u_worker", "caseworker", "320102")
OUTSIDER = Actor("u_outsider", "caseworker", "320104")
AUDITOR = Actor("u_audit", "auditor", "320000")
# Personal data that must never appear in plaintext once the cipher key is set.
NAMES = ("欧阳淑芬", "司马建国", "诸葛丽华", "上官志强")
ID_NUMBERS = ("320102198803157823", "32010419750921461X")


def registration(n: int) -> dict[str, Any]:
    return {
        "center_unit": "320102",
        "category": "neighbourhood",
        "summary": f"相邻关系纠纷第{n}号",
        "parties": [
            {"name": NAMES[n % 4], "role": "applicant", "id_number": ID_NUMBERS[n % 2]},
            {"name": NAMES[(n + 1) % 4], "role": "respondent", "phone": "13800001111"},
        ],
        "scope": "local",
        "source": "walk_in",
        "people_involved": 2,
    }


def build_store(ct: Casetrail, clock: FixedClock, cases: int) -> list[str]:
    """`cases` disputes of four events each, some reads (granted and denied), and three
    checkpoints (after a third, two thirds and all of it)."""
    service = ct.service
    ids = []
    for n in range(cases):
        clock.advance(timedelta(minutes=7))
        case_id = service.open_case(
            WORKER, "dispute", "320102", "DisputeRegistered", registration(n)
        ).id
        service.append(
            WORKER,
            case_id,
            "DisputeTriaged",
            {"complexity": "ordinary", "responsible_unit": "320102"},
        )
        service.append(
            WORKER,
            case_id,
            "DisputeAssigned",
            {
                "handling_body": "梅园人民调解委员会",
                "assigned_unit": "320102",
                "mediators": ["王调解"],
            },
        )
        service.append(
            WORKER,
            case_id,
            "MediationSessionHeld",
            {
                "held_on": cst_date(
                    clock.now()
                ).isoformat(),  # the day in China, as the domain counts
                "mediators": ["王调解"],
                "attendees": [NAMES[n % 4], NAMES[(n + 1) % 4]],
                "notes": "双方陈述意见",
            },
        )
        ids.append(case_id)
        if n % 10 == 0:
            ct.reads.history(AUDITOR, case_id)
        if n % 50 == 0:
            with contextlib.suppress(Exception):
                ct.reads.case_state(OUTSIDER, case_id)
        if n in (cases // 3, 2 * cases // 3):
            ct.audit.write_checkpoint()
    ct.audit.write_checkpoint()
    return ids


# --- the campaign ----------------------------------------------------------------------


class Edits:
    """Plain SQL on the store's own tables, as an attacker with database access writes it."""

    dialect: str
    position: str  # the notification id column
    events: str  # the events table

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def stored_id(self, case_id: str) -> Any:
        """How the event table stores a stream id."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError


def _other_char(rng: random.Random, text: str, at: int) -> str:
    alphabet = (
        "0123456789abcdef"
        if text[at] in "0123456789abcdef"
        else "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:+-_ "
    )
    return rng.choice([ch for ch in alphabet if ch != text[at]])


def _change_char(rng: random.Random, text: str) -> str:
    at = rng.randrange(len(text))
    return text[:at] + _other_char(rng, text, at) + text[at + 1 :]


def _flip_bit(rng: random.Random, data: bytes) -> bytes:
    bit = rng.randrange(len(data) * 8)
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


@dataclass
class Store:
    """What the campaign knows of the store it attacks (read before each edit)."""

    edits: Edits
    events: list[tuple[Any, ...]] = field(
        default_factory=list
    )  # position, id, version, topic, state
    links: list[tuple[Any, ...]] = field(default_factory=list)

    LINK = "case_id, version, position, event_type, recorded_at, actor, actor_role, actor_unit, data_sha256, prev_hash, hash"

    def load(self) -> None:
        p = self.edits.position
        self.events = self.edits.query(
            f"SELECT {p}, originator_id, originator_version, topic, state FROM {self.edits.events} ORDER BY {p}"
        )
        self.links = self.edits.query(f"SELECT {self.LINK} FROM case_event_chain ORDER BY position")


def _relink(
    edits: Edits,
    case_id: str,
    from_version: int,
    rows: dict[int, tuple[Any, ...]],
    states: dict[int, tuple[str, bytes]],
) -> None:
    """Recomputes the chain of `case_id` from `from_version` on, as a forger would."""
    versions = sorted(rows)
    prev = rows[from_version - 1][10] if from_version > 1 else "0" * 64
    for version in versions:
        if version < from_version:
            continue
        link = rows[version]
        topic, state = states[version]
        entry = ChainEntry(link[3], link[4], link[5], link[6], link[7])
        digest = hashlib.sha256(state).hexdigest()
        new_hash = event_hash(case_id, version, entry, digest, prev, topic=topic)
        edits.execute(
            "UPDATE case_event_chain SET actor = ?, data_sha256 = ?, prev_hash = ?, hash = ? WHERE case_id = ? AND version = ?",
            (link[5], digest, prev, new_hash, case_id, version),
        )
        prev = new_hash


def _case_rows(
    store: Store, case_id: str
) -> tuple[dict[int, tuple[Any, ...]], dict[int, tuple[str, bytes]]]:
    rows = {link[1]: link for link in store.links if link[0] == case_id}
    stored = store.edits.stored_id(case_id)
    states = {
        e[2]: (e[3], bytes(e[4])) for e in store.events if e[1] == stored or str(e[1]) == case_id
    }
    return rows, states


def m_event_state_bit(rng: random.Random, s: Store) -> str:
    e = rng.choice(s.events)
    s.edits.execute(
        f"UPDATE {s.edits.events} SET state = ? WHERE {s.edits.position} = ?",
        (_flip_bit(rng, bytes(e[4])), e[0]),
    )
    return f"flipped a bit of the data at position {e[0]}"


def m_event_state_truncated(rng: random.Random, s: Store) -> str:
    e = rng.choice(s.events)
    s.edits.execute(
        f"UPDATE {s.edits.events} SET state = ? WHERE {s.edits.position} = ?",
        (bytes(e[4])[:-1], e[0]),
    )
    return f"cut the last byte of the data at position {e[0]}"


def m_event_topic(rng: random.Random, s: Store) -> str:
    e = rng.choice(s.events)
    s.edits.execute(
        f"UPDATE {s.edits.events} SET topic = ? WHERE {s.edits.position} = ?",
        (_change_char(rng, e[3]), e[0]),
    )
    return f"changed the type (topic) at position {e[0]}"


def m_event_version(rng: random.Random, s: Store) -> str:
    e = rng.choice(s.events)
    taken = {x[2] for x in s.events if x[1] == e[1]}
    new = rng.choice([v for v in (e[2] + 1, e[2] + 2, e[2] + 100, 0, -1) if v not in taken])
    s.edits.execute(
        f"UPDATE {s.edits.events} SET originator_version = ? WHERE {s.edits.position} = ?",
        (new, e[0]),
    )
    return f"changed the version at position {e[0]} from {e[2]} to {new}"


def m_event_case(rng: random.Random, s: Store) -> str:
    e = rng.choice(s.events)
    text = str(e[1]).replace("-", "")
    changed = _change_char(rng, text)
    value = changed if s.edits.dialect == "sqlite" else UUID(changed)
    s.edits.execute(
        f"UPDATE {s.edits.events} SET originator_id = ? WHERE {s.edits.position} = ?", (value, e[0])
    )
    return f"changed the case id at position {e[0]}"


def m_event_delete(rng: random.Random, s: Store) -> str:
    e = rng.choice(s.events)
    s.edits.execute(f"DELETE FROM {s.edits.events} WHERE {s.edits.position} = ?", (e[0],))
    return f"deleted the event at position {e[0]}"


def m_event_duplicate(rng: random.Random, s: Store) -> str:
    e = rng.choice(s.events)
    top = max(x[2] for x in s.events if x[1] == e[1])
    position = s.events[-1][0] + 1
    s.edits.execute(
        f"INSERT INTO {s.edits.events} ({s.edits.position}, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
        (position, e[1], top + 1, e[3], bytes(e[4])),
    )
    return f"duplicated the event at position {e[0]} as a new version"


def m_event_swap_states(rng: random.Random, s: Store) -> str:
    a, b = rng.sample(s.events, 2)
    while bytes(a[4]) == bytes(b[4]):
        a, b = rng.sample(s.events, 2)
    p = s.edits.position
    s.edits.execute(f"UPDATE {s.edits.events} SET state = ? WHERE {p} = ?", (bytes(b[4]), a[0]))
    s.edits.execute(f"UPDATE {s.edits.events} SET state = ? WHERE {p} = ?", (bytes(a[4]), b[0]))
    return f"swapped the data of positions {a[0]} and {b[0]}"


def m_event_swap_positions(rng: random.Random, s: Store) -> str:
    a, b = rng.sample(s.events, 2)
    p = s.edits.position
    s.edits.execute(f"UPDATE {s.edits.events} SET {p} = ? WHERE {p} = ?", (-1, a[0]))
    s.edits.execute(f"UPDATE {s.edits.events} SET {p} = ? WHERE {p} = ?", (a[0], b[0]))
    s.edits.execute(f"UPDATE {s.edits.events} SET {p} = ? WHERE {p} = ?", (b[0], -1))
    return f"swapped the rows at positions {a[0]} and {b[0]}"


LINK_TEXT = (
    "event_type",
    "recorded_at",
    "actor",
    "actor_role",
    "actor_unit",
    "data_sha256",
    "prev_hash",
    "hash",
    "case_id",
)


def m_link_text(rng: random.Random, s: Store) -> str:
    link = rng.choice(s.links)
    column = rng.choice(LINK_TEXT)
    value = dict(zip(Store.LINK.split(", "), link, strict=True))[column]
    s.edits.execute(
        f"UPDATE case_event_chain SET {column} = ? WHERE position = ?",
        (_change_char(rng, value), link[2]),
    )
    return f"changed the chain's {column} at position {link[2]}"


def m_link_version(rng: random.Random, s: Store) -> str:
    link = rng.choice(s.links)
    taken = {x[1] for x in s.links if x[0] == link[0]}
    new = rng.choice([v for v in (link[1] + 1, link[1] + 7, 0) if v not in taken])
    s.edits.execute("UPDATE case_event_chain SET version = ? WHERE position = ?", (new, link[2]))
    return f"changed the chain's version at position {link[2]}"


def m_link_position(rng: random.Random, s: Store) -> str:
    a, b = rng.sample(s.links, 2)
    if rng.random() < 0.5:
        s.edits.execute(
            "UPDATE case_event_chain SET position = ? WHERE position = ?",
            (s.links[-1][2] + 1000, a[2]),
        )
        return f"moved the chain row at position {a[2]}"
    s.edits.execute("UPDATE case_event_chain SET position = ? WHERE position = ?", (-1, a[2]))
    s.edits.execute("UPDATE case_event_chain SET position = ? WHERE position = ?", (a[2], b[2]))
    s.edits.execute("UPDATE case_event_chain SET position = ? WHERE position = ?", (b[2], -1))
    return f"swapped the chain rows at positions {a[2]} and {b[2]}"


def m_link_delete(rng: random.Random, s: Store) -> str:
    link = rng.choice(s.links)
    s.edits.execute("DELETE FROM case_event_chain WHERE position = ?", (link[2],))
    return f"deleted the chain row at position {link[2]}"


def m_event_and_link_delete(rng: random.Random, s: Store) -> str:
    e = rng.choice(s.events)
    s.edits.execute(f"DELETE FROM {s.edits.events} WHERE {s.edits.position} = ?", (e[0],))
    s.edits.execute("DELETE FROM case_event_chain WHERE position = ?", (e[0],))
    return f"deleted the event at position {e[0]} with its chain row"


def m_truncate_tail(rng: random.Random, s: Store) -> str:
    k = rng.randint(1, 5)
    cut = s.events[-k][0]
    s.edits.execute(f"DELETE FROM {s.edits.events} WHERE {s.edits.position} >= ?", (cut,))
    s.edits.execute("DELETE FROM case_event_chain WHERE position >= ?", (cut,))
    return f"removed the last {k} events and their chain rows"


def m_forge_rewrite(rng: random.Random, s: Store) -> str:
    """Rewrites an event's data and recomputes its chain hash and every later one of its case."""
    e = rng.choice(s.events)
    case_id = str(UUID(str(e[1])))
    rows, states = _case_rows(s, case_id)
    state = bytes(e[4])
    at = state.find(b'"actor":"') + len(b'"actor":"')
    forged = (
        state[:at] + b"z" + state[at + 1 :]
        if state[at : at + 1] != b"z"
        else state[:at] + b"y" + state[at + 1 :]
    )
    s.edits.execute(
        f"UPDATE {s.edits.events} SET state = ? WHERE {s.edits.position} = ?", (forged, e[0])
    )
    states[e[2]] = (e[3], forged)
    _relink(s.edits, case_id, e[2], rows, states)
    return f"rewrote the data at position {e[0]} and recomputed its case's chain"


def m_forge_metadata(rng: random.Random, s: Store) -> str:
    """Claims another actor in the chain and recomputes the chain from there."""
    link = rng.choice(s.links)
    case_id = link[0]
    rows, states = _case_rows(s, case_id)
    rows[link[1]] = (*link[:5], "u_forger", *link[6:])
    _relink(s.edits, case_id, link[1], rows, states)
    return f"changed the actor at position {link[2]} and recomputed the chain"


def m_forge_insert(rng: random.Random, s: Store) -> str:
    """Inserts a well-formed event, chain hash and all, inside the checkpointed log."""
    p = s.edits.position
    index = rng.randrange(1, len(s.events) - 1)
    position = s.events[index][0]
    before = [link for link in s.links if link[2] < position]
    last: dict[str, tuple[Any, ...]] = {}
    for link in before:
        last[link[0]] = link
    later = {link[0] for link in s.links if link[2] >= position}
    candidates = [case for case in last if case not in later] or list(last)
    case_id = rng.choice(candidates)
    top = max(link[1] for link in s.links if link[0] == case_id)
    prev = next(link for link in s.links if link[0] == case_id and link[1] == top)
    # Make room: every row from `position` on moves up by one.
    for table, column in ((s.edits.events, p), ("case_event_chain", "position")):
        s.edits.execute(
            f"UPDATE {table} SET {column} = -{column} - 1 WHERE {column} >= ?", (position,)
        )
        s.edits.execute(f"UPDATE {table} SET {column} = -{column} WHERE {column} < 0")
    template = s.events[index]
    state, topic = bytes(template[4]), template[3]
    entry = ChainEntry(topic.rpartition(":")[2], prev[4], prev[5], prev[6], prev[7])
    digest = hashlib.sha256(state).hexdigest()
    link_hash = event_hash(case_id, top + 1, entry, digest, prev[10], topic=topic)
    s.edits.execute(
        f"INSERT INTO {s.edits.events} ({p}, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
        (position, s.edits.stored_id(case_id), top + 1, topic, state),
    )
    s.edits.execute(
        f"INSERT INTO case_event_chain ({Store.LINK}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            case_id,
            top + 1,
            position,
            entry.event_type,
            entry.recorded_at,
            entry.actor,
            entry.actor_role,
            entry.actor_unit,
            digest,
            prev[10],
            link_hash,
        ),
    )
    return f"inserted a forged event with a valid chain hash at position {position}"


def _checkpoints(s: Store) -> list[tuple[Any, ...]]:
    return s.edits.query(
        "SELECT number, tree_size, root_hash, note FROM audit_checkpoints ORDER BY number"
    )


def m_checkpoint_signature(rng: random.Random, s: Store) -> str:
    number, _, _, note = rng.choice(_checkpoints(s))
    head, _, signature = note.rstrip("\n").rpartition(" ")
    raw = base64.b64decode(signature)
    forged = base64.b64encode(raw[:4] + _flip_bit(rng, raw[4:])).decode()
    s.edits.execute(
        "UPDATE audit_checkpoints SET note = ? WHERE number = ?", (f"{head} {forged}\n", number)
    )
    return f"altered the signature of checkpoint #{number}"


def m_checkpoint_note(rng: random.Random, s: Store) -> str:
    number, _, _, note = rng.choice(_checkpoints(s))
    text, _, signature = note.partition("\n\n")
    s.edits.execute(
        "UPDATE audit_checkpoints SET note = ? WHERE number = ?",
        (_change_char(rng, text) + "\n\n" + signature, number),
    )
    return f"altered the signed text of checkpoint #{number}"


def m_checkpoint_columns(rng: random.Random, s: Store) -> str:
    number, size, root, _ = rng.choice(_checkpoints(s))
    if rng.random() < 0.5:
        s.edits.execute(
            "UPDATE audit_checkpoints SET tree_size = ? WHERE number = ?", (size - 1, number)
        )
        return f"changed the tree size of checkpoint #{number}"
    s.edits.execute(
        "UPDATE audit_checkpoints SET root_hash = ? WHERE number = ?",
        (_change_char(rng, root), number),
    )
    return f"changed the root hash column of checkpoint #{number}"


def m_checkpoint_delete(rng: random.Random, s: Store) -> str:
    number = rng.choice(_checkpoints(s)[:-1])[0]
    s.edits.execute("DELETE FROM audit_checkpoints WHERE number = ?", (number,))
    return f"deleted checkpoint #{number}"


def _kept_tree(s: Store) -> list[tuple[Any, ...]]:
    return s.edits.query(
        "SELECT first_leaf, level, hash, first_position, last_position FROM audit_log_tree "
        "ORDER BY first_leaf, level"
    )


def m_tree_root(rng: random.Random, s: Store) -> str:
    first, level, digest, *_ = rng.choice(_kept_tree(s))
    s.edits.execute(
        "UPDATE audit_log_tree SET hash = ? WHERE first_leaf = ? AND level = ?",
        (_change_char(rng, digest), first, level),
    )
    return f"changed the kept root of {2**level} leaves from leaf {first}"


def m_tree_block(rng: random.Random, s: Store) -> str:
    first, level, _, low, high = rng.choice([r for r in _kept_tree(s) if r[3] is not None])
    column, value = rng.choice((("first_position", low), ("last_position", high)))
    s.edits.execute(
        f"UPDATE audit_log_tree SET {column} = ? WHERE first_leaf = ? AND level = ?",
        (value + rng.choice((-1, 1)), first, level),
    )
    return f"moved the {column} of the kept block from leaf {first}"


# Edits of the kept tree (derived data): the whole-store verify compares it with the log.
TREE_MUTATIONS = [m_tree_root, m_tree_block]

MUTATIONS: list[Callable[[random.Random, Store], str]] = [
    m_event_state_bit,
    m_event_state_truncated,
    m_event_topic,
    m_event_version,
    m_event_case,
    m_event_delete,
    m_event_duplicate,
    m_event_swap_states,
    m_event_swap_positions,
    m_link_text,
    m_link_version,
    m_link_position,
    m_link_delete,
    m_event_and_link_delete,
    m_truncate_tail,
    m_forge_rewrite,
    m_forge_metadata,
    m_forge_insert,
    m_checkpoint_signature,
    m_checkpoint_note,
    m_checkpoint_columns,
    m_checkpoint_delete,
    *TREE_MUTATIONS,
]


@dataclass
class Outcome:
    edits: int = 0
    detected: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind: [applied, detected]
    missed: list[str] = field(default_factory=list)
    clean_after: bool = False  # the restored store verified clean at the end


def run_campaign(
    edits: Edits,
    verify: Callable[[], Any],
    restore: Callable[[], None],
    count: int,
    seed: int,
    *,
    commit: bool = True,
    mutations: Sequence[Callable[[random.Random, Store], str]] = MUTATIONS,
) -> Outcome:
    """Applies `count` random single edits one at a time: edit, commit (unless the
    verifier reads the edit's own transaction), verify, restore."""
    rng = random.Random(seed)
    outcome = Outcome()
    store = Store(edits)
    store.load()
    for n in range(count):
        mutation = mutations[n % len(mutations)] if n < len(mutations) else rng.choice(mutations)
        what = mutation(rng, store)
        if commit:
            edits.commit()
        report = verify()
        kind = outcome.by_kind.setdefault(mutation.__name__, [0, 0])
        kind[0] += 1
        outcome.edits += 1
        if report.problems:
            kind[1] += 1
            outcome.detected += 1
        else:
            outcome.missed.append(f"{mutation.__name__}: {what}")
        restore()
    return outcome


# --- the two stores, and campaign workers (separate processes, one copy of the store each) --

OTHER_AUDITED_TABLES = (
    "case_event_chain",
    "audit_checkpoints",
    "case_access_index",
    "audit_log_tree",
)


class SQLiteEdits(Edits):
    dialect = "sqlite"
    position = "rowid"
    events = "stored_events"

    def __init__(self, path: Any) -> None:
        import sqlite3

        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA synchronous=OFF")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params).fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def stored_id(self, case_id: str) -> Any:
        return case_id.replace("-", "")

    def commit(self) -> None:
        self.conn.commit()


class PostgresEdits(Edits):
    dialect = "postgres"
    position = "notification_id"
    events = "casetrail_events"

    def __init__(self, url: str, schema: str) -> None:
        import psycopg

        self.conn = psycopg.connect(
            url, options=f"-c search_path={schema} -c synchronous_commit=off"
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql.replace("?", "%s"), tuple(params)).fetchall())  # type: ignore[arg-type]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]

    def stored_id(self, case_id: str) -> Any:
        return UUID(case_id)

    def commit(self) -> None:
        self.conn.commit()


def sqlite_worker(data_dir: str, pristine: str, count: int, seed: int) -> Outcome:
    """Runs a campaign on a private copy of the SQLite store (in its own process)."""
    import shutil
    import sqlite3
    from pathlib import Path

    from casetrail.bootstrap import bootstrap
    from casetrail.config import Settings
    from tests.conftest import start_of_2026

    source_dir = Path(data_dir)
    work = source_dir.parent / f"work-{seed}" / "var"
    work.mkdir(parents=True)
    shutil.copy(pristine, work / "casetrail.sqlite")
    shutil.copy(source_dir / "audit-signing.key", work / "audit-signing.key")
    ct = bootstrap(Settings(data_dir=work), clock=FixedClock(start_of_2026()))
    edits = SQLiteEdits(work / "casetrail.sqlite")
    source = sqlite3.connect(pristine)
    try:
        outcome = run_campaign(
            edits, ct.audit.verify, lambda: source.backup(edits.conn), count, seed
        )
        outcome.clean_after = ct.audit.verify().ok
        return outcome
    finally:
        edits.conn.close()
        source.close()
        ct.close()


class ConnectionDatabase(PostgresDatabase):
    """`store.db.Database` reading over one open connection, so that the verifier
    reads the edit inside its own (uncommitted) transaction."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @contextmanager
    def transaction(self, *, commit: bool = False) -> Iterator[Cursor]:
        from psycopg.rows import dict_row

        with self.conn.cursor(row_factory=dict_row) as raw:
            yield self.cursor(raw)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.transaction() as cur:
            return cur.execute(sql, params).fetchall()


def postgres_worker(
    url: str, pristine_schema: str, data_dir: str, count: int, seed: int
) -> Outcome:
    """Runs a campaign on a private copy (a schema of its own) of the PostgreSQL store.

    Each edit is made in a transaction, verified by the verifier reading through that
    transaction, and rolled back (restoring the tables after every committed edit would
    cost more than the verification itself)."""
    from pathlib import Path

    import psycopg

    from casetrail.audit.trail import AuditTrail
    from casetrail.bootstrap import bootstrap
    from casetrail.config import Settings
    from tests.conftest import start_of_2026

    schema = f"{pristine_schema}_w{seed % 1000}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        for table in (PostgresEdits.events, *OTHER_AUDITED_TABLES):
            conn.execute(
                f"CREATE TABLE {schema}.{table} (LIKE {pristine_schema}.{table} INCLUDING ALL)"
            )
            conn.execute(f"INSERT INTO {schema}.{table} SELECT * FROM {pristine_schema}.{table}")
    settings = Settings(data_dir=Path(data_dir), database_url=url, database_schema=schema)
    ct = bootstrap(settings, clock=FixedClock(start_of_2026()))
    edits = PostgresEdits(url, schema)
    trail = AuditTrail(ct.app, ConnectionDatabase(edits.conn), ct.clock, ct.audit.signer)  # type: ignore[arg-type]
    try:
        outcome = run_campaign(edits, trail.verify, edits.conn.rollback, count, seed, commit=False)
        outcome.clean_after = ct.audit.verify().ok and trail.verify().ok
        return outcome
    finally:
        edits.conn.close()
        ct.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def in_parallel(worker: Callable[..., Outcome], jobs: Sequence[tuple[Any, ...]]) -> Outcome:
    """Runs the workers in separate processes (the machine has two cores) and adds up."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(len(jobs)) as pool:
        results = pool.starmap(worker, jobs)
    total = Outcome(clean_after=all(r.clean_after for r in results))
    for result in results:
        total.edits += result.edits
        total.detected += result.detected
        total.missed += result.missed
        for kind, (applied, detected) in result.by_kind.items():
            entry = total.by_kind.setdefault(kind, [0, 0])
            entry[0] += applied
            entry[1] += detected
    return total


# --- the campaign against one-case verification ------------------------------------------


def _canonical(value: Any) -> str | None:
    try:
        return str(UUID(str(value)))
    except ValueError:
        return None


def case_campaign(
    edits: Edits,
    trail: Any,
    restore: Callable[[], None],
    count: int,
    seed: int,
    *,
    commit: bool = True,
) -> tuple[Outcome, list[str]]:
    """The campaign of `run_campaign`, each edit checked by one-case verification of
    every case whose rows it touched (of one case when it touched none: a checkpoint);
    the outcome, and the edits missed that one-case verification cannot see by design
    (an event removed with its chain link from the end of its case but not of the log,
    a checkpoint other than the latest altered or removed)."""
    pristine = Store(edits)
    pristine.load()
    events = {
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in e) for e in pristine.events
    }
    links = set(pristine.links)
    last_version: dict[str, int] = {}
    for link in pristine.links:
        last_version[link[0]] = max(last_version.get(link[0], 0), link[1])
    at = {link[2]: link for link in pristine.links}
    latest = max(row[0] for row in _checkpoints(pristine))
    some_case = pristine.links[0][0]
    known = set(last_version)

    def verify_touched() -> Any:
        now = Store(edits)
        now.load()
        now_events = {
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in e) for e in now.events
        }
        cases = {_canonical(e[1]) for e in now_events ^ events}
        cases |= {_canonical(link[0]) for link in set(now.links) ^ links}
        cases.discard(None)
        problems = []
        for case in sorted(c for c in cases if c is not None) or [some_case]:
            try:
                problems += trail.verify(case).problems
            except Exception as error:  # CaseNotFound: an id no case has
                if type(error).__name__ != "CaseNotFound":
                    raise
                if case in known:  # the auditor asks for a case that was there: "no such case"
                    problems.append(Problem("case_missing", str(error), case=case))
        return Report(problems=problems)

    # The kept tree is not a case's: its edits are for the whole-store verify.
    case_edits = [m for m in MUTATIONS if m not in TREE_MUTATIONS]
    outcome = run_campaign(
        edits, verify_touched, restore, count, seed, commit=commit, mutations=case_edits
    )
    blind = []
    for missed in outcome.missed:
        kind, _, what = missed.partition(": ")
        number = what.rpartition("#")[2]
        if kind == "m_event_and_link_delete":
            link = at[int(what.split()[5])]
            if link[1] == last_version[link[0]]:
                blind.append(missed)
        elif kind.startswith("m_checkpoint") and number.isdigit() and int(number) != latest:
            blind.append(missed)
    return outcome, blind
