"""Community correction — 社區矯正: people serving a sentence in the community.

Correction happens where the person lives (社區矯正法 §17). An officer, a full-time social
worker and volunteers (the seed's three teams) supervise and educate the subject; violations
climb a ladder, 訓誡 → 警告 → 治安管理處罰 → revocation, whose last rung the case's own
events must bear out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from marshmallow import ValidationError, fields, validate, validates_schema

from domain import rules
from domain.case import (
    CaseEvent,
    CaseOpened,
    Context,
    TransferAcceptedEvent,
    TransferDeclinedEvent,
    TransferProposedEvent,
    known_date,
    require_not_before,
    require_not_future,
    rule,
    statuses,
)
from domain.clock import add_days, add_months, age_on, cst_date
from domain.errors import NotPermitted, RuleViolation
from domain.registers import CORRECTION_STAFF, RegisterField
from domain.schemas import (
    DateRange,
    Person,
    StrictSchema,
    day,
    long_text,
    one_of,
    register_id,
    text,
    unit_code,
)
from domain.sealing import SEAL_EVENTS, Sealable
from domain.units import is_at_or_above

UNDER_CORRECTION = statuses("under_correction")
# `received`: waiting for the subject to report in; the ends are completed, committed, died.
OPEN = statuses("received", "under_correction")


# --- data schemas ---------------------------------------------------------------------


class Eligibility(StrictSchema):
    """Why the province corrects this person: a basis of rules.ELIGIBILITY_BASES and its proof."""

    basis = one_of(rules.ELIGIBILITY_BASES)
    evidence = long_text()


class CorrectionSubjectReceivedData(StrictSchema):
    person = fields.Nested(Person, required=True)
    correction_type = one_of(rules.CORRECTION_TYPES)
    deciding_authority = text()
    decision_effective_on = day()
    # Beyond DOMAIN.md's list: a minor is one under 18 at the offence, so the offence date is
    # part of the reception.
    offence_date = day()
    term_start = day()
    term_end = day()
    eligibility = fields.Nested(Eligibility, required=True)

    @validates_schema
    def _dates_in_order(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, str] = {}
        if data["term_end"] < data["term_start"]:
            errors["term_end"] = "'term_end' is before 'term_start'."
        if data["offence_date"] > data["decision_effective_on"]:
            errors["offence_date"] = "'offence_date' is after 'decision_effective_on'."
        elif data["offence_date"] < data["person"]["birth_date"]:
            errors["offence_date"] = "'offence_date' is before the person's birth date."
        if errors:
            raise ValidationError(errors)


class SubjectReportedInData(StrictSchema):
    reported_on = day()


class TeamMember(StrictSchema):
    name = text(max_length=100)
    gender = one_of(rules.GENDERS)


class StaffMember(TeamMember):
    # The registered correction staff member (domain.registers); optional, so that teams
    # recorded with names only stay valid.
    staff_id = register_id()


class CorrectionTeamFormedData(StrictSchema):
    officer = fields.Nested(StaffMember, required=True)
    social_worker = fields.Nested(StaffMember, required=True)
    volunteers = fields.List(
        fields.Nested(TeamMember), required=True, validate=validate.Length(min=1, max=50)
    )


class SupervisionLevelSetData(StrictSchema):
    level = one_of(rules.SUPERVISION_LEVELS)


class CorrectionActivityData(StrictSchema):
    """A check-in, an education or counselling session: its day and what happened."""

    on = day()
    notes = long_text()


class CommunityServiceRecordedData(CorrectionActivityData):
    hours = fields.Float(required=True, validate=validate.Range(min=0, max=24, min_inclusive=False))


class LeaveData(DateRange):
    """A leave (請假外出), named by its destination and its days, both included."""

    destination = text(max_length=300)
    from_ = fields.Date(required=True, data_key="from", attribute="from_")
    to = day()


class LeaveReturnedData(LeaveData):
    # The day the subject came back; the day it is recorded when absent.
    returned_on = day(required=False)


class ElectronicMonitoringStartedData(StrictSchema):
    grounds = long_text()
    until = day()


class ElectronicMonitoringEndedData(StrictSchema):
    # Why it ends; it ends the day it is recorded (DOMAIN.md's `until` belongs to the grant).
    grounds = long_text()


class ResidenceChangedData(StrictSchema):
    to_unit = unit_code()
    approved_on = day()


class SanctionData(StrictSchema):
    violation = long_text()
    on = day()


class PublicSecurityPenaltyProposedData(StrictSchema):
    grounds = long_text()


class RevocationGrounds(StrictSchema):
    """A ground of rules.REVOCATION_GROUNDS, which the case's events must bear out, and the facts."""

    basis = one_of(rules.REVOCATION_GROUNDS)
    facts = long_text()


class RevocationProposedData(StrictSchema):
    grounds = fields.Nested(RevocationGrounds, required=True)


class SubjectCommittedData(StrictSchema):
    on = day()
    decision = long_text()
    # The reference (文號) of the ruling or decision that orders the committal.
    decision_no = text(max_length=100)


class DayData(StrictSchema):
    on = day()


class ReoffendedData(StrictSchema):
    offence = long_text()
    on = day()


class CorrectionCompletedData(StrictSchema):
    on = day()
    certificate_no = text(max_length=100)


# --- events -----------------------------------------------------------------------------


class CorrectionSubjectReceived(CaseOpened):
    """社區矯正對象接收: the subject is received for correction where they live."""

    schema = CorrectionSubjectReceivedData
    leads_to = "received"

    def apply(self, case: Any) -> None:
        data = self.data
        case.person = data["person"]
        case.correction_type = data["correction_type"]
        case.deciding_authority = data["deciding_authority"]
        case.decision_effective_on = date.fromisoformat(data["decision_effective_on"])
        case.offence_date = date.fromisoformat(data["offence_date"])
        case.term_start = date.fromisoformat(data["term_start"])
        case.term_end = date.fromisoformat(data["term_end"])
        case.eligibility = data["eligibility"]
        birth = known_date(data["person"]["birth_date"])  # None once erased
        case.minor = birth is not None and is_minor(birth, case.offence_date)
        case.received_on = cst_date(self.timestamp)
        case.report_in_due = report_in_due(case.decision_effective_on)
        case.reported_in_on = None
        case.late_report_in = None
        case.team = None
        case.supervision_level = None
        case.check_ins = 0
        case.last_check_in_on = None
        case.education_sessions = 0
        case.community_service_hours = 0.0
        case.counselling_sessions = 0
        case.leaves = []
        case.monitoring = None
        case.monitoring_grants = 0
        case.residence_changes = 0
        case.sanctions = dict.fromkeys(rules.SANCTION_RUNGS, 0)
        case.revocation_basis = None
        case.revocation_proposed_on = None
        case.committal_decision_no = None
        case.absconded_on = None
        case.abscondings = 0
        case.longest_absconding_days = 0
        case.reoffences = 0
        case.reoffended_on = None
        case.ended_on = None
        case.certificate_no = None


class SubjectReportedIn(CaseEvent):
    """報到: the subject reports in; later than the window is late (社區矯正法 §21)."""

    schema = SubjectReportedInData
    leads_to = "under_correction"
    allowed_in = statuses("received")

    def apply(self, case: Any) -> None:
        case.reported_in_on = date.fromisoformat(self.data["reported_on"])
        case.late_report_in = case.reported_in_on > case.report_in_due


class CorrectionTeamFormed(CaseEvent):
    """矯正小組: the correction team of an officer, a social worker and volunteers."""

    schema = CorrectionTeamFormedData
    allowed_in = OPEN
    register_fields = (
        RegisterField("officer.staff_id", CORRECTION_STAFF, post="officer"),
        RegisterField("social_worker.staff_id", CORRECTION_STAFF, post="social_worker"),
    )

    def apply(self, case: Any) -> None:
        case.team = self.data


class SupervisionLevelSet(CaseEvent):
    """分類管理: the subject is supervised strictly, ordinarily or leniently."""

    schema = SupervisionLevelSetData
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        case.supervision_level = self.data["level"]


class CheckInRecorded(CaseEvent):
    """報告/簽到: the subject checked in."""

    schema = CorrectionActivityData
    allowed_in = UNDER_CORRECTION

    def apply(self, case: Any) -> None:
        on = date.fromisoformat(self.data["on"])
        case.check_ins += 1
        case.last_check_in_on = max(on, case.last_check_in_on or on)


class EducationSessionRecorded(CaseEvent):
    """教育學習: the subject attended an education session."""

    schema = CorrectionActivityData
    allowed_in = UNDER_CORRECTION

    def apply(self, case: Any) -> None:
        case.education_sessions += 1


class CommunityServiceRecorded(CaseEvent):
    """社區服務: the subject did community service for some hours."""

    schema = CommunityServiceRecordedData
    allowed_in = UNDER_CORRECTION

    def apply(self, case: Any) -> None:
        case.community_service_hours += self.data["hours"]


class CounsellingSessionRecorded(CaseEvent):
    """心理矯正: the subject had a counselling session."""

    schema = CorrectionActivityData
    allowed_in = UNDER_CORRECTION

    def apply(self, case: Any) -> None:
        case.counselling_sessions += 1


class LeaveRequested(CaseEvent):
    """請假外出: the subject asks to leave the county for some days."""

    schema = LeaveData
    allowed_in = UNDER_CORRECTION

    def apply(self, case: Any) -> None:
        leave = {**leave_of(self.data), "status": "requested", "returned_on": None}
        case.leaves = [*case.leaves, leave]


class LeaveApproved(CaseEvent):
    """准假: a supervisor approves the pending leave request."""

    schema = LeaveData
    allowed_in = UNDER_CORRECTION
    supervisors_only = True

    def apply(self, case: Any) -> None:
        case.leaves = with_leave_status(case.leaves, leave_of(self.data), "requested", "approved")


class LeaveDenied(CaseEvent):
    """不准假: a supervisor denies the pending leave request."""

    schema = LeaveData
    allowed_in = UNDER_CORRECTION
    supervisors_only = True

    def apply(self, case: Any) -> None:
        case.leaves = with_leave_status(case.leaves, leave_of(self.data), "requested", "denied")


class LeaveReturned(CaseEvent):
    """銷假: the subject is back from an approved leave."""

    schema = LeaveReturnedData
    allowed_in = UNDER_CORRECTION

    def apply(self, case: Any) -> None:
        returned = self.data.get("returned_on")
        returned_on = date.fromisoformat(returned) if returned else cst_date(self.timestamp)
        case.leaves = with_leave_status(
            case.leaves, leave_of(self.data), "approved", "returned", returned_on=returned_on
        )


class ElectronicMonitoringStarted(CaseEvent):
    """電子定位: electronic monitoring is granted from today until a day; data only for correction."""

    schema = ElectronicMonitoringStartedData
    allowed_in = OPEN
    supervisors_only = True

    def apply(self, case: Any) -> None:
        case.monitoring = {
            "started_on": cst_date(self.timestamp),
            "until": date.fromisoformat(self.data["until"]),
            "ended_on": None,
        }
        case.monitoring_grants += 1


class ElectronicMonitoringEnded(CaseEvent):
    """解除電子定位: electronic monitoring ends today."""

    schema = ElectronicMonitoringEndedData
    allowed_in = OPEN
    supervisors_only = True

    def apply(self, case: Any) -> None:
        case.monitoring = {**case.monitoring, "ended_on": cst_date(self.timestamp)}


class ResidenceChanged(CaseEvent):
    """遷居: the subject moves; the case moves to the unit of the new residence."""

    schema = ResidenceChangedData
    allowed_in = OPEN
    unit_fields = ("to_unit",)

    def apply(self, case: Any) -> None:
        case.unit = self.data["to_unit"]
        case.residence_changes += 1


class TransferProposed(TransferProposedEvent):
    """遷居: the subject's move is approved; the supervisor proposes that the unit of the
    new residence take the case over (it moves when that unit accepts)."""

    allowed_in = OPEN


class TransferAccepted(TransferAcceptedEvent):
    """遷居接收: the unit of the new residence accepts the case."""

    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        super().apply(case)
        case.residence_changes += 1


class TransferDeclined(TransferDeclinedEvent):
    """遷居不予接收: the unit of the new residence declines; the case stays where it is."""

    allowed_in = OPEN


class SanctionEvent(CaseEvent):
    """A rung of the sanction ladder, 訓誡 → 警告 → 治安管理處罰 → revocation: supervisors only."""

    rung: ClassVar[str]
    allowed_in = OPEN
    supervisors_only = True

    def apply(self, case: Any) -> None:
        case.sanctions = {**case.sanctions, self.rung: case.sanctions[self.rung] + 1}


class ReprimandIssued(SanctionEvent):
    """訓誡: the first rung of the sanction ladder."""

    schema = SanctionData
    rung = "reprimand"


class WarningIssued(SanctionEvent):
    """警告: the second rung of the sanction ladder."""

    schema = SanctionData
    rung = "warning"


class PublicSecurityPenaltyProposed(SanctionEvent):
    """提請治安管理處罰: the third rung; the police are asked to impose a penalty."""

    schema = PublicSecurityPenaltyProposedData
    rung = "public_security_penalty"


class RevocationProposed(SanctionEvent):
    """提請撤銷緩刑/假釋/收監執行: the last rung, on grounds the case's events bear out."""

    schema = RevocationProposedData
    rung = "revocation"

    def apply(self, case: Any) -> None:
        super().apply(case)
        case.revocation_basis = self.data["grounds"]["basis"]
        case.revocation_proposed_on = cst_date(self.timestamp)


class SubjectCommitted(CaseEvent):
    """收監執行: on the decision that orders it, after a revocation proposal; correction ends."""

    schema = SubjectCommittedData
    leads_to = "committed"
    allowed_in = OPEN
    supervisors_only = True

    def apply(self, case: Any) -> None:
        end_correction(case, self.data["on"])
        case.committal_decision_no = self.data.get("decision_no")


class SubjectAbsconded(CaseEvent):
    """脫管: the subject cannot be found."""

    schema = DayData
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        case.absconded_on = date.fromisoformat(self.data["on"])
        case.abscondings += 1


class SubjectLocated(CaseEvent):
    """找回: the absconded subject is found again."""

    schema = DayData
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        days = (date.fromisoformat(self.data["on"]) - case.absconded_on).days
        case.longest_absconding_days = max(case.longest_absconding_days, days)
        case.absconded_on = None


class Reoffended(CaseEvent):
    """重新犯罪: the subject committed a new offence."""

    schema = ReoffendedData
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        case.reoffences += 1
        case.reoffended_on = first_reoffence(
            case.reoffended_on, date.fromisoformat(self.data["on"])
        )


class CorrectionCompleted(CaseEvent):
    """按期解除矯正: the term is served; correction ends with a certificate."""

    schema = CorrectionCompletedData
    leads_to = "completed"
    allowed_in = UNDER_CORRECTION

    def apply(self, case: Any) -> None:
        end_correction(case, self.data["on"])
        case.certificate_no = self.data["certificate_no"]


class SubjectDied(CaseEvent):
    """死亡: the subject died; correction ends."""

    schema = DayData
    leads_to = "died"
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        end_correction(case, self.data["on"])


def leave_of(data: dict[str, Any]) -> dict[str, Any]:
    """A leave's destination and days, from recorded data (`from`) or loaded values (`from_`)."""
    start = data["from_"] if "from_" in data else data["from"]
    end = data["to"]
    return {
        "destination": data["destination"],
        "from": start if isinstance(start, date) else date.fromisoformat(start),
        "to": end if isinstance(end, date) else date.fromisoformat(end),
    }


def same_leave(leave: dict[str, Any], named: dict[str, Any]) -> bool:
    return all(leave[key] == named[key] for key in ("destination", "from", "to"))


def with_leave_status(
    leaves: list[dict[str, Any]], named: dict[str, Any], old: str, new: str, **changes: Any
) -> list[dict[str, Any]]:
    """The leaves with the one named (in status `old`) moved to status `new`."""
    return [
        {**leave, "status": new, **changes}
        if leave["status"] == old and same_leave(leave, named)
        else leave
        for leave in leaves
    ]


def leave_days(leave: dict[str, Any]) -> int:
    return (leave["to"] - leave["from"]).days + 1


def is_minor(birth_date: date, offence_date: date) -> bool:
    """Minors (under 18 at the offence) are corrected apart and their identity is
    confidential."""
    return age_on(birth_date, offence_date) < rules.ADULT_AGE


def first_reoffence(known: date | None, on: date) -> date:
    """The day a person counts as re-offended: the earliest offence, in whatever order the
    offences were recorded (the read model counts the person on the same day)."""
    return on if known is None or on < known else known


def sanction_rung_missing(sanctions: dict[str, int], rung: str) -> str | None:
    """The rung below `rung` that the case has not climbed yet (None: in order).

    DOMAIN.md's ladder, 訓誡 → 警告 → 治安管理處罰: a warning follows a reprimand, a penalty
    proposal follows a warning. Revocation is borne out by its own grounds instead."""
    index = rules.SANCTION_RUNGS.index(rung)
    if index == 0 or rung == "revocation":
        return None
    below = rules.SANCTION_RUNGS[index - 1]
    return below if sanctions[below] == 0 else None


def report_in_due(decision_effective_on: date) -> date:
    """社區矯正法 §21: report in within 10 days of the decision taking effect."""
    return add_days(decision_effective_on, rules.REPORT_IN_DAYS)


def end_correction(case: Any, on: str) -> None:
    case.ended_on = date.fromisoformat(on)


def monitoring_active(monitoring: dict[str, Any] | None, today: date) -> bool:
    return (
        monitoring is not None and monitoring["ended_on"] is None and today <= monitoring["until"]
    )


# --- the aggregate -------------------------------------------------------------------------


class Correction(Sealable):
    """A community correction case (`kind: correction`)."""

    kind: ClassVar[str] = "correction"
    # 刑事訴訟法 §286: a minor's record is sealed; the correction organ seals it when the
    # term is served (docs/domain.md, "Sealing of minors' records").
    seals_after: ClassVar[tuple[type[CaseEvent], ...]] = (CorrectionCompleted,)

    if TYPE_CHECKING:  # set by the events; not dataclass fields of the aggregate
        person: dict[str, Any]
        correction_type: str
        decision_effective_on: date
        term_start: date
        term_end: date
        report_in_due: date
        leaves: list[dict[str, Any]]
        monitoring: dict[str, Any] | None
        sanctions: dict[str, int]
        revocation_proposed_on: date | None
        received_on: date
        absconded_on: date | None
        longest_absconding_days: int
        reoffences: int
    opening_event = CorrectionSubjectReceived
    open_statuses = OPEN
    events = (
        CorrectionSubjectReceived,
        SubjectReportedIn,
        CorrectionTeamFormed,
        SupervisionLevelSet,
        CheckInRecorded,
        EducationSessionRecorded,
        CommunityServiceRecorded,
        CounsellingSessionRecorded,
        LeaveRequested,
        LeaveApproved,
        LeaveDenied,
        LeaveReturned,
        ElectronicMonitoringStarted,
        ElectronicMonitoringEnded,
        ResidenceChanged,
        ReprimandIssued,
        WarningIssued,
        PublicSecurityPenaltyProposed,
        RevocationProposed,
        SubjectCommitted,
        SubjectAbsconded,
        SubjectLocated,
        Reoffended,
        CorrectionCompleted,
        SubjectDied,
        TransferProposed,
        TransferAccepted,
        TransferDeclined,
        *SEAL_EVENTS,
    )

    def is_sealable(self) -> bool:
        """A minor at the offence (their record is sealed, 刑事訴訟法 §286)."""
        return bool(getattr(self, "minor", False))

    @rule(CorrectionSubjectReceived)
    def _eligible_in_province(self, data: dict[str, Any], ctx: Context) -> None:
        # 社區矯正法 §17 and the seed's scope: household or habitual residence in the
        # province, or a non-local household settled and living in it.
        basis = data["eligibility"]["basis"]
        address_field = rules.ELIGIBILITY_BASES[basis]
        if not data["person"][address_field].strip().startswith(rules.PROVINCE_PREFIXES):
            raise RuleViolation(
                f"Correction happens where the person lives: the basis '{basis}' needs the "
                f"{address_field.replace('_', ' ')} in the province "
                f"(starting with {' or '.join(rules.PROVINCE_PREFIXES)}).",
                code="not_eligible_in_province",
                details={"basis": basis, "address_field": address_field},
            )

    @rule(CorrectionSubjectReceived)
    def _reception_dates(self, data: dict[str, Any], ctx: Context) -> None:
        # Gap 14. The decision is received once it has taken effect (社區矯正法 §20: the
        # deciding organ notifies within five days of it taking effect), so it, the birth
        # date and the term's start are not in the future; the term runs from the decision
        # taking effect or later (緩刑 from the judgment's effect, 假釋 from the release,
        # 管制 and 暫予監外執行 from their execution). The term's end is not compared with
        # today: a term recorded late may have run out already.
        require_not_future(data["person"]["birth_date"], ctx, "person.birth_date")
        require_not_future(data["decision_effective_on"], ctx, "decision_effective_on")
        require_not_before(
            data["term_start"],
            data["decision_effective_on"],
            "term_start",
            "the decision taking effect",
        )
        require_not_future(data["term_start"], ctx, "term_start")

    @rule(SubjectReportedIn)
    def _report_in_after_the_decision(self, data: dict[str, Any], ctx: Context) -> None:
        reported_on: date = data["reported_on"]
        if reported_on < self.decision_effective_on:
            raise RuleViolation(
                "A subject reports in once the decision has taken effect "
                f"({self.decision_effective_on.isoformat()}).",
                code="report_in_before_decision",
            )
        require_not_future(reported_on, ctx, "reported_on")

    @rule(CorrectionTeamFormed)
    def _woman_on_a_female_subjects_team(self, data: dict[str, Any], ctx: Context) -> None:
        # 社區矯正法 §25: a female subject's team includes a woman.
        members = [data["officer"], data["social_worker"], *data["volunteers"]]
        if self.person["gender"] == "female" and not any(
            member["gender"] == "female" for member in members
        ):
            raise RuleViolation(
                "The correction team of a female subject must include a woman.",
                code="female_subject_needs_woman_on_team",
            )

    @rule(
        CheckInRecorded,
        EducationSessionRecorded,
        CommunityServiceRecorded,
        CounsellingSessionRecorded,
        LeaveRequested,
        CorrectionCompleted,
    )
    def _not_while_absconded(self, data: dict[str, Any], ctx: Context) -> None:
        if self.absconded_on is not None:
            raise RuleViolation(
                "The subject has absconded; record SubjectLocated first.",
                code="subject_absconded",
            )

    @rule(
        CheckInRecorded,
        EducationSessionRecorded,
        CommunityServiceRecorded,
        CounsellingSessionRecorded,
        ReprimandIssued,
        WarningIssued,
        SubjectCommitted,
        SubjectAbsconded,
        SubjectLocated,
        Reoffended,
        CorrectionCompleted,
        SubjectDied,
    )
    def _on_not_in_future(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_future(data["on"], ctx, "on")

    @rule(
        CheckInRecorded,
        EducationSessionRecorded,
        CommunityServiceRecorded,
        CounsellingSessionRecorded,
    )
    def _activity_within_the_term(self, data: dict[str, Any], ctx: Context) -> None:
        self._require_within_term(data["on"], "on")

    @rule(LeaveRequested)
    def _one_leave_request_at_a_time(self, data: dict[str, Any], ctx: Context) -> None:
        if any(leave["status"] == "requested" for leave in self.leaves):
            raise RuleViolation(
                "A leave request is still waiting for a decision.", code="leave_request_pending"
            )

    @rule(LeaveRequested)
    def _leave_within_the_limits(self, data: dict[str, Any], ctx: Context) -> None:
        leave = leave_of(data)
        require_leave_length(leave)
        self._require_within_term(leave["from"], "from")
        self._require_within_term(leave["to"], "to")
        for other in self.leaves:
            if other["status"] not in ("approved", "returned"):
                continue
            other_end = other["returned_on"] or other["to"]
            if leave["from"] <= other_end and other["from"] <= leave["to"]:
                raise RuleViolation(
                    "The leave overlaps a leave approved from "
                    f"{other['from'].isoformat()} to {other_end.isoformat()}.",
                    code="leave_overlaps",
                    details={"from": other["from"].isoformat(), "to": other_end.isoformat()},
                )

    @rule(LeaveApproved, LeaveDenied)
    def _leave_decided_at_the_right_level(self, data: dict[str, Any], ctx: Context) -> None:
        # Up to 7 days a township-level (司法所) supervisor decides; longer, the county (司法局).
        days = leave_days(leave_of(data))
        unit = ctx.actor.unit
        if days > rules.LEAVE_TOWNSHIP_MAX_DAYS and not is_at_or_above(unit, "county"):
            raise NotPermitted(
                f"A leave of {days} days is decided by a county-level supervisor "
                f"(a township decides up to {rules.LEAVE_TOWNSHIP_MAX_DAYS} days).",
                code="leave_needs_county_supervisor",
                details={"days": days},
            )
        if not is_at_or_above(unit, "township"):
            raise NotPermitted(
                "A leave is decided by a township-level or higher supervisor.",
                code="leave_needs_township_supervisor",
                details={"days": days},
            )

    @rule(LeaveApproved, LeaveDenied)
    def _decision_on_the_pending_request(self, data: dict[str, Any], ctx: Context) -> None:
        named = leave_of(data)
        if not any(
            leave["status"] == "requested" and same_leave(leave, named) for leave in self.leaves
        ):
            raise RuleViolation(
                "No pending leave request names that destination and the days "
                f"{named['from'].isoformat()} to {named['to'].isoformat()}.",
                code="leave_not_requested",
            )
        require_leave_length(named)

    @rule(LeaveReturned)
    def _return_from_an_approved_leave(self, data: dict[str, Any], ctx: Context) -> None:
        named = leave_of(data)
        if not any(
            leave["status"] == "approved" and same_leave(leave, named) for leave in self.leaves
        ):
            raise RuleViolation(
                "No approved, unreturned leave names that destination and the days "
                f"{named['from'].isoformat()} to {named['to'].isoformat()}.",
                code="leave_not_approved",
            )
        returned_on: date = data.get("returned_on") or cst_date(ctx.now)
        if returned_on < named["from"]:
            raise RuleViolation(
                "The subject cannot return before the leave begins.",
                code="returned_before_leave",
            )
        require_not_future(returned_on, ctx, "returned_on")

    @rule(ElectronicMonitoringStarted, ElectronicMonitoringEnded)
    def _monitoring_by_a_county_supervisor(self, data: dict[str, Any], ctx: Context) -> None:
        if not is_at_or_above(ctx.actor.unit, "county"):
            raise NotPermitted(
                "Electronic monitoring is decided by a county-level or higher supervisor.",
                code="monitoring_needs_county_supervisor",
            )

    @rule(ElectronicMonitoringStarted)
    def _monitoring_grant_within_three_months(self, data: dict[str, Any], ctx: Context) -> None:
        today = cst_date(ctx.now)
        until: date = data["until"]
        latest = add_months(today, rules.ELECTRONIC_MONITORING_MAX_MONTHS)
        if until <= today:
            raise RuleViolation(
                "Electronic monitoring must run until a day after today.",
                code="monitoring_until_not_after_start",
            )
        if until > latest:
            raise RuleViolation(
                f"A grant of electronic monitoring lasts at most "
                f"{rules.ELECTRONIC_MONITORING_MAX_MONTHS} months (until {latest.isoformat()}).",
                code="monitoring_too_long",
                details={"latest": latest.isoformat()},
            )
        running = self.monitoring
        if running is not None and monitoring_active(running, today):
            raise RuleViolation(
                f"Electronic monitoring is already running (until {running['until'].isoformat()}).",
                code="monitoring_overlaps",
            )

    @rule(ElectronicMonitoringEnded)
    def _end_running_monitoring(self, data: dict[str, Any], ctx: Context) -> None:
        if self.monitoring is None or self.monitoring["ended_on"] is not None:
            raise RuleViolation(
                "No electronic monitoring is running.", code="monitoring_not_running"
            )

    @rule(ResidenceChanged)
    def _residence_moves_elsewhere(self, data: dict[str, Any], ctx: Context) -> None:
        # Kept to read old stores; a case now moves only when the receiving unit accepts.
        raise RuleViolation(
            "A case moves to another unit by TransferProposed, then TransferAccepted by a "
            "supervisor of the receiving unit; ResidenceChanged is no longer recorded.",
            code="transfer_required",
            details={"use": ["TransferProposed", "TransferAccepted"]},
        )

    @rule(RevocationProposed)
    def _revocation_applies_to_the_type(self, data: dict[str, Any], ctx: Context) -> None:
        if self.correction_type not in rules.REVOCABLE_CORRECTION_TYPES:
            name = rules.CORRECTION_TYPE_NAMES[self.correction_type]
            raise RuleViolation(
                f"A {self.correction_type} ({name}) subject is not revoked; "
                "propose a public security penalty instead.",
                code="revocation_not_applicable",
            )

    @rule(RevocationProposed)
    def _revocation_grounds_borne_out(self, data: dict[str, Any], ctx: Context) -> None:
        basis = data["grounds"]["basis"]
        shortfall = self._revocation_shortfall(basis, cst_date(ctx.now))
        if shortfall is not None:
            raise RuleViolation(
                f"The grounds '{basis}' are not borne out by the case: {shortfall}",
                code="revocation_grounds_not_borne_out",
                details={"basis": basis},
            )

    @rule(WarningIssued)
    def _warning_after_a_reprimand(self, data: dict[str, Any], ctx: Context) -> None:
        self._require_ladder(WarningIssued.rung)

    @rule(PublicSecurityPenaltyProposed)
    def _penalty_after_a_warning(self, data: dict[str, Any], ctx: Context) -> None:
        self._require_ladder(PublicSecurityPenaltyProposed.rung)

    @rule(SubjectCommitted)
    def _committal_follows_a_revocation_proposal(self, data: dict[str, Any], ctx: Context) -> None:
        # 收監執行 is the court's (or the authority's) decision on a proposal to revoke
        # probation or parole, or to end a temporary outside execution; 管制 has neither.
        if self.correction_type not in rules.REVOCABLE_CORRECTION_TYPES:
            name = rules.CORRECTION_TYPE_NAMES[self.correction_type]
            raise RuleViolation(
                f"A {self.correction_type} ({name}) subject is not committed to prison.",
                code="committal_not_applicable",
            )
        proposed_on = self.revocation_proposed_on
        if proposed_on is None:
            raise RuleViolation(
                "Committal follows a revocation proposal (RevocationProposed).",
                code="committal_without_revocation_proposal",
            )
        if data["on"] < proposed_on:
            raise RuleViolation(
                f"The committal cannot precede the revocation proposal ({proposed_on.isoformat()}).",
                code="date_out_of_order",
                details={"field": "on"},
            )

    @rule(Reoffended)
    def _reoffence_during_correction(self, data: dict[str, Any], ctx: Context) -> None:
        if data["on"] < self.decision_effective_on:
            raise RuleViolation(
                "A re-offence is an offence during correction, on or after the decision took "
                f"effect ({self.decision_effective_on.isoformat()}).",
                code="date_out_of_order",
                details={"field": "on"},
            )

    @rule(SubjectAbsconded)
    def _not_already_absconded(self, data: dict[str, Any], ctx: Context) -> None:
        if self.absconded_on is not None:
            raise RuleViolation(
                f"The subject has been absconded since {self.absconded_on.isoformat()}.",
                code="already_absconded",
            )

    @rule(SubjectLocated)
    def _located_after_absconding(self, data: dict[str, Any], ctx: Context) -> None:
        if self.absconded_on is None:
            raise RuleViolation("The subject has not absconded.", code="not_absconded")
        if data["on"] < self.absconded_on:
            raise RuleViolation(
                f"The subject absconded on {self.absconded_on.isoformat()}; "
                "they cannot be located before that.",
                code="located_before_absconding",
            )

    @rule(CorrectionCompleted)
    def _completed_not_before_term_end(self, data: dict[str, Any], ctx: Context) -> None:
        if data["on"] < self.term_end:
            raise RuleViolation(
                f"Correction is completed on schedule, not before the term ends "
                f"({self.term_end.isoformat()}).",
                code="completion_before_term_end",
                details={"term_end": self.term_end.isoformat()},
            )

    def _require_ladder(self, rung: str) -> None:
        missing = sanction_rung_missing(self.sanctions, rung)
        if missing is not None:
            raise RuleViolation(
                f"The sanction ladder is climbed in order: a {rung.replace('_', ' ')} "
                f"follows a {missing.replace('_', ' ')}.",
                code="sanction_out_of_order",
                details={"rung": rung, "needs": missing},
            )

    def _require_within_term(self, day_: date, field: str) -> None:
        if not self.term_start <= day_ <= self.term_end:
            raise RuleViolation(
                f"'{field}' ({day_.isoformat()}) is outside the term "
                f"({self.term_start.isoformat()} to {self.term_end.isoformat()}).",
                code="outside_term",
                details={"field": field},
            )

    def _revocation_shortfall(self, basis: str, today: date) -> str | None:
        """What the case lacks to bear out `basis`; None when its events bear it out."""
        if basis == "repeated_warnings":
            warnings = self.sanctions["warning"]
            if warnings < rules.REVOCATION_WARNINGS_NEEDED:
                return f"{warnings} warning(s), {rules.REVOCATION_WARNINGS_NEEDED} needed."
        elif basis == "absconding":
            days = self.longest_absconding_days
            if self.absconded_on is not None:
                days = max(days, (today - self.absconded_on).days)
            if days <= rules.ABSCONDING_DAYS_FOR_REVOCATION:
                return (
                    f"absconded {days} day(s) at the longest, more than "
                    f"{rules.ABSCONDING_DAYS_FOR_REVOCATION} needed."
                )
        elif basis == "after_public_security_penalty":
            if self.sanctions["public_security_penalty"] == 0:
                return "no public security penalty was proposed."
        elif basis == "reoffending" and self.reoffences == 0:
            return "no new offence is recorded."
        return None

    def derived(self, now: datetime) -> dict[str, Any]:
        today = cst_date(now)
        is_open = self.is_open
        return {
            # 漏管: the report-in window has passed without a report-in.
            "unreported_after_window": self.status == "received" and today > self.report_in_due,
            "absconded_now": is_open and self.absconded_on is not None,
            "term_ending_soon": is_open
            and today <= self.term_end <= add_days(today, rules.TERM_ENDING_SOON_DAYS),
            "days_to_term_end": (self.term_end - today).days if is_open else None,
            "electronic_monitoring_active": is_open and monitoring_active(self.monitoring, today),
            "on_leave": is_open
            and any(
                leave["status"] == "approved" and leave["from"] <= today for leave in self.leaves
            ),
        }

    def names(self) -> list[str]:
        return [self.person["name"]]


def require_leave_length(leave: dict[str, Any]) -> None:
    days = leave_days(leave)
    if days > rules.LEAVE_MAX_DAYS:
        raise RuleViolation(
            f"A leave lasts at most {rules.LEAVE_MAX_DAYS} days; this one is {days}.",
            code="leave_too_long",
            details={"days": days, "max_days": rules.LEAVE_MAX_DAYS},
        )
