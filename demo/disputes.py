"""Disputes (大調解): one year of cases, each mediation succeeding with the seed's rate as
its probability, and some turning criminal afterwards (民轉刑) with the demo's own
probabilities (the seed gives no number for it)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from demo import people, texts
from demo.plan import (
    DISPUTES_FROM,
    HISTORY_END,
    SEED,
    CasePlan,
    day_between,
    pick,
)
from demo.province import Province
from domain import rules
from domain.clock import cst_date

REFUSED = 0.012
WITHDRAWN = 0.013
RETURNED = 0.025
EXTENDED = 0.012
COLLECTIVE = 0.03

# 民轉刑. The seed names the figure but gives no value ("因矛盾糾紛引發的'民轉刑'重大刑事案件
# 數量處於最低水平"): these probabilities are the demo's assumptions, inputs beside the seed's.
# A dispute turns criminal within TURN_WITHIN_DAYS of its outcome with a probability by how
# the outcome left it: mediation left it unsettled (failed, or a party refused), or not
# (an agreement, a withdrawal). A turn is a major criminal case (重大) with TURNED_MAJOR.
TURNED_CRIMINAL = {
    "mediation_failed": 0.03,
    "refused": 0.03,
    "agreement_reached": 0.001,
    "withdrawn": 0.001,
}
TURNED_MAJOR = 0.3
TURN_WITHIN_DAYS = 30
OUTCOME_EVENTS = ("AgreementReached", "MediationFailed", "MediationRefused", "DisputeWithdrawn")
REFERRAL_BODIES = {"police": 80.0, "procuratorate": 10.0, "court": 10.0}
REFERRAL_NAMES = {"police": "公安局", "procuratorate": "人民检察院", "court": "人民法院"}


def plan_disputes(
    rng: random.Random,
    province: Province,
    count: int,
    start: date = DISPUTES_FROM,
    turns: random.Random | None = None,
) -> list[CasePlan]:
    """`count` disputes; with `turns` (a generator of its own, so that the rest of each case
    is the same with or without it), some turn criminal after their outcome."""
    plans = [_build(rng, province, _skeleton(rng, province, start)) for _ in range(count)]
    if turns is not None:
        for plan in plans:
            _turn_criminal(turns, province, plan)
    return plans


def _turn_criminal(rng: random.Random, province: Province, plan: CasePlan) -> None:
    """民轉刑: drawn for every dispute with an outcome, by that outcome (TURNED_CRIMINAL);
    referred within TURN_WITHIN_DAYS of the outcome and recorded that day by a supervisor of
    the county (the centre or above). A turn after the history's end is not recorded."""
    outcome = next((step for step in plan.steps if step.type in OUTCOME_EVENTS), None)
    turned = rng.random() < TURNED_CRIMINAL[plan.facts["outcome"]]
    major = rng.random() < TURNED_MAJOR
    if outcome is None or not turned:
        return
    referred_on = cst_date(outcome.at) + timedelta(days=rng.randint(1, TURN_WITHIN_DAYS))
    body = pick(rng, REFERRAL_BODIES)
    county = plan.unit[:6]
    plan.add(
        rng,
        referred_on,
        "DisputeTurnedCriminal",
        {
            "referred_on": referred_on.isoformat(),
            "receiving_body": body,
            "receiving_unit": f"{province.names[county]}{REFERRAL_NAMES[body]}",
            "grade": "major" if major else "ordinary",
            "notes": "纠纷激化引发刑事案件，已移送",
        },
        county,
        role="supervisor",
    )


def _skeleton(rng: random.Random, province: Province, start: date) -> dict[str, Any]:
    township = province.pick_township(rng)
    source = pick(rng, texts.DISPUTE_SOURCE_WEIGHTS)
    scope = "cross_region" if rng.random() < 0.07 else "local"
    complexity = "major" if rng.random() < 0.12 else "ordinary"
    # Major and cross-region disputes go to the county's 調處中心.
    unit = township[:6] if complexity == "major" or scope == "cross_region" else township
    limits = rules.MEDIATION_TIME_LIMITS[rules.TIME_LIMIT_CLASS_BY_SOURCE.get(source, "default")]
    limit = limits.major_days if unit != township else limits.ordinary_days
    registered = day_between(rng, start, HISTORY_END)
    roll = rng.random()
    path = (
        "refused" if roll < REFUSED else "withdrawn" if roll < REFUSED + WITHDRAWN else "mediated"
    )
    extended = complexity == "major" and rng.random() < EXTENDED / 0.12
    if extended:
        limit = rng.randint(limit + 5, 55)
    on_time = rng.random() < SEED["on_time_rate"]
    days = rng.randint(1, max(1, limit - 1)) if on_time else rng.randint(limit + 1, limit + 15)
    return {
        "township": township,
        "unit": unit,
        "source": source,
        "scope": scope,
        "complexity": complexity,
        "registered": registered,
        "path": path,
        "limit": limit,
        "extended": extended,
        "outcome_on": registered + timedelta(days=days),
        "on_time": on_time,
        # Each mediation reaches an agreement with the seed's probability: the success rate
        # emerges, with the spread of a binomial count (demo.spread).
        "success": rng.random() < SEED["mediation_success_rate"],
    }


def _build(rng: random.Random, province: Province, s: dict[str, Any]) -> CasePlan:
    unit, township, county = s["unit"], s["township"], s["township"][:6]
    category = pick(rng, texts.DISPUTE_CATEGORY_WEIGHTS)
    plan = CasePlan("dispute", unit, facts={"category": category})
    day0: date = s["registered"]
    collective = rng.random() < COLLECTIVE or category == "enterprise_restructuring"
    plan.add(
        rng,
        day0,
        "DisputeRegistered",
        {
            "center_unit": unit,
            "category": category,
            "summary": rng.choice(texts.DISPUTE_SUMMARIES[category]),
            "parties": _parties(rng, province, township, category, collective),
            "scope": s["scope"],
            "source": s["source"],
            "people_involved": rng.randint(5, 80) if collective else rng.choice((2, 2, 2, 3, 4)),
        },
        unit,
    )
    plan.add(
        rng,
        day0 + timedelta(days=rng.choice((0, 0, 1))),
        "DisputeTriaged",
        {"complexity": s["complexity"], "responsible_unit": unit},
        unit,
    )
    mediators = [people.name(rng, rng.choice(("male", "female"))) for _ in range(rng.randint(1, 2))]
    body = _handling_body(province, unit, category)
    assign_day = plan.steps[-1].at.date()
    assignment = {"handling_body": body, "assigned_unit": unit, "mediators": mediators}
    if s["path"] == "refused":
        refused_on = assign_day + timedelta(days=rng.randint(0, 3))
        plan.add(
            rng,
            refused_on,
            "MediationRefused",
            {"party": "被申请人", "reason": rng.choice(texts.REFUSAL_REASONS)},
            unit,
        )
        _close(rng, plan, refused_on, "refused", unit)
        plan.facts["outcome"] = "refused"
        return plan
    plan.add(rng, assign_day, "DisputeAssigned", assignment, unit)
    if s["extended"]:
        new_deadline = s["registered"] + timedelta(days=s["limit"])
        plan.add(
            rng,
            assign_day + timedelta(days=2),
            "DeadlineExtended",
            {"new_deadline": new_deadline.isoformat(), "reason": "案情重大复杂，需延长调处期限"},
            county,
            role="supervisor",
        )
    outcome_on: date = s["outcome_on"]
    if s["path"] == "withdrawn":
        plan.add(
            rng,
            outcome_on,
            "DisputeWithdrawn",
            {"reason": rng.choice(texts.WITHDRAWAL_REASONS)},
            unit,
        )
        _close(rng, plan, outcome_on, "withdrawn", unit)
        plan.facts["outcome"] = "withdrawn"
        return plan
    sessions = rng.choice((1, 1, 1, 2, 2, 3))
    span = max(0, (outcome_on - assign_day).days)
    session_days = sorted(
        assign_day + timedelta(days=rng.randint(0, span)) for _ in range(sessions)
    )
    returned = rng.random() < RETURNED
    for i, held_on in enumerate(session_days):
        plan.add(
            rng,
            held_on,
            "MediationSessionHeld",
            {
                "held_on": held_on.isoformat(),
                "mediators": mediators,
                "attendees": ["申请人", "被申请人"],
                "notes": rng.choice(texts.SESSION_NOTES),
            },
            unit,
        )
        if i == 0 and returned:
            plan.add(
                rng, held_on, "DisputeReturned", {"reason": rng.choice(texts.RETURN_REASONS)}, unit
            )
            plan.add(
                rng,
                held_on,
                "JointHandlingConvened",
                {"departments": rng.sample(texts.DEPARTMENTS, rng.randint(2, 3))},
                unit,
            )
            plan.add(rng, held_on, "DisputeAssigned", assignment, unit)
            plan.add(
                rng,
                held_on,
                "MediationSessionHeld",
                {
                    "held_on": held_on.isoformat(),
                    "mediators": mediators,
                    "attendees": ["申请人", "被申请人", "会办部门"],
                    "notes": "会办后再次组织调解",
                },
                unit,
            )
        if i == 0 and rng.random() < 0.02:
            plan.add(
                rng,
                held_on,
                "SupervisionOrdered",
                {"instructions": rng.choice(texts.SUPERVISION_INSTRUCTIONS)},
                county,
                role="supervisor",
            )
        if i == 0 and (collective or rng.random() < 0.01):
            plan.add(
                rng,
                held_on,
                "EarlyWarningRaised",
                {
                    "risk": "collective_incident" if collective else "escalation",
                    "notes": rng.choice(texts.WARNING_NOTES),
                },
                unit,
            )
    if rng.random() < 0.01:
        plan.add(
            rng,
            session_days[-1],
            "HearingHeld",
            {"held_on": session_days[-1].isoformat(), "notes": "组织听证，听取各方意见"},
            unit,
        )
    success: bool = s["success"]
    if success:
        plan.add(
            rng,
            outcome_on,
            "AgreementReached",
            {
                "terms": rng.choice(texts.AGREEMENT_TERMS),
                "form": "written" if rng.random() < 0.85 else "oral",
                "performance_due": (outcome_on + timedelta(days=rng.randint(7, 60))).isoformat(),
            },
            unit,
        )
        outcome = "agreement_reached"
    else:
        plan.add(
            rng,
            outcome_on,
            "MediationFailed",
            {
                "reason": rng.choice(texts.FAILURE_REASONS),
                "referral": pick(
                    rng, {"litigation": 60, "arbitration": 15, "administrative": 10, "none": 15}
                ),
            },
            unit,
        )
        outcome = "mediation_failed"
    closed_on = _close(rng, plan, outcome_on, outcome, unit)
    if success and rng.random() < 0.1:
        requested = outcome_on + timedelta(days=rng.randint(1, 25))
        plan.add(
            rng,
            requested,
            "JudicialConfirmationRequested",
            {"court": f"{province.names[county]}人民法院", "requested_on": requested.isoformat()},
            unit,
        )
    if rng.random() < 0.25:
        visited = closed_on + timedelta(days=rng.randint(7, 40))
        plan.add(
            rng,
            visited,
            "FollowUpVisited",
            {
                "visited_on": visited.isoformat(),
                "satisfaction": rng.choice((5, 5, 5, 4, 4, 3)),
                "agreement_performed": success and rng.random() < 0.97,
            },
            unit,
        )
    plan.facts.update(outcome=outcome, on_time=s["on_time"])
    return plan


def _close(rng: random.Random, plan: CasePlan, outcome_on: date, outcome: str, unit: str) -> date:
    closed_on = outcome_on
    plan.add(
        rng, closed_on, "DisputeClosed", {"result_summary": texts.RESULT_SUMMARIES[outcome]}, unit
    )
    return closed_on


def _parties(
    rng: random.Random, province: Province, township: str, category: str, collective: bool
) -> list[dict[str, Any]]:
    place = province.full_name(township)
    applicants = rng.randint(2, 4) if collective else 1
    parties = []
    for _ in range(applicants):
        p = people.person(rng, township[:6], on=HISTORY_END, min_age=20, max_age=75)
        parties.append({"name": p.name, "role": "applicant", "phone": p.phone})
    if category in ("labour", "wage_arrears", "property_management", "enterprise_restructuring"):
        company = f"{place[-6:-2]}{rng.choice(('建筑工程', '物业管理', '机械制造', '纺织', '电子科技'))}有限公司"
        parties.append({"name": company, "role": "respondent"})
    else:
        p = people.person(rng, township[:6], on=HISTORY_END, min_age=20, max_age=75)
        parties.append({"name": p.name, "role": "respondent", "id_number": p.id_number})
    return parties


def _handling_body(province: Province, unit: str, category: str) -> str:
    name = province.names[unit]
    if category == "medical":
        return f"{province.names[unit[:4] + '00']}医患纠纷人民调解委员会"
    if category == "traffic" and len(unit) == 6:
        return f"{name}道路交通事故损害赔偿人民调解委员会"
    if len(unit) == 6:
        return f"{name}社会矛盾纠纷调处服务中心"
    return f"{name}人民调解委员会"
