"""The synthetic province: Jiangsu's units down to townships, and the users who work there."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import accumulate

from casetrail.directory import Directory
from demo import divisions, people
from domain.case import Actor


@dataclass
class Province:
    townships_per_county: int
    names: dict[str, str] = field(default_factory=dict)
    townships: list[str] = field(default_factory=list)
    _cumulative: list[float] = field(default_factory=list)

    @classmethod
    def build(cls, townships_per_county: int) -> Province:
        province = cls(townships_per_county)
        province.names[divisions.PROVINCE] = "江苏省"
        for code, (name, _) in divisions.CITIES.items():
            province.names[code] = name
        weights = []
        counties_in_city = {
            city: sum(1 for c in divisions.COUNTIES if divisions.city_of(c) == city)
            for city in divisions.CITIES
        }
        for division in divisions.province_divisions(townships_per_county):
            province.names[division.code] = division.name
            if len(division.code) == 9:
                city = divisions.city_of(division.code)
                population = divisions.CITIES[city][1]
                province.townships.append(division.code)
                weights.append(population / counties_in_city[city] / townships_per_county)
        province._cumulative = list(accumulate(weights))
        return province

    def pick_township(self, rng: random.Random) -> str:
        return rng.choices(self.townships, cum_weights=self._cumulative)[0]

    def other_township(self, rng: random.Random, township: str) -> str:
        """Another township of the same county (a delegation or a move nearby)."""
        county = township[:6]
        siblings = [t for t in self.townships if t[:6] == county and t != township]
        return rng.choice(siblings) if siblings else self.pick_township(rng)

    def full_name(self, code: str) -> str:
        return divisions.full_name(code, self.names)

    def is_rural(self, township: str) -> bool:
        return self.names[township].endswith("镇")

    def units(self) -> list[dict[str, str | None]]:
        """Counties and townships, parents first, for Directory.load_units."""
        return [
            {"code": d.code, "name": d.name, "parent": d.parent}
            for d in divisions.province_divisions(self.townships_per_county)
        ]


# Users per unit: (role, how many) by level.
STAFF = {
    "province": (("supervisor", 1), ("auditor", 1)),
    "city": (("supervisor", 1),),
    "county": (("caseworker", 1), ("supervisor", 1)),
    "township": (("caseworker", 1), ("supervisor", 1)),
}


class Staff:
    """The demo's users, by role and unit; each event is recorded by one of them."""

    def __init__(self) -> None:
        self.by_unit: dict[tuple[str, str], list[Actor]] = {}

    @classmethod
    def hire(cls, directory: Directory, province: Province, rng: random.Random) -> Staff:
        staff = cls()
        for code in sorted(province.names):
            level = "province" if code == divisions.PROVINCE else (
                "city" if code.endswith("00") and len(code) == 6 else
                "county" if len(code) == 6 else "township"
            )  # fmt: skip
            for role, count in STAFF[level]:
                for _ in range(count):
                    user, _token = directory.create_user(
                        people.name(rng, rng.choice(("male", "female"))), role, code
                    )
                    staff.by_unit.setdefault((role, code), []).append(user.actor)
        return staff

    def actor(self, rng: random.Random, role: str, unit: str) -> Actor:
        return rng.choice(self.by_unit[(role, unit)])

    @property
    def users(self) -> int:
        return sum(len(actors) for actors in self.by_unit.values())
