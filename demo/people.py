"""Synthetic people: names from the commonest surnames and given-name characters, resident
identity numbers with a valid GB 11643 check digit, phone numbers and addresses.

Every value comes from the caller's `random.Random`, so a seed gives the same people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from demo.divisions import ROADS

# The commonest surnames, weighted roughly by frequency in Jiangsu.
SURNAMES = (
    ("王", 70), ("张", 60), ("陈", 60), ("李", 55), ("刘", 45), ("徐", 40), ("朱", 35),
    ("周", 32), ("吴", 32), ("孙", 28), ("杨", 28), ("沈", 20), ("陆", 20), ("顾", 18),
    ("钱", 12), ("蒋", 14), ("黄", 18), ("赵", 18), ("胡", 14), ("高", 12), ("马", 10),
    ("何", 8), ("林", 8), ("郑", 8), ("谢", 8), ("宋", 8), ("许", 12), ("韩", 8),
    ("曹", 10), ("丁", 10), ("唐", 8), ("潘", 8), ("袁", 8), ("姚", 8), ("戴", 8),
    ("邵", 6), ("汤", 6), ("严", 6), ("金", 8), ("华", 5), ("葛", 5), ("范", 6),
    ("季", 5), ("仇", 3), ("卞", 3), ("翟", 3), ("缪", 3), ("瞿", 3), ("欧阳", 1),
)  # fmt: skip
_SURNAMES, _SURNAME_WEIGHTS = zip(*SURNAMES, strict=True)
MALE_CHARS = "伟强磊军勇杰涛斌明超刚平辉鹏华飞鑫波宇浩凯健俊帆晨阳建国志峰文亮龙海东"
FEMALE_CHARS = "芳娜敏静丽艳娟霞秀玲燕红梅琳雪婷颖慧佳倩晶月兰凤萍琴云洁莉璐欣怡"
NEUTRAL_CHARS = "小子晓嘉宏德春永新立明金玉春秋思雨安"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class Person:
    name: str
    gender: str
    birth_date: date
    id_number: str
    phone: str


def name(rng: random.Random, gender: str) -> str:
    surname = rng.choices(_SURNAMES, weights=_SURNAME_WEIGHTS)[0]
    chars = MALE_CHARS if gender == "male" else FEMALE_CHARS
    if rng.random() < 0.3:
        return surname + rng.choice(chars)
    first = rng.choice(NEUTRAL_CHARS) if rng.random() < 0.4 else rng.choice(chars)
    return surname + first + rng.choice(chars)


def id_number(rng: random.Random, region: str, birth: date, gender: str) -> str:
    """An 18-digit resident identity number (GB 11643) with a valid check digit."""
    sequence = rng.randrange(0, 500) * 2 + (1 if gender == "male" else 0)
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


def id_number_is_valid(number: str) -> bool:
    body, check = number[:17], number[17].upper()
    total = sum(int(digit) * weight for digit, weight in zip(body, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == check


def phone(rng: random.Random) -> str:
    prefix = rng.choice(("133", "135", "136", "138", "139", "150", "151", "158", "177", "188"))
    return f"{prefix}{rng.randrange(10**8):08d}"


def person(
    rng: random.Random, region: str, *, on: date, min_age: int, max_age: int, male: float = 0.5
) -> Person:
    gender = "male" if rng.random() < male else "female"
    age_days = rng.randrange(min_age * 365 + 1, max_age * 365)
    birth = on - timedelta(days=age_days)
    return Person(
        name=name(rng, gender),
        gender=gender,
        birth_date=birth,
        id_number=id_number(rng, region, birth, gender),
        phone=phone(rng),
    )


def address(rng: random.Random, place: str, *, rural: bool) -> str:
    """A street address (or a village one) under `place`, e.g. 江苏省南京市玄武区梅园新村街道."""
    if rural:
        return f"{place}{rng.choice(('前进', '红旗', '新民', '永丰', '光明', '联合'))}村{rng.randint(1, 12)}组{rng.randint(1, 60)}号"
    return f"{place}{rng.choice(ROADS)}{rng.randint(1, 300)}号{rng.randint(1, 30)}栋{rng.randint(101, 2802)}室"


def person_data(
    p: Person, household: str, residence: str, *, with_phone: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": p.name,
        "id_number": p.id_number,
        "gender": p.gender,
        "birth_date": p.birth_date.isoformat(),
        "household_address": household,
        "residence_address": residence,
    }
    if with_phone:
        data["phone"] = p.phone
    return data
