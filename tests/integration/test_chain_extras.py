"""`write_extras` links new events to the previous link it reads in the transaction, or to
one the caller read before (`previous`) when that is the link of the version just before."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from casetrail.chain import ChainEntry
from casetrail.store.extras import write_extras

CASE = "5c1d7d2e-7f0e-4d37-9d4a-3f7c4f0f2a11"
ENTRY = ChainEntry("AccessRecorded", "2026-03-02T01:00:00+00:00", "u_a", "auditor", "320000")
STORED_HASH = "ab" * 32
GIVEN_HASH = "cd" * 32


class Recorder:
    """Answers the previous-link SELECT with STORED_HASH; keeps every statement."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.statements.append(sql)
        if sql.startswith("SELECT"):
            return [{"case_id": CASE, "version": 5, "hash": STORED_HASH}]
        return []


def append_version_6(previous: dict[str, tuple[int, str]] | None) -> tuple[Recorder, str]:
    execute = Recorder()
    stored = StoredEvent(CASE, 6, "casetrail.audit.access:AccessLog.AccessRecorded", b"{}")
    [link] = write_extras(execute, [stored], [100], chain=[ENTRY], previous=previous)
    return execute, link.prev_hash


def test_without_a_given_link_the_previous_one_is_read() -> None:
    execute, prev = append_version_6(None)
    assert prev == STORED_HASH
    assert sum(sql.startswith("SELECT") for sql in execute.statements) == 1


def test_a_given_link_of_the_version_before_is_used_without_reading() -> None:
    execute, prev = append_version_6({CASE: (5, GIVEN_HASH)})
    assert prev == GIVEN_HASH
    assert not any(sql.startswith("SELECT") for sql in execute.statements)


@pytest.mark.parametrize("version", [4, 6])
def test_a_given_link_of_another_version_is_ignored(version: int) -> None:
    execute, prev = append_version_6({CASE: (version, GIVEN_HASH)})
    assert prev == STORED_HASH
    assert sum(sql.startswith("SELECT") for sql in execute.statements) == 1
