"""Resettlement and assistance (安置幫教): six years of releases, each person placed, assisted
and re-offending in a year with the seed's rates as probabilities; the rates emerge."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from demo import people, texts
from demo.plan import (
    HISTORY_END,
    LONG_HISTORY_FROM,
    SEED,
    CasePlan,
    day_between,
    pick,
)
from demo.province import Province
from demo.timeline import Timeline
from domain import rules
from domain.clock import add_years

LATE_NOTICE = 0.04
LATE_HANDOVER = 0.02
KEY = 0.15
DEATH = 0.002
CONTACT_LOST = 0.01
DELEGATED = 0.02
TRAINED = 0.2
# Share of placements at a transitional base (過渡性安置基地), stays of 2 to 18 months:
# about 2% of the people received are at a base at any moment, as 3,439 of 161,757.
AT_BASE = 0.16
PLACEMENTS: dict[str, float] = {
    "employment": 46,
    "self_employment": 14,
    "family": 14,
    "social_relief": 8,
    "education": 2,
}


def plan_resettlement(
    rng: random.Random, province: Province, count: int, bases: int
) -> list[CasePlan]:
    people_ = [_skeleton(rng, province) for _ in range(count)]
    received = [p for p in people_ if p["received"] is not None]
    _choose_reoffenders(rng, received)
    base_ids = _bases(rng, province, bases)
    return [_build(rng, province, p, base_ids) for p in people_]


def yearly_reoffending_denominator(
    persons: list[dict[str, Any]], year: int
) -> list[dict[str, Any]]:
    """People under assistance at the year's start plus those received during it."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    return [
        p
        for p in persons
        if p["received"] is not None
        and p["received"] <= end
        and (p["ended"] is None or p["ended"] >= start)
    ]


def _choose_reoffenders(rng: random.Random, received: list[dict[str, Any]]) -> None:
    """Each year, each person of the year's denominator who can still re-offend in it does so
    with the seed's yearly rate as probability (once in all: a re-offence ends the case)."""
    for year in range(LONG_HISTORY_FROM.year, HISTORY_END.year + 1):
        start, end = date(year, 1, 1), min(date(year, 12, 31), HISTORY_END - timedelta(days=1))
        denominator = yearly_reoffending_denominator(received, year)
        windows = []
        for p in denominator:
            first = max(start, p["received"] + timedelta(days=20))
            last = min(end, p["ended"] - timedelta(days=1)) if p["ended"] else end
            if p["reoffended"] is None and first <= last:
                windows.append((p, first, last))
        for p, first, last in windows:
            if rng.random() >= SEED["reoffending_rate_yearly"]:
                continue
            p["reoffended"] = day_between(rng, first, last)
            ended = p["reoffended"] + timedelta(days=rng.randint(10, 60))
            if ended < HISTORY_END and (p["ended"] is None or ended < p["ended"]):
                p["ended"], p["end_reason"] = ended, "other"


def _skeleton(rng: random.Random, province: Province) -> dict[str, Any]:
    released = day_between(rng, LONG_HISTORY_FROM, HISTORY_END - timedelta(days=1))
    late_notice = rng.random() < LATE_NOTICE
    notified = released - timedelta(days=rng.randint(3, 29) if late_notice else rng.randint(30, 90))
    if rng.random() < LATE_HANDOVER:
        received: date | None = released + timedelta(days=rng.randint(8, 30))
    else:
        received = released + timedelta(days=rng.choice((0, 0, 0, 1, 1, 2, 3, 5)))
    if received is not None and received > HISTORY_END:
        received = None
    ended, end_reason = None, None
    if received is not None:
        completes = add_years(released, rules.ASSISTANCE_PERIOD_YEARS)
        if completes <= HISTORY_END:
            ended, end_reason = completes, "period_completed"
        if rng.random() < DEATH:
            died = received + timedelta(days=rng.randint(30, 1500))
            if died < HISTORY_END and (ended is None or died < ended):
                ended, end_reason = died, "death"
    return {
        "township": province.pick_township(rng),
        "notified": notified,
        "released": released,
        "received": received,
        "ended": ended,
        "end_reason": end_reason,
        "placed": rng.random() < SEED["placement_rate"],
        "assisted": rng.random() < SEED["assistance_rate"],
        "reoffended": None,
        "key": rng.random() < KEY,
    }


# Places a demo base holds: the seed's 3,439 people at 695 bases are about 5 a base.
BASE_CAPACITY = 10


def base_register(province: Province, count: int) -> list[tuple[str, str]]:
    """(id, city) of every demo base, as the plan names them: an admin registers each at
    its city (so that it serves every township of the city) before anyone is placed."""
    by_city = _bases(random.Random(0), province, count)
    return [(base_id, city + "00") for city, ids in sorted(by_city.items()) for base_id in ids]


def _bases(rng: random.Random, province: Province, count: int) -> dict[str, list[str]]:
    """Transitional bases (過渡性安置基地) by city: `count` in all (the seed's 695 scaled),
    the first of them one a city; a person of a city with none is placed at another city's."""
    by_city: dict[str, list[str]] = {}
    counties = sorted({t[:6] for t in province.townships})
    for i in range(count):
        county = counties[i % len(counties)] if i >= 13 else _county_in_city(counties, i)
        base_id = f"JDJD-{county}-{i + 1:03d}"
        by_city.setdefault(county[:4], []).append(base_id)
    return by_city


def _county_in_city(counties: list[str], index: int) -> str:
    city = sorted({c[:4] for c in counties})[index]
    return next(c for c in counties if c.startswith(city))


def _build(
    rng: random.Random, province: Province, p: dict[str, Any], base_ids: dict[str, list[str]]
) -> CasePlan:
    township = p["township"]
    rural = province.is_rural(township)
    released: date = p["released"]
    person = people.person(rng, township[:6], on=released, min_age=19, max_age=65, male=0.9)
    home = people.address(rng, province.full_name(township), rural=rural)
    plan = CasePlan("resettlement", township, facts={"received": p["received"] is not None})
    t = Timeline(plan)
    offence = pick(rng, dict(texts.OFFENCES))
    t.at(
        p["notified"],
        "ReleaseNotified",
        {
            "person": people.person_data(person, home, home),
            "release_type": "sentence_completed" if rng.random() < 0.93 else "re_education_ended",
            "institution": rng.choice(texts.INSTITUTIONS),
            "expected_release_date": released.isoformat(),
            "offence": offence,
        },
        order=0,
    )
    if rng.random() < 0.6:
        provided = day_between(rng, p["notified"], released - timedelta(days=1))
        if provided < released:
            t.at(
                provided,
                "PreReleaseAssistanceProvided",
                {"provided_on": provided.isoformat(), "notes": "监所会见，开展提前帮教"},
                order=5,
            )
    t.at(released, "PersonReleased", {"released_on": released.isoformat()}, order=10)
    received: date | None = p["received"]
    if received is None:
        return t.lay_down(rng)
    key = p["key"]
    method = "escorted" if key or rng.random() < 0.35 else "self_reported"
    t.at(
        received,
        "PersonReceived",
        {"received_on": received.isoformat(), "method": method},
        order=20,
    )
    t.at(
        received,
        "AssistanceCategorised",
        {
            "category": "key" if key else "ordinary",
            "risk_level": rng.choice(("high", "medium"))
            if key
            else rng.choice(("medium", "low", "low")),
        },
        order=21,
    )
    stop: date = min(d for d in (p["ended"], p["reoffended"], HISTORY_END) if d is not None)
    if p["assisted"]:
        first = day_between(rng, received, min(received + timedelta(days=10), stop))
        days = [first] + [
            day_between(rng, received + timedelta(days=20), received + timedelta(days=540))
            for _ in range(rng.randint(0, 5))
        ]
        for held_on in sorted(d for d in days if d <= stop):
            kind = "visit" if held_on == first else rng.choice(rules.ASSISTANCE_ACTIVITY_KINDS)
            t.at(
                held_on,
                "AssistanceActivityRecorded",
                {"held_on": held_on.isoformat(), "kind": kind, "notes": texts.ACTIVITY_NOTES[kind]},
                order=30,
            )
    if rng.random() < TRAINED:
        done = day_between(rng, received, min(received + timedelta(days=365), stop))
        t.at(
            done,
            "SkillTrainingCompleted",
            {"course": rng.choice(texts.COURSES), "completed_on": done.isoformat()},
            order=35,
        )
    if p["placed"]:
        placed_on = day_between(rng, received, min(received + timedelta(days=60), stop))
        # A base serves its city's townships only (a placement names a base on the case's
        # branch): where the city has none (below 13 bases), the placement is another kind.
        bases = base_ids.get(township[:4], [])
        if rng.random() < AT_BASE and bases:
            t.at(
                placed_on,
                "PersonPlaced",
                {
                    "placement": "transitional_base",
                    "placed_on": placed_on.isoformat(),
                    "base_id": rng.choice(bases),
                },
                order=40,
            )
            left = placed_on + timedelta(days=rng.randint(60, 540))
            if left < stop:
                t.at(
                    left,
                    "PlacementEnded",
                    {"ended_on": left.isoformat(), "reason": texts.PLACEMENT_END_REASONS[0]},
                    order=41,
                )
                t.at(
                    left,
                    "PersonPlaced",
                    {"placement": "employment", "placed_on": left.isoformat()},
                    order=42,
                )
        else:
            t.at(
                placed_on,
                "PersonPlaced",
                {"placement": pick(rng, PLACEMENTS), "placed_on": placed_on.isoformat()},
                order=40,
            )
    if rng.random() < DELEGATED:
        delegated = day_between(rng, received + timedelta(days=30), received + timedelta(days=200))
        if delegated < stop:
            # 委托帮教: proposed here, accepted by the supervisor of the receiving unit.
            to_unit = province.other_township(rng, township)
            t.at(
                delegated,
                "TransferProposed",
                {"to_unit": to_unit, "reason": "本人迁居，委托居住地司法所帮教"},
                order=45,
                role="supervisor",
            )
            t.at(
                delegated,
                "TransferAccepted",
                {"to_unit": to_unit},
                order=46,
                role="supervisor",
                unit=to_unit,
            )
    if rng.random() < CONTACT_LOST:
        # After the last planned activity, so that no activity falls while contact is lost.
        busy = [step[0] for step in t.todo]
        lost = max(busy) + timedelta(days=rng.randint(1, 30))
        if lost < stop:
            t.at(
                lost,
                "ContactLost",
                {"on": lost.isoformat(), "notes": "多次联系未果，去向不明"},
                order=90,
            )
            restored = lost + timedelta(days=rng.randint(10, 90))
            if rng.random() < 0.6 and restored < stop:
                t.at(
                    restored,
                    "ContactRestored",
                    {"on": restored.isoformat(), "notes": "经家属协助恢复联系"},
                    order=91,
                )
    if p["reoffended"] is not None:
        on: date = p["reoffended"]
        t.at(
            on,
            "Reoffended",
            {"offence": pick(rng, dict(texts.OFFENCES)), "on": on.isoformat()},
            order=95,
        )
        plan.facts["reoffended_on"] = on
    if p["ended"] is not None:
        t.at(
            p["ended"],
            "AssistanceEnded",
            {"reason": p["end_reason"], "ended_on": p["ended"].isoformat()},
            order=99,
        )
    plan.facts.update(placed=p["placed"], assisted=p["assisted"])
    return t.lay_down(rng)
