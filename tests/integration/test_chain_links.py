"""`write_links` links new events to the previous link it reads in the transaction, or to
one the caller read before (`previous`) when that is the link of the version just before."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from eventsourcing.persistence import StoredEvent

from evidence.chain import ChainEntry
from store.chain_links import CHAIN_TABLE, create_statements, write_links
from store.sqlite import SQLiteDbCursor

CASE = "5c1d7d2e-7f0e-4d37-9d4a-3f7c4f0f2a11"
ENTRY = ChainEntry("AccessRecorded", "2026-03-02T01:00:00+00:00", "u_a", "auditor", "320000")
STORED_HASH = "ab" * 32
GIVEN_HASH = "cd" * 32


@pytest.fixture
def chain() -> Iterator[tuple[sqlite3.Connection, list[str]]]:
    """A chain table whose case has its link of version 5 stored (STORED_HASH), and the
    statements run on it from then on."""
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    for statement in create_statements():
        conn.execute(statement)
    conn.execute(
        f"INSERT INTO {CHAIN_TABLE} VALUES (?, 5, 99, 'AccessRecorded', '', '', '', '', '', '', ?)",
        (CASE, STORED_HASH),
    )
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    yield conn, statements
    conn.close()


def append_version_6(
    chain: tuple[sqlite3.Connection, list[str]], previous: dict[str, tuple[int, str]] | None
) -> tuple[list[str], str]:
    conn, statements = chain
    stored = StoredEvent(CASE, 6, "casetrail.audit.access:AccessLog.AccessRecorded", b"{}")
    links = write_links(
        SQLiteDbCursor(conn.cursor()),
        [stored],
        [100],
        chain=[ENTRY],
        previous=previous,
    )
    ran = list(statements)
    [written] = conn.execute(f"SELECT prev_hash FROM {CHAIN_TABLE} WHERE version = 6").fetchall()
    assert written["prev_hash"] == links[0].prev_hash
    return ran, links[0].prev_hash


def reads(statements: list[str]) -> int:
    return sum(sql.lstrip().startswith("SELECT") for sql in statements)


def test_without_a_given_link_the_previous_one_is_read(
    chain: tuple[sqlite3.Connection, list[str]],
) -> None:
    statements, prev = append_version_6(chain, None)
    assert prev == STORED_HASH
    assert reads(statements) == 1


def test_a_given_link_of_the_version_before_is_used_without_reading(
    chain: tuple[sqlite3.Connection, list[str]],
) -> None:
    statements, prev = append_version_6(chain, {CASE: (5, GIVEN_HASH)})
    assert prev == GIVEN_HASH
    assert reads(statements) == 0


@pytest.mark.parametrize("version", [4, 6])
def test_a_given_link_of_another_version_is_ignored(
    chain: tuple[sqlite3.Connection, list[str]], version: int
) -> None:
    statements, prev = append_version_6(chain, {CASE: (version, GIVEN_HASH)})
    assert prev == STORED_HASH
    assert reads(statements) == 1
