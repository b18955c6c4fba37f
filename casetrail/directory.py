"""Units and users: who may act where.

Units are insert-only (a unit's place in the tree never changes), so a unit and its chain
to the root are cached once read. Users' bearer tokens are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from casetrail.db import Database
from domain.case import ROLES, Actor
from domain.errors import CasetrailError, InvalidData, UnknownUnit
from domain.units import Unit, is_unit_code, level_of, natural_parent

TABLES = [
    "CREATE TABLE IF NOT EXISTS units (code TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "parent TEXT, level TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS units_parent ON units (parent)",
    "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "role TEXT NOT NULL, unit TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, "
    "created_at TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1)",
]


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: str
    unit: str

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.id, role=self.role, unit=self.unit)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UnitExists(CasetrailError):
    status = 409
    code = "unit_exists"


class Directory:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._chains: dict[str, tuple[str, ...]] = {}
        self._units: dict[str, Unit] = {}
        self._lock = threading.Lock()

    def create_tables(self) -> None:
        self.db.execute_script(TABLES)

    def seed_jiangsu(self) -> int:
        """Loads the province and its 13 cities if the unit table is empty."""
        with self.db.transaction(commit=False) as cur:
            if cur.execute("SELECT COUNT(*) AS n FROM units").scalar():
                return 0
        text = (Path(__file__).parent / "data" / "jiangsu_units.json").read_text("utf-8")
        return self.load_units(json.loads(text)["units"])

    # --- units ------------------------------------------------------------------

    def add_unit(self, code: str, name: str, parent: str | None = None) -> Unit:
        if not is_unit_code(code):
            raise UnknownUnit(f"'{code}' is not an administrative division code.")
        if not name or len(name) > 100:
            raise InvalidData(
                "A unit needs a name of 1 to 100 characters.", details={"name": ["Length."]}
            )
        if parent is None:
            parent = natural_parent(code)
        if parent is not None and self.get_unit(parent) is None:
            raise UnknownUnit(
                f"The parent unit {parent} does not exist.", details={"parent": parent}
            )
        if self.get_unit(code) is not None:
            raise UnitExists(f"The unit {code} exists already.", details={"unit": code})
        unit = Unit(code=code, name=name, parent=parent, level=level_of(code))
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO units (code, name, parent, level, created_at) VALUES (?, ?, ?, ?, ?)",
                (unit.code, unit.name, unit.parent, unit.level, _now()),
            )
        return unit

    def load_units(self, units: Iterable[dict[str, Any]]) -> int:
        """Adds units parents first; existing ones are left as they are."""
        added = 0
        pending = sorted(units, key=lambda u: len(str(u["code"])))
        for item in pending:
            code = str(item["code"])
            if self.get_unit(code) is not None:
                continue
            self.add_unit(code, str(item["name"]), item.get("parent"))
            added += 1
        return added

    def load_units_file(self, path: Path) -> int:
        data = json.loads(path.read_text("utf-8"))
        return self.load_units(data["units"] if isinstance(data, dict) else data)

    def get_unit(self, code: str) -> Unit | None:
        # Units are never changed nor removed, so a unit once found is kept; an unknown
        # code is asked again (another process may add it).
        unit = self._units.get(code)
        if unit is not None:
            return unit
        row = self.db.query_one(
            "SELECT code, name, parent, level FROM units WHERE code = ?", (code,)
        )
        if row is None:
            return None
        unit = Unit(**row)
        self._units[code] = unit
        return unit

    def require_unit(self, code: str) -> Unit:
        unit = self.get_unit(code)
        if unit is None:
            raise UnknownUnit(f"The unit {code} does not exist.", details={"unit": code})
        return unit

    def units(self) -> list[Unit]:
        return [
            Unit(**row)
            for row in self.db.query("SELECT code, name, parent, level FROM units ORDER BY code")
        ]

    def chain(self, code: str) -> tuple[str, ...]:
        """The unit and its ancestors, from the unit up to the root."""
        with self._lock:
            cached = self._chains.get(code)
        if cached is not None:
            return cached
        chain: list[str] = []
        current: str | None = code
        while current is not None:
            unit = self.get_unit(current)
            if unit is None:
                raise UnknownUnit(f"The unit {current} does not exist.", details={"unit": current})
            chain.append(unit.code)
            current = unit.parent
            if len(chain) > 10:
                raise UnknownUnit(f"The unit tree above {code} has a cycle.")
        result = tuple(chain)
        with self._lock:
            self._chains[code] = result
        return result

    def may_act(self, user_unit: str, case_unit: str) -> bool:
        """May a user of `user_unit` act on a case handled by `case_unit`?"""
        return user_unit in self.chain(case_unit)

    # --- users ------------------------------------------------------------------

    def create_user(self, name: str, role: str, unit: str) -> tuple[User, str]:
        """Creates a user; returns them with their bearer token, which is not kept."""
        if role not in ROLES:
            raise InvalidData(
                f"Unknown role '{role}'.", details={"role": [f"One of {', '.join(ROLES)}."]}
            )
        if not name or len(name) > 100:
            raise InvalidData(
                "A user needs a name of 1 to 100 characters.", details={"name": ["Length."]}
            )
        self.require_unit(unit)
        user = User(id="u_" + secrets.token_hex(8), name=name, role=role, unit=unit)
        token = "ct_" + secrets.token_urlsafe(32)
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO users (id, name, role, unit, token_hash, created_at, active) "
                "VALUES (?, ?, ?, ?, ?, ?, 1)",
                (user.id, user.name, user.role, user.unit, hash_token(token), _now()),
            )
        return user, token

    def user_by_token(self, token: str) -> User | None:
        row = self.db.query_one(
            "SELECT id, name, role, unit FROM users WHERE token_hash = ? AND active = 1",
            (hash_token(token),),
        )
        return User(**row) if row else None

    def get_user(self, user_id: str) -> User | None:
        row = self.db.query_one("SELECT id, name, role, unit FROM users WHERE id = ?", (user_id,))
        return User(**row) if row else None

    def users(self) -> list[User]:
        return [
            User(**r)
            for r in self.db.query("SELECT id, name, role, unit FROM users ORDER BY created_at, id")
        ]


def _now() -> str:
    return datetime.now(UTC).isoformat()
