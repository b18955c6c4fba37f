"""Resettlement and assistance — 刑釋解教人員安置幫教 for people released from prison.

銜接管理 (prison-to-community handover) → 提前幫教 → 分類幫教 / 委托幫教 / 激勵幫教 →
就業安置, 職業技能培訓, 過渡性安置基地, social relief. Assistance is voluntary help, not
supervision: this kind has no sanctions.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from marshmallow import fields

from domain import rules
from domain.case import (
    Case,
    CaseEvent,
    CaseOpened,
    Context,
    TransferAcceptedEvent,
    TransferDeclinedEvent,
    TransferProposedEvent,
    parse_date,
    require_not_before,
    require_not_future,
    rule,
    statuses,
)
from domain.clock import add_days, add_years, cst_date
from domain.errors import RuleViolation
from domain.registers import BASE, RegisterField
from domain.schemas import Person, StrictSchema, day, long_text, one_of, text, unit_code

BEFORE_RELEASE = statuses("notified")
# Received and in contact: assistance, placement and activities happen here.
UNDER_ASSISTANCE = statuses("received")
AFTER_RECEPTION = statuses("received", "contact_lost")
AFTER_RELEASE = statuses("released") | AFTER_RECEPTION
OPEN = BEFORE_RELEASE | AFTER_RELEASE


# --- data schemas ---------------------------------------------------------------------


class ReleaseNotifiedData(StrictSchema):
    person = fields.Nested(Person, required=True)
    release_type = one_of(rules.RELEASE_TYPES)
    institution = text()
    expected_release_date = day()
    offence = text()
    # The day the prison's notice arrived, when it is recorded later; else the day recorded.
    notified_on = day(required=False)


class PreReleaseAssistanceProvidedData(StrictSchema):
    provided_on = day()
    notes = long_text()


class PersonReleasedData(StrictSchema):
    released_on = day()


class PersonReceivedData(StrictSchema):
    received_on = day()
    method = one_of(rules.RECEPTION_METHODS)


class AssistanceCategorisedData(StrictSchema):
    category = one_of(rules.ASSISTANCE_CATEGORIES)
    risk_level = one_of(rules.RISK_LEVELS)


class AssistanceActivityRecordedData(StrictSchema):
    held_on = day()
    kind = one_of(rules.ASSISTANCE_ACTIVITY_KINDS)
    notes = long_text()


class AssistanceDelegatedData(StrictSchema):
    to_unit = unit_code()
    reason = long_text()


class SkillTrainingCompletedData(StrictSchema):
    course = text()
    completed_on = day()


class PersonPlacedData(StrictSchema):
    placement = one_of(rules.PLACEMENTS)
    placed_on = day()
    # A registered, active base (domain.registers); the service checks it on append.
    base_id = text(required=False, max_length=64)


class PlacementEndedData(StrictSchema):
    ended_on = day()
    reason = long_text()


class ContactLostData(StrictSchema):
    on = day()
    notes = long_text()


class ContactRestoredData(StrictSchema):
    on = day()
    notes = long_text()


class ReoffendedData(StrictSchema):
    offence = text()
    on = day()


class AssistanceEndedData(StrictSchema):
    reason = one_of(rules.ASSISTANCE_END_REASONS)
    ended_on = day()


# --- events -----------------------------------------------------------------------------


class ReleaseNotified(CaseOpened):
    """刑滿釋放通知: the prison notifies the community of a coming release; opens the case.

    A notice later than RELEASE_NOTICE_MIN_DAYS before the expected release is accepted
    and flagged (`late_notice`): the person is released regardless, and must be received.
    """

    schema = ReleaseNotifiedData
    leads_to = "notified"

    def apply(self, case: Any) -> None:
        data = self.data
        case.person = data["person"]
        case.release_type = data["release_type"]
        case.institution = data["institution"]
        case.offence = data["offence"]
        case.expected_release_date = date.fromisoformat(data["expected_release_date"])
        case.notified_on = parse_date(data.get("notified_on")) or cst_date(self.timestamp)
        # Lateness is the server's to judge: counted to the day the notice was recorded,
        # whatever day the client says it arrived.
        case.notice_recorded_on = cst_date(self.timestamp)
        case.notice_days = notice_days(case.expected_release_date, case.notice_recorded_on)
        case.late_notice = notice_is_late(case.expected_release_date, case.notice_recorded_on)
        case.pre_release_assistance = 0
        case.released_on = None
        case.handover_due = None
        case.assistance_period_ends_on = None
        case.received_on = None
        case.reception_method = None
        case.late_handover = None
        case.category = None
        case.risk_level = None
        case.categorised = False
        case.activities = 0
        case.last_activity_on = None
        case.delegations = []
        case.trainings = 0
        case.placement = None
        case.base_id = None
        case.placed_on = None
        case.ever_placed = False
        case.placements = 0
        case.contact_lost_on = None
        case.contact_losses = 0
        case.reoffended = False
        case.reoffended_on = None
        case.reoffended_year = None
        case.reoffence_years = []
        case.end_reason = None
        case.ended_on = None


class PreReleaseAssistanceProvided(CaseEvent):
    """提前幫教: assistance given before release, while the person is still inside."""

    schema = PreReleaseAssistanceProvidedData
    allowed_in = BEFORE_RELEASE

    def apply(self, case: Any) -> None:
        case.pre_release_assistance += 1


class PersonReleased(CaseEvent):
    """刑滿釋放 / 解除勞教: the person is released; the handover window starts."""

    schema = PersonReleasedData
    leads_to = "released"
    allowed_in = BEFORE_RELEASE

    def apply(self, case: Any) -> None:
        case.released_on = date.fromisoformat(self.data["released_on"])
        case.handover_due = handover_due(case.released_on)
        case.assistance_period_ends_on = add_years(case.released_on, rules.ASSISTANCE_PERIOD_YEARS)


class PersonReceived(CaseEvent):
    """銜接到位: the community received the person; late past the handover window."""

    schema = PersonReceivedData
    leads_to = "received"
    allowed_in = statuses("released")

    def apply(self, case: Any) -> None:
        case.received_on = date.fromisoformat(self.data["received_on"])
        case.reception_method = self.data["method"]
        case.late_handover = case.received_on > case.handover_due


class AssistanceCategorised(CaseEvent):
    """分類幫教: the person is categorised key (重點) or ordinary (一般), with a risk level."""

    schema = AssistanceCategorisedData
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        case.category = self.data["category"]
        case.risk_level = self.data["risk_level"]
        case.categorised = True


class AssistanceActivityRecorded(CaseEvent):
    """幫教活動: a visit, talk, education or help given to the person."""

    schema = AssistanceActivityRecordedData
    # An activity is held with the person: not before reception, nor while contact is lost.
    allowed_in = UNDER_ASSISTANCE

    def apply(self, case: Any) -> None:
        case.activities += 1
        case.last_activity_on = date.fromisoformat(self.data["held_on"])


class AssistanceDelegated(CaseEvent):
    """委托幫教: assistance is delegated to another unit, which becomes the handling unit."""

    schema = AssistanceDelegatedData
    allowed_in = OPEN
    unit_fields = ("to_unit",)

    def apply(self, case: Any) -> None:
        delegation = {
            "from_unit": case.unit,
            "to_unit": self.data["to_unit"],
            "on": cst_date(self.timestamp),
        }
        case.delegations = [*case.delegations, delegation]
        case.unit = self.data["to_unit"]


class TransferProposed(TransferProposedEvent):
    """委托幫教: the supervisor proposes that another unit take over the assistance."""

    allowed_in = OPEN


class TransferAccepted(TransferAcceptedEvent):
    """接收: the receiving unit accepts the delegation and becomes the handling unit."""

    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        transfer = case.pending_transfer
        super().apply(case)
        delegation = {
            "from_unit": transfer["from_unit"],
            "to_unit": transfer["to_unit"],
            "on": cst_date(self.timestamp),
        }
        case.delegations = [*case.delegations, delegation]


class TransferDeclined(TransferDeclinedEvent):
    """不予接收: the receiving unit declines the delegation; the case stays where it is."""

    allowed_in = OPEN


class SkillTrainingCompleted(CaseEvent):
    """職業技能培訓: the person completed a vocational skills course (inside or after release)."""

    schema = SkillTrainingCompletedData
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        case.trainings += 1


class PersonPlaced(CaseEvent):
    """就業安置: the person is placed (work, own business, a transitional base, relief...)."""

    schema = PersonPlacedData
    allowed_in = UNDER_ASSISTANCE
    register_fields = (RegisterField("base_id", BASE),)

    def apply(self, case: Any) -> None:
        case.placement = self.data["placement"]
        case.base_id = self.data.get("base_id")
        case.placed_on = date.fromisoformat(self.data["placed_on"])
        case.ever_placed = True
        case.placements += 1


class PlacementEnded(CaseEvent):
    """安置結束: the current placement ended (the job, the stay at the base, the relief)."""

    schema = PlacementEndedData
    allowed_in = AFTER_RECEPTION

    def apply(self, case: Any) -> None:
        end_placement(case)


class ContactLost(CaseEvent):
    """脫管: contact with a received person is lost."""

    schema = ContactLostData
    leads_to = "contact_lost"
    allowed_in = UNDER_ASSISTANCE

    def apply(self, case: Any) -> None:
        case.contact_lost_on = date.fromisoformat(self.data["on"])
        case.contact_losses += 1


class ContactRestored(CaseEvent):
    """恢復聯繫: contact with the person is restored after it was lost."""

    schema = ContactRestoredData
    leads_to = "received"
    allowed_in = statuses("contact_lost")

    def apply(self, case: Any) -> None:
        case.contact_lost_on = None


class Reoffended(CaseEvent):
    """重新犯罪: the person committed a new offence after release."""

    schema = ReoffendedData
    allowed_in = AFTER_RELEASE

    def apply(self, case: Any) -> None:
        on = date.fromisoformat(self.data["on"])
        case.reoffended = True
        # The first re-offence, whatever order the offences were recorded in.
        if case.reoffended_on is None or on < case.reoffended_on:
            case.reoffended_on = on
            case.reoffended_year = on.year
        if on.year not in case.reoffence_years:
            case.reoffence_years = sorted([*case.reoffence_years, on.year])


class AssistanceEnded(CaseEvent):
    """幫教期滿 / 終止: assistance ends and the case closes; nothing is recorded after it."""

    schema = AssistanceEndedData
    leads_to = "closed"
    allowed_in = OPEN

    def apply(self, case: Any) -> None:
        case.end_reason = self.data["reason"]
        case.ended_on = date.fromisoformat(self.data["ended_on"])
        # A closed case no longer holds a place (at a transitional base or elsewhere).
        end_placement(case)


def notice_days(expected_release_date: date, recorded_on: date) -> int:
    """Days between the day a release notice was recorded and the expected release."""
    return (expected_release_date - recorded_on).days


def notice_is_late(expected_release_date: date, recorded_on: date) -> bool:
    """The prison notifies at least RELEASE_NOTICE_MIN_DAYS ahead; the day the notice is
    recorded (the server's clock) decides."""
    return notice_days(expected_release_date, recorded_on) < rules.RELEASE_NOTICE_MIN_DAYS


def reoffended_under_assistance(received_on: date | None, on: date) -> bool:
    """Whether a re-offence on `on` counts in the re-offending rate: the person had been
    received (the rate's population is the people under assistance), on or before that day."""
    return received_on is not None and on >= received_on


def handover_due(released_on: date) -> date:
    """The last day of the handover window (銜接) that opens with the release."""
    return add_days(released_on, rules.HANDOVER_WINDOW_DAYS)


def end_placement(case: Any) -> None:
    case.placement = None
    case.base_id = None
    case.placed_on = None


# --- the aggregate -------------------------------------------------------------------------


class Resettlement(Case):
    """A resettlement and assistance case (`kind: resettlement`)."""

    kind: ClassVar[str] = "resettlement"

    if TYPE_CHECKING:  # set by the events; not dataclass fields of the aggregate
        person: dict[str, Any]
        released_on: date | None
        handover_due: date | None
        received_on: date | None
        category: str | None
        placement: str | None
        placed_on: date | None
        contact_lost_on: date | None
    opening_event = ReleaseNotified
    open_statuses = OPEN
    events = (
        ReleaseNotified,
        PreReleaseAssistanceProvided,
        PersonReleased,
        PersonReceived,
        AssistanceCategorised,
        AssistanceActivityRecorded,
        AssistanceDelegated,
        SkillTrainingCompleted,
        PersonPlaced,
        PlacementEnded,
        ContactLost,
        ContactRestored,
        Reoffended,
        AssistanceEnded,
        TransferProposed,
        TransferAccepted,
        TransferDeclined,
    )

    # Checked as a class on opening: no state yet, only the data and the clock.
    @rule(ReleaseNotified)
    def _notice_dates_not_in_future(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_future(data["person"]["birth_date"], ctx, "person.birth_date")
        if "notified_on" in data:
            require_not_future(data["notified_on"], ctx, "notified_on")

    @rule(PreReleaseAssistanceProvided)
    def _pre_release_assistance_not_in_future(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_future(data["provided_on"], ctx, "provided_on")

    @rule(PersonReleased)
    def _release_not_in_future(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_future(data["released_on"], ctx, "released_on")

    @rule(PersonReceived)
    def _received_after_release(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_before(data["received_on"], self.released_on, "received_on", "the release")
        require_not_future(data["received_on"], ctx, "received_on")

    @rule(PersonReceived)
    def _key_people_are_escorted(self, data: dict[str, Any], ctx: Context) -> None:
        # 必接必送: a person already categorised key when the handover happens is met at the
        # gate and escorted; a self-report is refused. Categorising someone key after a
        # self-reported reception stays allowed: the handover is past, the rule governs it only.
        if self.category in rules.ESCORTED_CATEGORIES and data["method"] != "escorted":
            raise RuleViolation(
                "This person is categorised key (重點): they must be received escorted "
                "(必接必送), not self-reported.",
                code="key_person_not_escorted",
                details={"category": self.category, "method": data["method"]},
            )

    @rule(AssistanceActivityRecorded)
    def _activity_after_release(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_before(data["held_on"], self.released_on, "held_on", "the release")
        require_not_future(data["held_on"], ctx, "held_on")

    @rule(AssistanceDelegated)
    def _delegation_to_another_unit(self, data: dict[str, Any], ctx: Context) -> None:
        # Kept to read old stores; a case now moves only when the receiving unit accepts.
        raise RuleViolation(
            "Assistance moves to another unit by TransferProposed, then TransferAccepted by a "
            "supervisor of the receiving unit; AssistanceDelegated is no longer recorded.",
            code="transfer_required",
            details={"use": ["TransferProposed", "TransferAccepted"]},
        )

    @rule(SkillTrainingCompleted)
    def _training_not_in_future(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_future(data["completed_on"], ctx, "completed_on")

    @rule(PersonPlaced)
    def _one_placement_at_a_time(self, data: dict[str, Any], ctx: Context) -> None:
        if self.placement is not None:
            raise RuleViolation(
                f"The person is already placed ({self.placement}); record PlacementEnded "
                "before a new placement.",
                code="already_placed",
                details={"placement": self.placement},
            )

    @rule(PersonPlaced)
    def _base_named_for_transitional_placement(self, data: dict[str, Any], ctx: Context) -> None:
        needs_base = data["placement"] in rules.PLACEMENTS_WITH_BASE
        if needs_base and not data.get("base_id"):
            raise RuleViolation(
                "A placement at a transitional base (過渡性安置基地) must name the base "
                "('base_id').",
                code="base_id_required",
            )
        if not needs_base and "base_id" in data:
            raise RuleViolation(
                f"'base_id' names a transitional base; a {data['placement']} placement has none.",
                code="base_id_without_transitional_base",
            )

    @rule(PersonPlaced)
    def _placement_after_release(self, data: dict[str, Any], ctx: Context) -> None:
        # A job found between release and reception counts: compare with the release.
        require_not_before(data["placed_on"], self.released_on, "placed_on", "the release")
        require_not_future(data["placed_on"], ctx, "placed_on")

    @rule(PlacementEnded)
    def _placement_ends_only_while_placed(self, data: dict[str, Any], ctx: Context) -> None:
        if self.placement is None:
            raise RuleViolation(
                "The person has no current placement to end.",
                code="not_placed",
            )
        require_not_before(data["ended_on"], self.placed_on, "ended_on", "the placement")
        require_not_future(data["ended_on"], ctx, "ended_on")

    @rule(ContactLost)
    def _contact_lost_after_reception(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_before(data["on"], self.received_on, "on", "the reception")
        require_not_future(data["on"], ctx, "on")

    @rule(ContactRestored)
    def _contact_restored_after_loss(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_before(data["on"], self.contact_lost_on, "on", "the loss of contact")
        require_not_future(data["on"], ctx, "on")

    @rule(Reoffended)
    def _reoffence_after_release(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_before(data["on"], self.released_on, "on", "the release")
        require_not_future(data["on"], ctx, "on")

    @rule(AssistanceEnded)
    def _period_completed_after_the_assistance_period(
        self, data: dict[str, Any], ctx: Context
    ) -> None:
        if data["reason"] != "period_completed":
            return
        years = rules.ASSISTANCE_PERIOD_YEARS
        if self.released_on is None:
            raise RuleViolation(
                f"The assistance period ({years} years) runs from release; "
                "this person has not been released yet.",
                code="assistance_period_not_completed",
            )
        ends_on = add_years(self.released_on, years)
        if data["ended_on"] < ends_on:
            raise RuleViolation(
                f"The assistance period ({years} years from release) ends on "
                f"{ends_on.isoformat()}; end it earlier only for death or another reason.",
                code="assistance_period_not_completed",
                details={"period_ends_on": ends_on.isoformat()},
            )

    @rule(AssistanceEnded)
    def _end_after_release(self, data: dict[str, Any], ctx: Context) -> None:
        require_not_before(data["ended_on"], self.released_on, "ended_on", "the release")
        require_not_future(data["ended_on"], ctx, "ended_on")

    def derived(self, now: datetime) -> dict[str, Any]:
        today = cst_date(now)
        return {
            # 漏管: released, not received, and the handover window has passed.
            "unreceived_after_window": self.status == "released"
            and self.handover_due is not None
            and today > self.handover_due,
            # 脫管: received, then contact lost and not restored.
            "contact_lost": self.status == "contact_lost",
        }

    def names(self) -> list[str]:
        return [self.person["name"]]
