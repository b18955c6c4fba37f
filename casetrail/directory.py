"""Units and users: who may act and read where, and their administration.

Reach: every user reaches their unit's subtree, auditors included (the province's
auditor reaches the province, a district's auditor the district). An admin grants only
units inside their own subtree, so never more reach than their own; a unit's parent is
the one its code implies, except in a reviewed file a root admin loads.

Units are insert-only (a unit's place in the tree never changes), so a unit and its chain
to the root are cached once read. Users' bearer tokens are stored only as SHA-256 hashes
and looked up on every request (no cache): a disabled user or a rotated-away token is
refused at once by every process. Every administration act done by someone (`by`) is an
event of the administration log (casetrail.administration).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from casetrail.administration import AdministrationLog
from domain.case import ROLES, Actor
from domain.errors import CasetrailError, InvalidData, NotPermitted, UnknownUnit
from domain.roles import ADMIN, AUDITOR, READ_ROLES
from domain.units import Unit, is_unit_code, level_of, natural_parent
from store.db import Database

TABLES = [
    "CREATE TABLE IF NOT EXISTS units (code TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "parent TEXT, level TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS units_parent ON units (parent)",
    "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "role TEXT NOT NULL, unit TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, "
    "created_at TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1)",
]
# Added to `users` after its first version; NULL: the token was issued at `created_at`.
TOKEN_ISSUED_AT = "token_issued_at"
DEFAULT_TOKEN_TTL_DAYS = 90
USER_COLUMNS = "id, name, role, unit, active"


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: str
    unit: str
    active: bool = True

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.id, role=self.role, unit=self.unit)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UnitExists(CasetrailError):
    status = 409
    code = "unit_exists"


class UserNotFound(CasetrailError):
    status = 404
    code = "user_not_found"


class BadToken(CasetrailError):
    """The bearer token is unknown, its user disabled, or it expired (401)."""

    status = 401
    code = "unauthorized"


def _user(row: dict[str, Any]) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        unit=row["unit"],
        active=bool(row["active"]),
    )


class Directory:
    def __init__(
        self,
        db: Database,
        *,
        log: AdministrationLog | None = None,
        token_ttl_days: int = DEFAULT_TOKEN_TTL_DAYS,
    ) -> None:
        self.db = db
        # Where administration acts are recorded; None: nowhere (an act by someone fails).
        self.log = log
        self.token_ttl = timedelta(days=token_ttl_days) if token_ttl_days > 0 else None
        self._chains: dict[str, tuple[str, ...]] = {}
        self._units: dict[str, Unit] = {}
        self._lock = threading.Lock()

    def create_tables(self) -> None:
        self.db.execute_script(TABLES)
        self.db.add_column("users", TOKEN_ISSUED_AT, "TEXT")

    # --- reach ------------------------------------------------------------------

    def may_read(self, actor: Actor, unit: str) -> bool:
        """May `actor` read a case of `unit`? Readers (auditors too) within their subtree."""
        return actor.role in READ_ROLES and self.may_act(actor.unit, unit)

    def reaches_everything(self, actor: Actor) -> bool:
        """Is `actor`'s unit a root of the tree (the province)?"""
        unit = self.get_unit(actor.unit) if actor.unit else None
        return unit is not None and unit.parent is None

    def require_whole_log_reader(self, actor: Actor) -> None:
        """The global feed and the access log cross every unit: an auditor of a root unit
        only (an auditor below reads their subtree's cases one by one)."""
        if actor.role != AUDITOR:
            raise NotPermitted("Only auditors read the global logs.", code="auditors_only")
        if not self.reaches_everything(actor):
            raise NotPermitted(
                "The global logs cover every unit: only an auditor of the province reads them.",
                code="outside_jurisdiction",
            )

    def require_admin_over(self, admin: Actor, *units: str) -> None:
        """An admin manages units and users inside their own subtree only."""
        if admin.role != ADMIN:
            raise NotPermitted(
                f"A user with the role '{admin.role}' may not do this.",
                code="role_not_permitted",
            )
        for unit in units:
            self.require_unit(unit)
            if not self.may_act(admin.unit, unit):
                raise NotPermitted(
                    "This unit is outside your unit's jurisdiction.",
                    code="outside_jurisdiction",
                )

    def _record(self, by: Actor | None, event_type: str, data: dict[str, Any]) -> None:
        if by is None:  # the system itself (seeding, tests): not an act of anyone
            return
        if self.log is None:
            raise RuntimeError("administration acts need the administration log")
        self.log.record(by, event_type, data)

    def seed_jiangsu(self) -> int:
        """Loads the province and its 13 cities if the unit table is empty."""
        with self.db.transaction(commit=False) as cur:
            if cur.execute("SELECT COUNT(*) AS n FROM units").scalar():
                return 0
        text = (Path(__file__).parent / "data" / "jiangsu_units.json").read_text("utf-8")
        return self.load_units(json.loads(text)["units"])

    # --- units ------------------------------------------------------------------

    def add_unit(
        self,
        code: str,
        name: str,
        parent: str | None = None,
        *,
        by: Actor | None = None,
        reviewed: bool = False,
    ) -> Unit:
        """Adds a unit under the parent its code implies. Another `parent` only when
        `reviewed` (a reviewed file, loaded by the system or by a root admin)."""
        if not is_unit_code(code):
            raise UnknownUnit(f"'{code}' is not an administrative division code.")
        if not name or len(name) > 100:
            raise InvalidData(
                "A unit needs a name of 1 to 100 characters.", details={"name": ["Length."]}
            )
        implied = natural_parent(code)
        if parent is None:
            parent = implied
        if parent != implied and not reviewed:
            raise InvalidData(
                f"The unit {code} belongs under {implied}, the unit its code implies.",
                code="parent_not_implied",
                details={"parent": [f"Must be {implied}."]},
            )
        if by is not None:
            if parent is None:
                raise NotPermitted(
                    "Only a provincial deployment adds a province.", code="root_unit"
                )
            if reviewed and not self.reaches_everything(by):
                raise NotPermitted(
                    "Only an admin of the province loads a unit file.", code="root_admin_only"
                )
            self.require_admin_over(by, parent)
        if parent is not None and self.get_unit(parent) is None:
            raise UnknownUnit(
                f"The parent unit {parent} does not exist.", details={"parent": parent}
            )
        if self.get_unit(code) is not None:
            raise UnitExists(f"The unit {code} exists already.", details={"unit": code})
        unit = Unit(code=code, name=name, parent=parent, level=level_of(code))
        self._record(
            by, "UnitAdded", {"code": code, "name": name, "parent": parent, "level": unit.level}
        )
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO units (code, name, parent, level, created_at) VALUES (?, ?, ?, ?, ?)",
                (unit.code, unit.name, unit.parent, unit.level, _now()),
            )
        return unit

    def load_units(self, units: Iterable[dict[str, Any]], *, by: Actor | None = None) -> int:
        """Adds units parents first; existing ones are left as they are. A loaded file is
        a reviewed one: its parents may differ from the ones codes imply (`by`, if given,
        must be an admin of a root unit)."""
        added = 0
        pending = sorted(units, key=lambda u: len(str(u["code"])))
        for item in pending:
            code = str(item["code"])
            if self.get_unit(code) is not None:
                continue
            self.add_unit(code, str(item["name"]), item.get("parent"), by=by, reviewed=True)
            added += 1
        return added

    def load_units_file(self, path: Path, *, by: Actor | None = None) -> int:
        data = json.loads(path.read_text("utf-8"))
        return self.load_units(data["units"] if isinstance(data, dict) else data, by=by)

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

    def subtree(self, code: str) -> list[str] | None:
        """The codes of a unit and every unit below it; None for a root (every unit)."""
        unit = self.get_unit(code)
        if unit is not None and unit.parent is None:
            return None
        return [u.code for u in self.units() if self.may_act(code, u.code)]

    def reaches(self, user_unit: str, units: Iterable[str]) -> bool:
        """Is `user_unit` one of these units or above one of them?"""
        return any(self.may_act(user_unit, unit) for unit in units)

    # --- users ------------------------------------------------------------------

    def create_user(
        self, name: str, role: str, unit: str, *, by: Actor | None = None
    ) -> tuple[User, str]:
        """Creates a user; returns them with their bearer token, which is not kept."""
        self._check_role(role)
        if not name or len(name) > 100:
            raise InvalidData(
                "A user needs a name of 1 to 100 characters.", details={"name": ["Length."]}
            )
        self.require_unit(unit)
        if by is not None:
            self.require_admin_over(by, unit)
        user = User(id="u_" + secrets.token_hex(8), name=name, role=role, unit=unit)
        token = new_token()
        self._record(by, "UserCreated", {"user": user.id, "name": name, "role": role, "unit": unit})
        now = _now()
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO users (id, name, role, unit, token_hash, created_at, active, "
                f"{TOKEN_ISSUED_AT}) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                (user.id, user.name, user.role, user.unit, hash_token(token), now, now),
            )
        return user, token

    def authenticate(self, token: str) -> User:
        """The active user whose token this is; refuses unknown, disabled and expired ones."""
        return self.authenticate_hash(hash_token(token))

    def authenticate_hash(self, token_hash: str) -> User:
        """As `authenticate`, by the token's hash (a console session keeps only the hash)."""
        row = self.db.query_one(
            f"SELECT {USER_COLUMNS}, created_at, {TOKEN_ISSUED_AT} FROM users WHERE token_hash = ?",
            (token_hash,),
        )
        if row is None:
            raise BadToken("The bearer token is not valid.")
        if not row["active"]:
            raise BadToken("This user is disabled.", code="user_disabled")
        if self.token_ttl is not None:
            issued = datetime.fromisoformat(str(row[TOKEN_ISSUED_AT] or row["created_at"]))
            if issued + self.token_ttl <= datetime.now(UTC):
                raise BadToken(
                    "The bearer token has expired; an admin issues a new one.",
                    code="token_expired",
                )
        return _user(row)

    def user_by_token(self, token: str) -> User | None:
        try:
            return self.authenticate(token)
        except BadToken:
            return None

    def get_user(self, user_id: str) -> User | None:
        row = self.db.query_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    def users(self) -> list[User]:
        return [
            _user(r)
            for r in self.db.query(f"SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id")
        ]

    def users_page(
        self,
        by: Actor,
        page: int,
        per_page: int,
        *,
        unit: str | None = None,
        role: str | None = None,
    ) -> tuple[list[User], int]:
        """A page of the users of `by`'s subtree (or of `unit`'s, inside it), oldest
        first, and how many there are."""
        top = unit or by.unit
        self.require_admin_over(by, top)
        conditions: list[str] = []
        params: list[Any] = []
        top_unit = self.require_unit(top)
        if top_unit.parent is not None:  # below a root: the units of the subtree
            units = [u.code for u in self.units() if self.may_act(top, u.code)]
            conditions.append(f"unit IN ({', '.join('?' for _ in units)})")
            params.extend(units)
        if role is not None:
            conditions.append("role = ?")
            params.append(role)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        total = self.db.query_one(f"SELECT COUNT(*) AS n FROM users {where}", params)
        rows = self.db.query(
            f"SELECT {USER_COLUMNS} FROM users {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        return [_user(row) for row in rows], int(total["n"]) if total else 0

    def managed_user(self, by: Actor, user_id: str) -> User:
        """A user `by` may manage: in their subtree (else not found: ids outside are not told)."""
        self.require_admin_over(by, by.unit)
        user = self.get_user(user_id)
        if user is None or not self.may_act(by.unit, user.unit):
            raise UserNotFound(f"There is no user {user_id} in your subtree.")
        return user

    def set_active(self, user_id: str, active: bool, *, by: Actor) -> User:
        """Disables or enables a user; a disabled user's token is refused at once."""
        user = self.managed_user(by, user_id)
        if user.id == by.user_id and not active:
            raise NotPermitted("An admin does not disable themselves.", code="self_disable")
        if user.active != active:
            event = "UserEnabled" if active else "UserDisabled"
            self._record(by, event, {"user": user.id, "role": user.role, "unit": user.unit})
            with self.db.transaction() as cur:
                cur.execute("UPDATE users SET active = ? WHERE id = ?", (int(active), user.id))
        return replace(user, active=active)

    def rotate_token(self, user_id: str, *, by: Actor) -> tuple[User, str]:
        """Issues a new token (shown once); the old one is refused from the commit on."""
        user = self.managed_user(by, user_id)
        token = new_token()
        self._record(by, "UserTokenRotated", {"user": user.id})
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE users SET token_hash = ?, {TOKEN_ISSUED_AT} = ? WHERE id = ?",
                (hash_token(token), _now(), user.id),
            )
        return user, token

    def change_user(
        self, user_id: str, *, by: Actor, unit: str | None = None, role: str | None = None
    ) -> User:
        """Moves a user to another unit or gives them another role, both within `by`'s
        subtree (so never more reach than the admin's own)."""
        user = self.managed_user(by, user_id)
        new_unit, new_role = unit or user.unit, role or user.role
        self._check_role(new_role)
        self.require_admin_over(by, new_unit)
        if (new_unit, new_role) == (user.unit, user.role):
            return user
        self._record(
            by,
            "UserChanged",
            {
                "user": user.id,
                "before": {"unit": user.unit, "role": user.role},
                "after": {"unit": new_unit, "role": new_role},
            },
        )
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE users SET unit = ?, role = ? WHERE id = ?", (new_unit, new_role, user.id)
            )
        return replace(user, unit=new_unit, role=new_role)

    @staticmethod
    def _check_role(role: str) -> None:
        if role not in ROLES:
            raise InvalidData(
                f"Unknown role '{role}'.", details={"role": [f"One of {', '.join(ROLES)}."]}
            )


def new_token() -> str:
    return "ct_" + secrets.token_urlsafe(32)


def _now() -> str:
    return datetime.now(UTC).isoformat()
