"""Generations of read models: each generation's tables (`rm_<name>_<table>_<gen>`), its
layout version, the `rm_active` pointer that queries follow, the atomic switch to a
rebuilt generation and the dropping of retired ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import PersistenceError

from projections.privacy import Privacy
from projections.readmodel import Projection, Tables
from projections.tracking import share_names, share_tracking_name, tracking_name
from store.db import Cursor, Database

if TYPE_CHECKING:
    from casetrail.bootstrap import Casetrail

log = logging.getLogger("casetrail.projections")

ACTIVE_TABLE = "rm_active"
GENERATIONS_TABLE = "rm_generations"
VERSIONS_TABLE = "rm_versions"
# Which search-term key each generation was built with (Privacy.term_key_id; no row: the
# key of stores from before, `legacy_term_key`).
TERM_KEYS_TABLE = "rm_term_keys"
# A retired generation is dropped only this long after the switch: a query that read the
# old pointer finishes long before.
RETIRED_GRACE_SECONDS = 600.0
SQLITE_CACHE_KIB = 65536

META_TABLES = [
    f"CREATE TABLE IF NOT EXISTS {ACTIVE_TABLE} (name TEXT PRIMARY KEY, generation BIGINT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {GENERATIONS_TABLE} (name TEXT NOT NULL, generation BIGINT NOT NULL, "
    "state TEXT NOT NULL, created_at TEXT NOT NULL, retired_at DOUBLE PRECISION, "
    "PRIMARY KEY (name, generation))",
    # The layout version of each generation's tables (no row: version 1).
    f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (name TEXT NOT NULL, generation BIGINT NOT NULL, "
    "version BIGINT NOT NULL, PRIMARY KEY (name, generation))",
    f"CREATE TABLE IF NOT EXISTS {TERM_KEYS_TABLE} (name TEXT NOT NULL, generation BIGINT NOT NULL, "
    "term_key_id TEXT NOT NULL, PRIMARY KEY (name, generation))",
]


def is_index(statement: str) -> bool:
    """Secondary indexes are created after a rebuild has filled its tables: one sort
    instead of a B-tree updated at random places by every batch."""
    return statement.lstrip().upper().startswith(("CREATE INDEX", "CREATE UNIQUE INDEX"))


class Generations:
    """The generations of a set of read models in one casetrail's datastore."""

    def __init__(self, ct: Casetrail, projections: Iterable[Projection]) -> None:
        self.ct = ct
        self.db: Database = ct.db
        self.projections = {p.name: p for p in projections}
        self.recorder: Any = ct.app.factory.tracking_recorder()
        self.tracking_table: str = getattr(self.recorder, "tracking_table_name", "tracking")
        self._ready = False
        # Search terms: under a key derived from the master key where the store has
        # per-person keys; generations built before under the old key are read with it
        # until their rebuild under the new one has switched (see `stale`).
        keys = getattr(ct.app.mapper, "keys", None)
        self.legacy_privacy = Privacy(ct.settings.cipher_key)
        self.privacy = (
            Privacy(ct.settings.cipher_key, keys.search_term_key())
            if keys is not None
            else self.legacy_privacy
        )
        self._privacy_of: dict[tuple[str, int], Privacy] = {}

    # --- set-up -----------------------------------------------------------------------

    def setup(self) -> None:
        """Creates the pointer tables and a first generation of every read model."""
        if self._ready:
            return
        self._retry(lambda: self.db.execute_script(META_TABLES))
        for name in self.projections:
            active = self.active_generation(name)
            if active is None:
                self._retry(lambda name=name: self._create_generation(name, 1, activate=True))
            else:  # an index this build added to an existing generation
                self._retry(lambda name=name, active=active: self._create_indexes(name, active))
        self._ready = True

    def tables(self, name: str, generation: int) -> Tables:
        return Tables(name, generation, self.db.clustered_table_option)

    def _create_generation(self, name: str, generation: int, *, activate: bool) -> None:
        tables = self.tables(name, generation)
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO {GENERATIONS_TABLE} (name, generation, state, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name, generation) DO NOTHING",
                (name, generation, "active" if activate else "building", _now()),
            )
            cur.execute(
                f"INSERT INTO {VERSIONS_TABLE} (name, generation, version) VALUES (?, ?, ?) "
                "ON CONFLICT (name, generation) DO NOTHING",
                (name, generation, self.projections[name].version),
            )
            cur.execute(
                f"INSERT INTO {TERM_KEYS_TABLE} (name, generation, term_key_id) VALUES (?, ?, ?) "
                "ON CONFLICT (name, generation) DO NOTHING",
                (name, generation, self.privacy.term_key_id),
            )
            for statement in self.projections[name].create_statements(tables):
                # A generation being built gets its indexes once it has caught up.
                if activate or not is_index(statement):
                    cur.execute(statement)
            cur.execute(
                f"INSERT INTO {self.tracking_table} (application_name, notification_id) "
                "VALUES (?, 0) ON CONFLICT (application_name) DO NOTHING",
                (tracking_name(name, generation),),
            )
            if activate:
                cur.execute(
                    f"INSERT INTO {ACTIVE_TABLE} (name, generation) VALUES (?, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, generation),
                )

    def _create_indexes(self, name: str, generation: int) -> None:
        tables = self.tables(name, generation)
        with self.db.transaction() as cur:
            self.db.use_cache(cur, SQLITE_CACHE_KIB)
            for statement in self.projections[name].create_statements(tables):
                if is_index(statement):
                    cur.execute(statement)

    def _retry(self, action: Any, attempts: int = 5) -> None:
        # Two processes creating the same tables at once on PostgreSQL may collide.
        for attempt in range(attempts):
            try:
                action()
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    # --- positions ----------------------------------------------------------------------

    def active_generation(self, name: str) -> int | None:
        row = self.db.query_one(f"SELECT generation FROM {ACTIVE_TABLE} WHERE name = ?", (name,))
        return int(row["generation"]) if row else None

    def active_generations(self) -> dict[str, int]:
        rows = self.db.query(f"SELECT name, generation FROM {ACTIVE_TABLE}")
        return {row["name"]: int(row["generation"]) for row in rows}

    def stale(self, names: Iterable[str] | None = None) -> list[str]:
        """Read models whose active generation has an older layout than this build's, or
        holds search terms under another key than this store's (an upgrade from before
        the key was derived from the master key)."""
        versions = {
            (row["name"], int(row["generation"])): int(row["version"])
            for row in self.db.query(f"SELECT name, generation, version FROM {VERSIONS_TABLE}")
        }
        active = self.active_generations()
        return [
            name
            for name in (names if names is not None else self.projections)
            if name in active
            and (
                versions.get((name, active[name]), 1) < self.projections[name].version
                or (
                    self.projections[name].search_keyed
                    and self.term_key_id(name, active[name]) != self.privacy.term_key_id
                )
            )
        ]

    def term_key_id(self, name: str, generation: int) -> str:
        """The id of the search-term key a generation was built with."""
        row = self.db.query_one(
            f"SELECT term_key_id FROM {TERM_KEYS_TABLE} WHERE name = ? AND generation = ?",
            (name, generation),
        )
        return str(row["term_key_id"]) if row else self.legacy_privacy.term_key_id

    def privacy_of(self, tables: Tables) -> Privacy:
        """The search terms of this generation's tables, made and looked up under the key
        it was built with: a generation from before the key was derived from the master
        key is still searched (and caught up) under the old key until its rebuild has
        switched. A generation of a key neither (another master key) is stale: the current
        key's terms find nothing in it until its rebuild."""
        at = (tables.name, tables.generation)
        found = self._privacy_of.get(at)
        if found is None:
            key_id = self.term_key_id(tables.name, tables.generation)
            legacy = key_id == self.legacy_privacy.term_key_id
            found = self.legacy_privacy if legacy else self.privacy
            self._privacy_of[at] = found  # a generation's key never changes
        return found

    def position(self, name: str, generation: int) -> int:
        return int(self.recorder.max_tracking_id(tracking_name(name, generation)) or 0)

    # --- shares of a rebuild ------------------------------------------------------------

    def _shares(
        self, name: str, generation: int, cur: Cursor | None = None
    ) -> dict[tuple[int, int], int]:
        """The shares filling a building generation, with their positions."""
        params = share_names(name, generation)
        sql = (
            f"SELECT application_name, notification_id FROM {self.tracking_table} "
            "WHERE application_name > ? AND application_name < ?"
        )
        rows = (
            cur.execute(sql, params).fetchall() if cur is not None else self.db.query(sql, params)
        )
        found = {}
        for row in rows:
            lo, _, hi = row["application_name"][len(params[0]) :].partition("-")
            found[(int(lo), int(hi))] = int(row["notification_id"])
        return found

    def _share_position(self, name: str, generation: int, share: tuple[int, int]) -> int | None:
        row = self.db.query_one(
            f"SELECT notification_id FROM {self.tracking_table} WHERE application_name = ?",
            (share_tracking_name(name, generation, share),),
        )
        return int(row["notification_id"]) if row else None

    def _new_generation(self, name: str) -> int:
        generation = self._building_generation(name)
        if generation is None:
            row = self.db.query_one(
                f"SELECT MAX(generation) AS g FROM {GENERATIONS_TABLE} WHERE name = ?", (name,)
            )
            generation = int(row["g"] or 0) + 1 if row else 1
            self._retry(lambda: self._create_generation(name, generation, activate=False))
        return generation

    def analyze(self, name: str, generation: int) -> None:
        """PostgreSQL: VACUUM (ANALYZE) of freshly filled tables, as autovacuum would do
        later. ANALYZE gives the planner its statistics; VACUUM sets the visibility map,
        without which an index-only scan (the overdue counts of the indicators, a search
        term's count) still visits the table for every entry. SQLite's plans are fixed
        by its indexes."""
        tables = self.tables(name, generation)
        try:
            self.db.refresh_statistics([tables[table] for table in self.projections[name].tables])
        except PersistenceError:
            # Two workers analysing one table at once collide ("tuple concurrently
            # updated"); the statistics are only a hint, and the other worker's stand.
            log.warning("VACUUM (ANALYZE) of read model %s skipped", name, exc_info=True)

    def _building_generation(self, name: str) -> int | None:
        row = self.db.query_one(
            f"SELECT MAX(generation) AS g FROM {GENERATIONS_TABLE} WHERE name = ? AND state = 'building'",
            (name,),
        )
        return int(row["g"]) if row and row["g"] is not None else None

    def _switch(self, cur: Cursor, name: str, generation: int) -> None:
        """The atomic switch: one pointer row, in the final batch's transaction."""
        row = cur.execute(
            f"SELECT generation FROM {ACTIVE_TABLE} WHERE name = ?", (name,)
        ).fetchone()
        old = int(row["generation"]) if row else None
        cur.execute(f"UPDATE {ACTIVE_TABLE} SET generation = ? WHERE name = ?", (generation, name))
        cur.execute(
            f"UPDATE {GENERATIONS_TABLE} SET state = 'active' WHERE name = ? AND generation = ?",
            (name, generation),
        )
        if old is not None and old != generation:
            cur.execute(
                f"UPDATE {GENERATIONS_TABLE} SET state = 'retired', retired_at = ? "
                "WHERE name = ? AND generation = ?",
                (time.time(), name, old),
            )

    def drop_retired(self, grace_seconds: float = RETIRED_GRACE_SECONDS) -> list[tuple[str, int]]:
        """Drops generations retired longer ago than the grace period."""
        self.setup()
        rows = self.db.query(
            f"SELECT name, generation FROM {GENERATIONS_TABLE} "
            "WHERE state = 'retired' AND retired_at < ?",
            (time.time() - grace_seconds,),
        )
        dropped = []
        for row in rows:
            name, generation = row["name"], int(row["generation"])
            projection = self.projections.get(name)
            if projection is None:
                continue
            tables = self.tables(name, generation)
            with self.db.transaction() as cur:
                for table in projection.tables:
                    cur.execute(f"DROP TABLE IF EXISTS {tables[table]}")
                cur.execute(
                    f"DELETE FROM {self.tracking_table} WHERE application_name = ?",
                    (tracking_name(name, generation),),
                )
                for table in (GENERATIONS_TABLE, VERSIONS_TABLE):
                    cur.execute(
                        f"DELETE FROM {table} WHERE name = ? AND generation = ?",
                        (name, generation),
                    )
            dropped.append((name, generation))
        return dropped


def _now() -> str:
    return datetime.now(UTC).isoformat()
