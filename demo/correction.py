"""Community correction (社區矯正): six years of subjects, each with an outcome drawn with the
seed's shares as probabilities: of 85,673 received, 40,153 current, 43,641 released on
schedule, 98 re-offended (1.14‰); the rest committed (收監執行) or died."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from demo import divisions, people, texts
from demo.plan import HISTORY_END, LONG_HISTORY_FROM, SEED, CasePlan, day_between, pick
from demo.province import Province
from demo.timeline import Timeline
from domain import rules

TYPES: dict[str, float] = {
    "probation": 78,
    "parole": 12,
    "temporary_outside_execution": 7,
    "control": 3,
}
ELIGIBILITY: dict[str, tuple[float, str]] = {
    "household": (85, "户口簿及户籍证明"),
    "habitual_residence": (11, "居住证及连续居住一年以上的证明"),
    "settled_non_local": (4, "本人及家庭成员在江苏定居的房产证明、劳动合同"),
}
OTHER_PROVINCES = ("安徽省合肥市", "山东省临沂市", "河南省商丘市", "浙江省温州市")
DIED = 0.003
LEAVE = 0.04
REPRIMAND = 0.03
MOVED = 0.015
MINOR = 0.015


def outcome_weights() -> dict[str, float]:
    """Each subject's outcome and its probability, from the seed's counts."""
    received = SEED["correction_received"]
    weights = {
        "completed": SEED["correction_completed"] / received,
        "current": SEED["correction_current"] / received,
        "reoffended": SEED["correction_reoffended"] / received,
        "died": DIED,
    }
    weights["committed"] = 1 - sum(weights.values())
    return weights


def plan_correction(rng: random.Random, province: Province, count: int) -> list[CasePlan]:
    weights = outcome_weights()
    return [_build(rng, province, pick(rng, weights)) for _ in range(count)]


def _term(rng: random.Random, outcome: str) -> tuple[date, date]:
    """Term start and end: finished before the history ends, or running past it."""
    length = timedelta(days=rng.choice((182, 365, 365, 548, 730, 730, 1095, 1460, 1825)))
    if outcome == "completed":
        end = day_between(
            rng, LONG_HISTORY_FROM + timedelta(days=182), HISTORY_END - timedelta(days=1)
        )
        start = max(end - length, LONG_HISTORY_FROM)
        return start, end
    if outcome == "current":
        start = day_between(
            rng, max(LONG_HISTORY_FROM, HISTORY_END - length), HISTORY_END - timedelta(days=15)
        )
        return start, start + length
    start = day_between(rng, LONG_HISTORY_FROM, HISTORY_END - timedelta(days=200))
    return start, start + length


def _build(rng: random.Random, province: Province, outcome: str) -> CasePlan:
    township = province.pick_township(rng)
    county = township[:6]
    start, end = _term(rng, outcome)
    type_ = pick(rng, TYPES)
    if outcome in ("reoffended", "committed") and type_ == "control":
        type_ = "probation"  # 管制 is not revoked; these cases end in 收監執行
    minor = rng.random() < MINOR
    offence_on = start - timedelta(days=rng.randint(60, 300))
    person = people.person(
        rng, county, on=offence_on, min_age=16 if minor else 18, max_age=18 if minor else 70,
        male=0.85,
    )  # fmt: skip
    basis = pick(rng, {k: v[0] for k, v in ELIGIBILITY.items()})
    local = people.address(rng, province.full_name(township), rural=province.is_rural(township))
    household = (
        local if basis == "household" else
        f"{rng.choice(OTHER_PROVINCES)}{rng.choice(divisions.ROADS)}{rng.randint(1, 200)}号"
    )  # fmt: skip
    authority = (
        f"{province.names[county[:4] + '00']}中级人民法院"
        if type_ in ("parole", "temporary_outside_execution")
        else f"{province.names[county]}人民法院"
    )
    plan = CasePlan("correction", township, facts={"outcome": outcome, "minor": minor})
    t = Timeline(plan)
    received = start + timedelta(days=rng.choice((0, 0, 1, 2, 3)))
    t.at(
        received,
        "CorrectionSubjectReceived",
        {
            "person": people.person_data(person, household, local),
            "correction_type": type_,
            "deciding_authority": authority,
            "decision_effective_on": start.isoformat(),
            "offence_date": offence_on.isoformat(),
            "term_start": start.isoformat(),
            "term_end": end.isoformat(),
            "eligibility": {"basis": basis, "evidence": ELIGIBILITY[basis][1]},
        },
        order=0,
    )
    late = rng.random() < 0.03
    reported = start + timedelta(days=rng.randint(11, 20) if late else rng.randint(1, 9))
    # Recorded the day it happens, or, before the case reached the unit, once it did.
    reported = max(reported, received)
    t.at(reported, "SubjectReportedIn", {"reported_on": reported.isoformat()}, order=10)
    team = _team(rng, person.gender)
    t.at(reported, "CorrectionTeamFormed", team, order=11)
    t.at(
        reported,
        "SupervisionLevelSet",
        {"level": pick(rng, {"strict": 25, "ordinary": 60, "lenient": 15})},
        order=12,
    )
    stop = min(end, HISTORY_END)
    ending: date | None = None
    if outcome in ("reoffended", "committed", "died"):
        ending = day_between(
            rng, reported + timedelta(days=60), min(end, HISTORY_END) - timedelta(days=1)
        )
        stop = ending
    span = max(1, (stop - reported).days)
    for i in range(min(6, 1 + span // 90)):
        on = reported + timedelta(days=(i + 1) * span // 7)
        t.at(on, "CheckInRecorded", {"on": on.isoformat(), "notes": "按时报告，思想稳定"}, order=20)
    for _ in range(rng.randint(1, 2)):
        on = day_between(rng, reported, stop)
        t.at(
            on,
            "EducationSessionRecorded",
            {"on": on.isoformat(), "notes": "集中法治教育学习"},
            order=21,
        )
    for _ in range(rng.randint(0, 2)):
        on = day_between(rng, reported, stop)
        t.at(
            on,
            "CommunityServiceRecorded",
            {
                "on": on.isoformat(),
                "notes": "参加社区公益劳动",
                "hours": float(rng.choice((2, 4, 4, 8))),
            },
            order=22,
        )
    if rng.random() < 0.3:
        on = day_between(rng, reported, stop)
        t.at(
            on,
            "CounsellingSessionRecorded",
            {"on": on.isoformat(), "notes": "心理咨询师开展心理疏导"},
            order=23,
        )
    if rng.random() < LEAVE and span > 40:
        asked = day_between(rng, reported + timedelta(days=5), stop - timedelta(days=20))
        leave = {
            "destination": f"江苏省{rng.choice([n for n, _ in divisions.CITIES.values()])}",
            "from": (asked + timedelta(days=3)).isoformat(),
            "to": (asked + timedelta(days=3 + rng.randint(1, 6))).isoformat(),
        }
        t.at(asked, "LeaveRequested", leave, order=30)
        t.at(asked, "LeaveApproved", leave, order=31, role="supervisor")
        back = date.fromisoformat(leave["to"])
        t.at(back, "LeaveReturned", {**leave, "returned_on": back.isoformat()}, order=32)
    if rng.random() < REPRIMAND:
        on = day_between(rng, reported, stop)
        t.at(
            on,
            "ReprimandIssued",
            {"violation": "未按规定时间报告", "on": on.isoformat()},
            order=40,
            role="supervisor",
        )
    if rng.random() < MOVED and span > 30:
        on = day_between(rng, reported + timedelta(days=10), stop - timedelta(days=1))
        # 遷居: proposed by the supervisor here, accepted by the new residence's supervisor.
        to_unit = province.other_township(rng, township)
        t.at(
            on,
            "TransferProposed",
            {"to_unit": to_unit, "reason": f"经批准迁居（{on.isoformat()}）"},
            order=60,
            role="supervisor",
        )
        t.at(
            on, "TransferAccepted", {"to_unit": to_unit}, order=61, role="supervisor", unit=to_unit
        )
    if outcome == "completed":
        t.at(
            end,
            "CorrectionCompleted",
            {
                "on": end.isoformat(),
                "certificate_no": f"解矫字〔{end.year}〕第{county}{rng.randint(1, 9999):04d}号",
            },
            order=99,
        )
    elif outcome == "died" and ending is not None:
        t.at(ending, "SubjectDied", {"on": ending.isoformat()}, order=99)
    elif ending is not None:
        _committed(rng, t, outcome, ending, county)
    return t.lay_down(rng)


def _committed(rng: random.Random, t: Timeline, outcome: str, on: date, county: str) -> None:
    """收監執行: after a new offence, or after two warnings went unheeded."""
    if outcome == "reoffended":
        offence = pick(rng, dict(texts.OFFENCES))
        t.at(on, "Reoffended", {"offence": offence, "on": on.isoformat()}, order=90)
        grounds = {"basis": "reoffending", "facts": f"矫正期间因涉嫌{offence}被刑事拘留"}
    else:
        # The ladder in order: a reprimand before the warnings (训诫 → 警告).
        reprimanded = on - timedelta(days=30)
        t.at(
            reprimanded,
            "ReprimandIssued",
            {"violation": "未按规定时间报告", "on": reprimanded.isoformat()},
            order=89,
            role="supervisor",
        )
        for i, violation in enumerate(("未经批准外出", "多次未按规定报告")):
            warned = on - timedelta(days=30 - 10 * i)
            t.at(
                warned,
                "WarningIssued",
                {"violation": violation, "on": warned.isoformat()},
                order=90,
                role="supervisor",
            )
        grounds = {"basis": "repeated_warnings", "facts": "经两次警告仍不改正"}
    t.at(on, "RevocationProposed", {"grounds": grounds}, order=95, role="supervisor", unit=county)
    decided = on + timedelta(days=rng.randint(7, 30))
    if decided < HISTORY_END:
        t.at(
            decided,
            "SubjectCommitted",
            {
                "on": decided.isoformat(),
                "decision": "人民法院裁定撤销缓刑（假释），收监执行",
                "decision_no": f"（{decided.year}）苏{county}刑更{len(t.todo):03d}号",
            },
            order=99,
            role="supervisor",
            unit=county,
        )


def _team(rng: random.Random, gender: str) -> dict[str, Any]:
    def member(g: str | None = None) -> dict[str, str]:
        g = g or rng.choice(rules.GENDERS)
        return {"name": people.name(rng, g), "gender": g}

    # 社區矯正法 §25: a woman on the team of a female subject.
    return {
        "officer": member(),
        "social_worker": member("female" if gender == "female" else None),
        "volunteers": [member() for _ in range(rng.randint(1, 3))],
    }
