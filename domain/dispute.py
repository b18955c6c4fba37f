"""Disputes — 矛盾糾紛, handled by the 大調解 grand-mediation procedure.

統一受理 → 集中梳理 → 歸口辦理 → 依法調處 → 限期辦結: every dispute is registered, every
registered one handled, every handled one gets a result, every result is made known.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from marshmallow import fields, validate

from domain import rules
from domain.case import (
    Case,
    CaseEvent,
    CaseOpened,
    Context,
    TCase,
    TransferAcceptedEvent,
    TransferDeclinedEvent,
    TransferProposedEvent,
    require_not_before,
    require_not_future,
    rule,
    statuses,
)
from domain.clock import add_days, add_months, cst_date
from domain.errors import NotPermitted, RuleViolation
from domain.registers import MEDIATION_COMMITTEE, MEDIATOR, RegisterField
from domain.schemas import (
    Party,
    StrictSchema,
    day,
    long_text,
    names,
    one_of,
    register_id,
    register_ids,
    text,
    unit_code,
)
from domain.units import is_at_or_above

OUTCOMES = statuses("agreement_reached", "mediation_failed", "refused", "withdrawn")
BEFORE_OUTCOME = statuses("registered", "triaged", "assigned", "in_mediation", "returned")
OPEN = BEFORE_OUTCOME | OUTCOMES
MEDIATING = statuses("assigned", "in_mediation")


# --- data schemas ---------------------------------------------------------------------


class DisputeRegisteredData(StrictSchema):
    # The registering centre: the unit the dispute is opened at (filled in when left out).
    center_unit = unit_code(required=False)
    category = one_of(rules.DISPUTE_CATEGORIES)
    summary = long_text()
    parties = fields.List(
        fields.Nested(Party), required=True, validate=validate.Length(min=2, max=500)
    )
    scope = one_of(rules.DISPUTE_SCOPES)
    source = one_of(rules.DISPUTE_SOURCES)
    people_involved = fields.Integer(required=True, validate=validate.Range(min=2, max=1_000_000))


class DisputeTriagedData(StrictSchema):
    complexity = one_of(rules.DISPUTE_COMPLEXITIES)
    responsible_unit = unit_code()


class DisputeAssignedData(StrictSchema):
    handling_body = text()
    assigned_unit = unit_code()
    mediators = names()
    # The registered committee and mediators (domain.registers); optional, so that events
    # recorded with names only stay valid, and a department (not a committee) may handle.
    committee_id = register_id()
    mediator_ids = register_ids()


class MediationSessionHeldData(StrictSchema):
    held_on = day()
    mediators = names()
    attendees = names()
    notes = long_text()
    mediator_ids = register_ids()


class HearingHeldData(StrictSchema):
    held_on = day()
    notes = long_text()


class PublicNoticePostedData(StrictSchema):
    posted_on = day()
    notes = long_text()


class DisputeReturnedData(StrictSchema):
    reason = long_text()


class JointHandlingConvenedData(StrictSchema):
    departments = names(min_count=2)


class DeadlineExtendedData(StrictSchema):
    new_deadline = day()
    reason = long_text()


class SupervisionOrderedData(StrictSchema):
    instructions = long_text()


class EarlyWarningRaisedData(StrictSchema):
    risk = one_of(rules.EARLY_WARNING_RISKS)
    notes = long_text()


class DisputeTurnedCriminalData(StrictSchema):
    referred_on = day()
    receiving_body = one_of(rules.CRIMINAL_REFERRAL_BODIES)
    receiving_unit = text()
    grade = one_of(rules.CRIMINAL_TURN_GRADES)
    notes = long_text(required=False)


class AgreementReachedData(StrictSchema):
    terms = long_text()
    form = one_of(rules.AGREEMENT_FORMS)
    performance_due = day()
    effective_on = day(required=False)


class JudicialConfirmationRequestedData(StrictSchema):
    court = text()
    requested_on = day()


class MediationFailedData(StrictSchema):
    reason = long_text()
    referral = one_of(rules.FAILURE_REFERRALS)


class MediationRefusedData(StrictSchema):
    party = text(max_length=100)
    reason = long_text()


class DisputeWithdrawnData(StrictSchema):
    reason = long_text()


class DisputeClosedData(StrictSchema):
    result_summary = long_text()


class FollowUpVisitedData(StrictSchema):
    visited_on = day()
    satisfaction = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    agreement_performed = fields.Boolean(required=True)


# --- events -----------------------------------------------------------------------------


class DisputeRegistered(CaseOpened):
    """矛盾糾紛登記 (統一受理): a dispute is registered; it cannot be refused."""

    schema = DisputeRegisteredData
    leads_to = "registered"
    unit_fields = ("center_unit",)

    def apply(self, case: Any) -> None:
        data = self.data
        case.center_unit = data["center_unit"]
        case.category = data["category"]
        case.summary = data["summary"]
        case.parties = data["parties"]
        case.scope = data["scope"]
        case.source = data["source"]
        case.people_involved = data["people_involved"]
        case.collective = data["people_involved"] >= rules.COLLECTIVE_DISPUTE_THRESHOLD
        case.registered_on = cst_date(self.timestamp)
        case.time_limit_class = rules.TIME_LIMIT_CLASS_BY_SOURCE.get(data["source"], "default")
        case.complexity = None
        # Until triage sets the complexity, the scope decides (有受必處): a cross-region
        # dispute has the longer limit from the day it is registered.
        case.deadline = time_limit(
            case.registered_on, case.time_limit_class, case.complexity, case.scope
        )
        case.responsible_unit = None
        case.handling_body = None
        case.assigned_unit = None
        case.mediators = []
        case.sessions = 0
        case.hearings = 0
        case.public_notices = 0
        case.returns = 0
        case.joint_handling_convened = False
        case.supervision_orders = 0
        case.early_warnings = []
        case.deadline_extended = False
        case.deadline_extensions = 0
        case.outcome = None
        case.outcome_on = None
        case.agreement_effective_on = None
        case.referral = None
        case.judicial_confirmation_requested_on = None
        case.closed_on = None
        case.concluded_on = None
        case.on_time = None
        case.follow_ups = 0
        case.last_satisfaction = None
        case.agreement_performed = None
        case.turned_criminal_on = None
        case.turned_criminal_grade = None


class DisputeTriaged(CaseEvent):
    """集中梳理: the center triages the dispute and sets its time limit."""

    schema = DisputeTriagedData
    leads_to = "triaged"
    allowed_in = statuses("registered")
    unit_fields = ("responsible_unit",)

    def apply(self, case: Any) -> None:
        case.complexity = self.data["complexity"]
        case.responsible_unit = self.data["responsible_unit"]
        limit = time_limit(case.registered_on, case.time_limit_class, case.complexity, case.scope)
        case.deadline = deadline_after_triage(limit, case.deadline, case.deadline_extended)


class DisputeAssigned(CaseEvent):
    """歸口辦理: assigned to a mediation committee or a department."""

    schema = DisputeAssignedData
    leads_to = "assigned"
    # `assigned` only for a reassignment after a return's joint handling (checked by a rule).
    allowed_in = statuses("triaged", "returned", "assigned")
    unit_fields = ("assigned_unit",)
    register_fields = (
        RegisterField("committee_id", MEDIATION_COMMITTEE),
        RegisterField("mediator_ids", MEDIATOR),
    )

    def apply(self, case: Any) -> None:
        case.handling_body = self.data["handling_body"]
        case.assigned_unit = self.data["assigned_unit"]
        case.mediators = self.data["mediators"]
        # One 會辦, one reassignment: the next needs another return and 會辦.
        case.joint_handling_convened = False


class MediationSessionHeld(CaseEvent):
    """依法調處: a mediation session (調解) was held."""

    schema = MediationSessionHeldData
    leads_to = "in_mediation"
    allowed_in = MEDIATING
    register_fields = (RegisterField("mediator_ids", MEDIATOR),)

    def apply(self, case: Any) -> None:
        case.sessions += 1


class HearingHeld(CaseEvent):
    """聽證: a hearing was held."""

    schema = HearingHeldData
    allowed_in = BEFORE_OUTCOME

    def apply(self, case: Any) -> None:
        case.hearings += 1


class PublicNoticePosted(CaseEvent):
    """公示: a public notice was posted."""

    schema = PublicNoticePostedData
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        case.public_notices += 1


class DisputeReturned(CaseEvent):
    """回流: the dispute returns to the center, which then convenes joint handling."""

    schema = DisputeReturnedData
    leads_to = "returned"
    allowed_in = MEDIATING

    def apply(self, case: Any) -> None:
        case.returns += 1
        case.joint_handling_convened = False


class JointHandlingConvened(CaseEvent):
    """會辦: the center convenes the departments; the dispute goes back to assigned."""

    schema = JointHandlingConvenedData
    leads_to = "assigned"
    allowed_in = statuses("returned")

    def apply(self, case: Any) -> None:
        case.joint_handling_convened = True


class DeadlineExtended(CaseEvent):
    """延期: a supervisor extends the time limit of a special case."""

    schema = DeadlineExtendedData
    allowed_in = BEFORE_OUTCOME
    supervisors_only = True

    def apply(self, case: Any) -> None:
        case.deadline = date.fromisoformat(self.data["new_deadline"])
        case.deadline_extended = True
        case.deadline_extensions += 1


class SupervisionOrdered(CaseEvent):
    """督辦: a supervisor orders the case supervised."""

    schema = SupervisionOrderedData
    allowed_in = OPEN
    supervisors_only = True

    def apply(self, case: Any) -> None:
        case.supervision_orders += 1


class EarlyWarningRaised(CaseEvent):
    """預警: a risk of escalation, a collective incident or 民轉刑 is flagged."""

    schema = EarlyWarningRaisedData
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        case.early_warnings = [*case.early_warnings, self.data["risk"]]


class DisputeTurnedCriminal(CaseEvent):
    """民轉刑: the dispute turned into a criminal case, referred to (or taken up by) the police,
    the procuratorate or a court, graded major (重大) or ordinary as that body graded it.
    Recorded once, by a supervisor of the centre, in any status: a dispute may turn criminal
    before, during or after its mediation."""

    schema = DisputeTurnedCriminalData
    allowed_in = OPEN | statuses("closed")
    supervisors_only = True

    def apply(self, case: Any) -> None:
        case.turned_criminal_on = date.fromisoformat(self.data["referred_on"])
        # None: recorded before turns were graded.
        case.turned_criminal_grade = self.data.get("grade")


class AgreementReached(CaseEvent):
    """調解成功: the parties reached an agreement."""

    schema = AgreementReachedData
    leads_to = "agreement_reached"
    # `assigned` is refused by a rule that says why: no session since the assignment.
    allowed_in = MEDIATING

    def apply(self, case: Any) -> None:
        conclude(case, self.leads_to, self.timestamp)
        effective = self.data.get("effective_on")
        case.agreement_effective_on = (
            date.fromisoformat(effective) if effective else cst_date(self.timestamp)
        )


class JudicialConfirmationRequested(CaseEvent):
    """司法確認: both parties jointly ask a court to confirm the agreement."""

    schema = JudicialConfirmationRequestedData
    allowed_in = statuses("agreement_reached", "closed")

    def apply(self, case: Any) -> None:
        case.judicial_confirmation_requested_on = date.fromisoformat(self.data["requested_on"])


class MediationFailed(CaseEvent):
    """調解不成: mediation failed; the parties are referred on (訴調對接)."""

    schema = MediationFailedData
    leads_to = "mediation_failed"
    allowed_in = MEDIATING

    def apply(self, case: Any) -> None:
        conclude(case, self.leads_to, self.timestamp)
        case.referral = self.data["referral"]


class MediationRefused(CaseEvent):
    """拒絕調解: a party refuses mediation; none may take place (人民調解法 §17)."""

    schema = MediationRefusedData
    leads_to = "refused"
    allowed_in = BEFORE_OUTCOME

    def apply(self, case: Any) -> None:
        conclude(case, self.leads_to, self.timestamp)


class DisputeWithdrawn(CaseEvent):
    """撤回: the applicant withdraws the dispute."""

    schema = DisputeWithdrawnData
    leads_to = "withdrawn"
    allowed_in = BEFORE_OUTCOME

    def apply(self, case: Any) -> None:
        conclude(case, self.leads_to, self.timestamp)


class DisputeClosed(CaseEvent):
    """辦結報告: the dispute is closed with its result (限期辦結)."""

    schema = DisputeClosedData
    leads_to = "closed"
    allowed_in = OUTCOMES

    def apply(self, case: Any) -> None:
        case.closed_on = cst_date(self.timestamp)
        case.concluded_on = case.closed_on
        case.on_time = case.concluded_on <= case.deadline


class FollowUpVisited(CaseEvent):
    """回訪: a follow-up visit after the case was closed."""

    schema = FollowUpVisitedData
    allowed_in = statuses("closed")

    def apply(self, case: Any) -> None:
        case.follow_ups += 1
        case.last_satisfaction = self.data["satisfaction"]
        case.agreement_performed = self.data["agreement_performed"]


# A dispute moves between centres before it is handed down (統一受理 at the centre where it
# belongs, then 歸口辦理); once assigned it is returned (回流) rather than moved.
TRANSFERABLE = statuses("registered", "triaged")


class TransferProposed(TransferProposedEvent):
    """移送: the centre's supervisor proposes that another centre take the dispute over."""

    allowed_in = TRANSFERABLE


class TransferAccepted(TransferAcceptedEvent):
    """接收: the receiving centre's supervisor accepts; the dispute is that centre's."""

    allowed_in = TRANSFERABLE

    def apply(self, case: Any) -> None:
        super().apply(case)
        case.center_unit = case.unit


class TransferDeclined(TransferDeclinedEvent):
    """不予接收: the receiving centre's supervisor declines; the dispute stays where it is."""

    allowed_in = OPEN


def time_limit_days(time_limit_class: str, complexity: str | None, scope: str | None) -> int:
    limits = rules.MEDIATION_TIME_LIMITS[time_limit_class]
    if complexity == "major" or scope == "cross_region":
        return limits.major_days
    return limits.ordinary_days


def time_limit(
    registered_on: date, time_limit_class: str, complexity: str | None, scope: str | None
) -> date:
    """The last day of a dispute's time limit (限期辦結), by the rule table."""
    return add_days(registered_on, time_limit_days(time_limit_class, complexity, scope))


def deadline_after_triage(limit: date, deadline: date, extended: bool) -> date:
    """The deadline once triage has set the time limit: a supervisor's extension recorded
    before triage is not undone by it."""
    return max(limit, deadline) if extended else limit


def judicial_confirmation_due(agreement_effective_on: date) -> date:
    """人民調解法 §33: the last day to apply for judicial confirmation of an agreement."""
    return add_days(agreement_effective_on, rules.JUDICIAL_CONFIRMATION_WINDOW_DAYS)


def conclude(case: Any, outcome: str | None, at: datetime) -> None:
    case.outcome = outcome
    case.outcome_on = cst_date(at)


# --- the aggregate -------------------------------------------------------------------------


class Dispute(Case):
    """A dispute case (`kind: dispute`)."""

    kind: ClassVar[str] = "dispute"

    if TYPE_CHECKING:  # set by the events; not dataclass fields of the aggregate
        registered_on: date
        deadline: date
        time_limit_class: str
        scope: str
        sessions: int
        outcome: str | None
        agreement_effective_on: date | None
        judicial_confirmation_requested_on: date | None
        joint_handling_convened: bool
        closed_on: date | None
        deadline_extended: bool
        deadline_extensions: int
        parties: list[dict[str, Any]]
        turned_criminal_on: date | None
        turned_criminal_grade: str | None
    opening_event = DisputeRegistered
    open_statuses = OPEN
    events = (
        DisputeRegistered,
        DisputeTriaged,
        DisputeAssigned,
        MediationSessionHeld,
        HearingHeld,
        PublicNoticePosted,
        DisputeReturned,
        JointHandlingConvened,
        DeadlineExtended,
        SupervisionOrdered,
        EarlyWarningRaised,
        DisputeTurnedCriminal,
        AgreementReached,
        JudicialConfirmationRequested,
        MediationFailed,
        MediationRefused,
        DisputeWithdrawn,
        DisputeClosed,
        FollowUpVisited,
        TransferProposed,
        TransferAccepted,
        TransferDeclined,
    )
    # 歸口辦理: the events the unit a dispute is assigned to records, beside the centre.
    handling_events: ClassVar[frozenset[str]] = frozenset(
        event_class.__name__
        for event_class in (
            MediationSessionHeld,
            HearingHeld,
            PublicNoticePosted,
            EarlyWarningRaised,
            DisputeReturned,
            AgreementReached,
            MediationFailed,
            MediationRefused,
            DisputeWithdrawn,
        )
    )

    def acting_units(self, type_name: str) -> tuple[str, ...]:
        """The centre records every event; the unit the dispute is handed down to (and
        the units above it) records the handling events: sessions, hearings, notices,
        warnings, the outcome and the return (歸口辦理, 分流指派)."""
        units = super().acting_units(type_name)
        assigned = getattr(self, "assigned_unit", None)
        if assigned is not None and type_name in self.handling_events:
            return tuple(dict.fromkeys((*units, assigned)))
        return units

    def reach_units(self) -> tuple[str, ...]:
        """The centre and, once it is handed down, the handling unit read the case."""
        assigned = getattr(self, "assigned_unit", None)
        units = super().reach_units()
        return tuple(dict.fromkeys((*units, assigned))) if assigned else units

    @classmethod
    def open(cls: type[TCase], unit: str, data: Any, ctx: Context) -> TCase:
        """統一受理: the centre that registers the dispute is the unit it is opened at, the
        handling unit jurisdiction and the indicators follow (docs/domain.md, gap 13): a
        `center_unit` left out is that unit, one given must be it."""
        if isinstance(data, dict) and "center_unit" not in data:
            data = {**data, "center_unit": unit}
        case = super().open(unit, data, ctx)
        center = getattr(case, "center_unit", None)
        if center != unit:
            raise RuleViolation(
                f"A dispute is registered by its centre: 'center_unit' ({center}) must be the "
                f"unit it is registered at ({unit}).",
                code="center_unit_mismatch",
                details={"center_unit": center, "unit": unit},
            )
        return case

    @rule(DisputeRegistered)
    def _parties_on_both_sides(self, data: dict[str, Any], ctx: Context) -> None:
        roles = {party["role"] for party in data["parties"]}
        if roles != {"applicant", "respondent"}:
            raise RuleViolation(
                "A dispute needs at least one applicant and one respondent.",
                code="parties_on_both_sides",
            )

    @rule(DisputeAssigned)
    def _reassignment_after_joint_handling(self, data: dict[str, Any], ctx: Context) -> None:
        if self.status == "returned" and not self.joint_handling_convened:
            raise RuleViolation(
                "A returned dispute is reassigned only after the center convened joint handling.",
                code="reassignment_before_joint_handling",
            )
        # A dispute is assigned once after triage, and again only after a return (回流 → 會辦).
        if self.status == "assigned" and not self.joint_handling_convened:
            raise RuleViolation(
                "The dispute is already assigned; it is reassigned only after a return and "
                "the joint handling that follows it.",
                code="already_assigned",
            )

    @rule(DisputeAssigned)
    def _not_assigned_while_a_transfer_is_pending(self, data: dict[str, Any], ctx: Context) -> None:
        if self.pending_transfer is not None:
            raise RuleViolation(
                f"A transfer to {self.pending_transfer['to_unit']} awaits its answer; the "
                "dispute is assigned once it is answered.",
                code="transfer_pending",
                details={"to_unit": self.pending_transfer["to_unit"]},
            )

    @rule(DeadlineExtended)
    def _extension_by_a_county_supervisor(self, data: dict[str, Any], ctx: Context) -> None:
        # 特殊情況: the limit is stretched once, by the county (the 調處服務中心's level) or above.
        if not is_at_or_above(ctx.actor.unit, rules.DEADLINE_EXTENSION_LEVEL):
            raise NotPermitted(
                "A dispute's deadline is extended by a "
                f"{rules.DEADLINE_EXTENSION_LEVEL}-level or higher supervisor.",
                code="extension_needs_county_supervisor",
            )
        if self.deadline_extensions >= rules.DEADLINE_EXTENSIONS_ALLOWED:
            raise RuleViolation(
                f"The deadline was already extended (to {self.deadline.isoformat()}); it is "
                f"extended {rules.DEADLINE_EXTENSIONS_ALLOWED} time(s) at most.",
                code="extension_already_granted",
                details={"deadline": self.deadline.isoformat()},
            )

    @rule(DeadlineExtended)
    def _extension_within_two_months(self, data: dict[str, Any], ctx: Context) -> None:
        limits = rules.MEDIATION_TIME_LIMITS[self.time_limit_class]
        latest = add_months(self.registered_on, limits.max_months)
        new_deadline: date = data["new_deadline"]
        if new_deadline > latest:
            raise RuleViolation(
                f"The deadline may not pass {latest.isoformat()}, "
                f"{limits.max_months} months after registration.",
                code="extension_beyond_limit",
                details={"latest": latest.isoformat()},
            )
        if new_deadline <= self.deadline:
            raise RuleViolation(
                f"The new deadline must be later than the current one ({self.deadline.isoformat()}).",
                code="extension_not_later",
                details={"deadline": self.deadline.isoformat()},
            )

    @rule(MediationSessionHeld, HearingHeld)
    def _held_between_registration_and_today(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_before(data["held_on"], self.registered_on, "held_on", "the registration")
        require_not_future(data["held_on"], ctx, "held_on")

    @rule(PublicNoticePosted)
    def _posted_between_registration_and_today(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_before(data["posted_on"], self.registered_on, "posted_on", "the registration")
        require_not_future(data["posted_on"], ctx, "posted_on")

    @rule(MediationFailed)
    def _failure_needs_a_session(self, data: dict[str, Any], ctx: Context) -> None:
        # Mediation that never met has not failed: before any session a party refuses
        # (MediationRefused) or withdraws; the success rate counts mediations held.
        if self.sessions == 0:
            raise RuleViolation(
                "Mediation can only fail after at least one mediation session; before any, "
                "record MediationRefused or DisputeWithdrawn.",
                code="failure_before_mediation",
            )

    @rule(AgreementReached)
    def _agreement_needs_a_session(self, data: dict[str, Any], ctx: Context) -> None:
        # in_mediation: a session was held since the (re)assignment.
        if self.sessions == 0 or self.status != "in_mediation":
            raise RuleViolation(
                "An agreement can only follow at least one mediation session.",
                code="agreement_before_mediation",
            )

    @rule(AgreementReached)
    def _agreement_dates_in_order(self, data: dict[str, Any], ctx: Context) -> None:
        # 人民調解法 §29: an agreement takes effect when it is signed (or, oral, when reached):
        # a day that has come, after the registration; performance is due after that.
        effective: date = data.get("effective_on") or cst_date(ctx.now)
        require_not_before(effective, self.registered_on, "effective_on", "the registration")
        require_not_future(effective, ctx, "effective_on")
        require_not_before(
            data["performance_due"], effective, "performance_due", "the agreement taking effect"
        )

    @rule(MediationRefused)
    def _refusal_before_any_session(self, data: dict[str, Any], ctx: Context) -> None:
        # 人民調解法 §17: a refusal ends the case unmediated; once a session was held,
        # mediation took place and its end is MediationFailed.
        if self.sessions > 0:
            raise RuleViolation(
                "Mediation has already taken place; a party that stops it ends it as "
                "MediationFailed, not MediationRefused.",
                code="refusal_after_mediation",
            )

    @rule(JudicialConfirmationRequested)
    def _judicial_confirmation_within_30_days(self, data: dict[str, Any], ctx: Context) -> None:
        # 人民調解法 §33: both parties apply within 30 days of the agreement taking effect.
        if self.outcome != "agreement_reached" or self.agreement_effective_on is None:
            raise RuleViolation(
                "Judicial confirmation needs a mediation agreement.",
                code="judicial_confirmation_without_agreement",
            )
        if self.judicial_confirmation_requested_on is not None:
            raise RuleViolation(
                "Judicial confirmation was already requested.",
                code="judicial_confirmation_already_requested",
            )
        requested_on: date = data["requested_on"]
        latest = judicial_confirmation_due(self.agreement_effective_on)
        if requested_on < self.agreement_effective_on or requested_on > latest:
            raise RuleViolation(
                "Judicial confirmation must be requested within "
                f"{rules.JUDICIAL_CONFIRMATION_WINDOW_DAYS} days of the agreement taking effect "
                f"({self.agreement_effective_on.isoformat()} to {latest.isoformat()}).",
                code="judicial_confirmation_out_of_time",
                details={"latest": latest.isoformat()},
            )
        require_not_future(requested_on, ctx, "requested_on")

    @rule(DisputeTurnedCriminal)
    def _turned_criminal_once(self, data: dict[str, Any], ctx: Context) -> None:
        # One criminal case per dispute counts once in 民轉刑; a second referral adds nothing.
        if self.turned_criminal_on is not None:
            raise RuleViolation(
                "The dispute is already recorded as turned criminal.",
                code="already_turned_criminal",
                details={"referred_on": self.turned_criminal_on.isoformat()},
            )
        referred_on: date = data["referred_on"]
        require_not_before(referred_on, self.registered_on, "referred_on", "the registration")
        require_not_future(referred_on, ctx, "referred_on")

    @rule(FollowUpVisited)
    def _follow_up_not_in_future(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_future(data["visited_on"], ctx, "visited_on")
        closed_on = self.closed_on
        assert closed_on is not None  # FollowUpVisited is allowed only while closed
        if data["visited_on"] < closed_on:
            raise RuleViolation(
                f"A follow-up visit comes after the close ({closed_on.isoformat()}).",
                code="follow_up_before_close",
                details={"closed_on": closed_on.isoformat()},
            )

    def derived(self, now: datetime) -> dict[str, Any]:
        today = cst_date(now)
        return {
            "overdue": self.status != "closed" and today > self.deadline,
            "days_left": (self.deadline - today).days if self.status != "closed" else None,
        }

    def names(self) -> list[str]:
        return [party["name"] for party in self.parties]
