"""Rules that are data: time limits, categories, windows, eligibility bases.

One table, read by the domain and served by `/event-types`. Change a figure here and
every rule and the catalogue follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MediationTimeLimits:
    """A class of dispute time limits, in calendar days from registration."""

    name: str
    ordinary_days: int
    major_days: int
    max_months: int
    note: str


# The seed's 大調解 limits (10 / 20 days, two months at most) are the default class;
# court-referred mediation (委派調解) has 30 days.
MEDIATION_TIME_LIMITS: dict[str, MediationTimeLimits] = {
    "default": MediationTimeLimits(
        "default", 10, 20, 2, "大調解: ordinary local 10 days, major or cross-region 20 days"
    ),
    "court_referred": MediationTimeLimits(
        "court_referred", 30, 30, 2, "court-referred mediation (委派調解): 30 days"
    ),
}

# 特殊情況: a dispute's deadline is extended once, by a supervisor at this level or above.
DEADLINE_EXTENSION_LEVEL = "county"
DEADLINE_EXTENSIONS_ALLOWED = 1

# Which source puts a dispute in which time-limit class.
TIME_LIMIT_CLASS_BY_SOURCE: dict[str, str] = {"court": "court_referred"}

DISPUTE_CATEGORIES: dict[str, str] = {
    "marriage_family": "婚姻家庭",
    "neighbourhood": "鄰里糾紛",
    "land": "土地承包與征地",
    "demolition": "征地拆遷",
    "labour": "勞動爭議",
    "wage_arrears": "拖欠工資",
    "contract": "合同糾紛",
    "property_management": "物業糾紛",
    "medical": "醫療糾紛",
    "traffic": "道路交通事故",
    "environment": "環境污染",
    "consumer": "消費糾紛",
    "damages": "損害賠償",
    "enterprise_restructuring": "企業改制",
    "other": "其他",
}

DISPUTE_SOURCES = (
    "walk_in",
    "screening",
    "referral",
    "petition",
    "court",
    "police",
    "procuratorate",
)
DISPUTE_SCOPES = ("local", "cross_region")
DISPUTE_COMPLEXITIES = ("ordinary", "major")
EARLY_WARNING_RISKS = ("escalation", "collective_incident", "criminal_risk")
AGREEMENT_FORMS = ("written", "oral")
FAILURE_REFERRALS = ("litigation", "arbitration", "administrative", "none")

# 民轉刑: the bodies a dispute turned criminal is referred to, or taken up by.
CRIMINAL_REFERRAL_BODIES = ("police", "procuratorate", "court")
# 民轉刑: the grade of the criminal case, as the body that took it up graded it: the seed
# counts the major ones ("因矛盾糾紛引發的'民轉刑'重大刑事案件數量處於最低水平").
CRIMINAL_TURN_GRADES = ("major", "ordinary")  # 重大刑事案件 / 一般刑事案件

# people_involved at or above this marks a collective (群體性) dispute.
COLLECTIVE_DISPUTE_THRESHOLD = 5
# 人民調解法 §33: judicial confirmation within 30 days of the agreement taking effect.
JUDICIAL_CONFIRMATION_WINDOW_DAYS = 30
# 督查回訪: a closed dispute is visited again within this many days of its close.
FOLLOW_UP_DAYS = 30

# --- 刑釋解教人員安置幫教 -------------------------------------------------------
# The prison notifies the community at least this many days before release.
RELEASE_NOTICE_MIN_DAYS = 30
# Released but not received within this window is a late handover (漏管 risk).
HANDOVER_WINDOW_DAYS = 7
# AssistanceEnded with period_completed not before this long after release.
ASSISTANCE_PERIOD_YEARS = 5
RELEASE_TYPES = ("sentence_completed", "re_education_ended")
RECEPTION_METHODS = ("escorted", "self_reported")
ASSISTANCE_CATEGORIES = ("key", "ordinary")
RISK_LEVELS = ("high", "medium", "low")
ASSISTANCE_ACTIVITY_KINDS = ("visit", "talk", "education", "help")
PLACEMENTS = (
    "employment",
    "self_employment",
    "transitional_base",
    "social_relief",
    "family",
    "education",
)
ASSISTANCE_END_REASONS = ("period_completed", "death", "other")
# 必接必送: people of these categories are received escorted, never self-reported.
ESCORTED_CATEGORIES = ("key",)
# Placements that name the transitional base (過渡性安置基地) holding the person.
PLACEMENTS_WITH_BASE = ("transitional_base",)
GENDERS = ("male", "female")

# --- 社區矯正 ----------------------------------------------------------------
CORRECTION_TYPES = ("control", "probation", "parole", "temporary_outside_execution")
CORRECTION_TYPE_NAMES = {
    "control": "管制",
    "probation": "緩刑",
    "parole": "假釋",
    "temporary_outside_execution": "暫予監外執行",
}
# 社區矯正法 §17 and the seed's scope: who may be corrected in the province.
ELIGIBILITY_BASES: dict[str, str] = {
    "household": "household_address",
    "habitual_residence": "residence_address",
    "settled_non_local": "residence_address",
}
# Addresses name their province first.
PROVINCE_PREFIXES = ("江蘇省", "江苏省")
# 社區矯正法 §21: report in within 10 days of the decision taking effect.
REPORT_IN_DAYS = 10
SUPERVISION_LEVELS = ("strict", "ordinary", "lenient")
# Leave (請假外出): township-level supervisors approve up to 7 days, county level longer,
# never more than 30 days a leave.
LEAVE_TOWNSHIP_MAX_DAYS = 7
LEAVE_MAX_DAYS = 30
# Electronic monitoring (電子定位): at most 3 months a grant, county-level supervisor.
ELECTRONIC_MONITORING_MAX_MONTHS = 3
# Revocation grounds the case's own events must bear out.
REVOCATION_WARNINGS_NEEDED = 2
ABSCONDING_DAYS_FOR_REVOCATION = 30
SANCTION_RUNGS = ("reprimand", "warning", "public_security_penalty", "revocation")
# RevocationProposed names one of these grounds; each must be borne out by the case's events.
REVOCATION_GROUNDS: dict[str, str] = {
    "repeated_warnings": "經警告仍不改正: warned (revocation_warnings_needed times)",
    "absconding": "脫離監管超過一個月: absconded longer than absconding_days_for_revocation",
    "after_public_security_penalty": "受到治安管理處罰後仍不改正: a public security penalty came first",
    "reoffending": "重新犯罪: a new offence is on the case",
}
# 管制 is not revoked (its violations meet 治安管理處罰); the others are revoked or committed.
REVOCABLE_CORRECTION_TYPES = ("probation", "parole", "temporary_outside_execution")
# Minors (under 18 at the offence) are corrected apart; their identity is confidential.
ADULT_AGE = 18
TERM_ENDING_SOON_DAYS = 30

# --- 犯罪記錄封存 (sealing of minors' records) ------------------------------------
# 刑事訴訟法 §286, 預防未成年人犯罪法 §59: a minor's record, once sealed, is provided to no
# one, save for a judicial organ's case work or a query an organ makes under state rules.
# The grounds an opening names (both the auditor's request and the supervisor's approval).
SEAL_OPENING_GROUNDS: dict[str, str] = {
    "judicial_case_handling": "司法機關為辦案需要查詢 (刑事訴訟法 §286 ¶2)",
    "statutory_query": "有關單位根據國家規定進行查詢 (刑事訴訟法 §286 ¶2)",
}
# The legal basis a seal records: why the record is sealed.
SEAL_LEGAL_BASIS = "刑事訴訟法 §286; 預防未成年人犯罪法 §59; 社區矯正法 §54"
# How long an approved opening lasts unless closed earlier (CASETRAIL_SEAL_OPENING_HOURS);
# a request not approved within as long lapses.
SEAL_OPENING_HOURS = 72


def catalogue() -> dict[str, Any]:
    """The rule table as JSON, for `/event-types`."""
    return {
        "mediation_time_limits": {
            k: {
                "ordinary_days": v.ordinary_days,
                "major_days": v.major_days,
                "max_months": v.max_months,
                "note": v.note,
            }
            for k, v in MEDIATION_TIME_LIMITS.items()
        },
        "time_limit_class_by_source": TIME_LIMIT_CLASS_BY_SOURCE,
        "deadline_extension_level": DEADLINE_EXTENSION_LEVEL,
        "deadline_extensions_allowed": DEADLINE_EXTENSIONS_ALLOWED,
        "dispute_categories": DISPUTE_CATEGORIES,
        "collective_dispute_threshold": COLLECTIVE_DISPUTE_THRESHOLD,
        "judicial_confirmation_window_days": JUDICIAL_CONFIRMATION_WINDOW_DAYS,
        "follow_up_days": FOLLOW_UP_DAYS,
        "release_notice_min_days": RELEASE_NOTICE_MIN_DAYS,
        "handover_window_days": HANDOVER_WINDOW_DAYS,
        "assistance_period_years": ASSISTANCE_PERIOD_YEARS,
        "escorted_categories": ESCORTED_CATEGORIES,
        "placements_with_base": PLACEMENTS_WITH_BASE,
        "eligibility_bases": ELIGIBILITY_BASES,
        "province_prefixes": PROVINCE_PREFIXES,
        "report_in_days": REPORT_IN_DAYS,
        "leave_township_max_days": LEAVE_TOWNSHIP_MAX_DAYS,
        "leave_max_days": LEAVE_MAX_DAYS,
        "electronic_monitoring_max_months": ELECTRONIC_MONITORING_MAX_MONTHS,
        "revocation_warnings_needed": REVOCATION_WARNINGS_NEEDED,
        "absconding_days_for_revocation": ABSCONDING_DAYS_FOR_REVOCATION,
        "adult_age": ADULT_AGE,
        "revocation_grounds": REVOCATION_GROUNDS,
        "revocable_correction_types": REVOCABLE_CORRECTION_TYPES,
        "term_ending_soon_days": TERM_ENDING_SOON_DAYS,
        "seal_opening_grounds": SEAL_OPENING_GROUNDS,
        "seal_legal_basis": SEAL_LEGAL_BASIS,
        "seal_opening_hours": SEAL_OPENING_HOURS,
    }
