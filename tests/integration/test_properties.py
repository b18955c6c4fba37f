"""Property tests: random sequences of valid and invalid commands, per case kind, thrown at
the application service on the SQLite store.

For every example a new case is opened in one store shared by the module (a fresh store
per example would be too slow), then random commands follow: event types of the kind
(and some it does not have), data built from the kind's own schemas or junk, actors in and
out of jurisdiction, stale and current expected versions, idempotent retries, and the
clock moving on. After every command:

(c) a refusal left the stream and the global log as they were;
(b) no invariant of DOMAIN.md broke;
and at the end of the example:
(a) the state the service returns equals the state rebuilt from the stored events, now
    and at a version drawn at random, and every answer the service gave is in the history.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields, validate

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from casetrail.events import Appended
from domain import rules
from domain.case import Actor, Case, CaseOpened
from domain.clock import FixedClock, add_days, add_months, add_years, cst_date
from domain.errors import CasetrailError
from domain.kinds import KINDS
from domain.schemas import ID_NUMBER, PHONE, UNIT_CODE
from tests.dispute_builders import registration
from tests.units import TEST_UNITS

BASE = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
CASE_UNIT = "320102001"
WORKER = Actor(user_id="p_worker", role="caseworker", unit=CASE_UNIT)
AUDITOR = Actor(user_id="p_audit", role="auditor", unit="320000")
ACTORS = [
    WORKER,
    WORKER,
    WORKER,
    Actor(user_id="p_county_worker", role="caseworker", unit="320102"),
    Actor(user_id="p_township_super", role="supervisor", unit=CASE_UNIT),
    Actor(user_id="p_county_super", role="supervisor", unit="320102"),
    Actor(user_id="p_county_super", role="supervisor", unit="320102"),
    Actor(user_id="p_province_super", role="supervisor", unit="320000"),
    Actor(user_id="p_outsider", role="caseworker", unit="320104"),
    AUDITOR,
]
SUPERVISORS = [actor for actor in ACTORS if actor.role == "supervisor"]
UNITS = ["320102001", "320102001001", "320102", "320104002", "320102999"]
IN_PROVINCE = "江蘇省南京市玄武區梅園新村街道大悲巷1號"
OUT_OF_PROVINCE = "上海市黃浦區南京東路1號"
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REFUSAL_STATUSES = {403, 404, 409, 422}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Casetrail]:
    data_dir: Path = tmp_path_factory.mktemp("properties") / "var"
    ct = bootstrap(Settings(data_dir=data_dir), clock=FixedClock(BASE))
    ct.directory.load_units(TEST_UNITS)
    try:
        yield ct
    finally:
        ct.close()


# --- data drawn from the kinds' own schemas ----------------------------------------------------


JUNK_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.just("x" * 4001),
    st.just("2026-02-30"),
    st.sampled_from(["", "320102", "ordinary", "2026-03-02"]),
)
JUNK = st.one_of(
    JUNK_SCALAR,
    st.lists(JUNK_SCALAR, max_size=3),
    st.dictionaries(st.text(max_size=8), JUNK_SCALAR, max_size=4),
)


def dates_in(state: dict[str, Any]) -> list[date]:
    """Every ISO date in the state (top level and one level down): anchors for new dates."""
    found = []
    for value in state.values():
        values = value.values() if isinstance(value, dict) else [value]
        for item in values:
            if isinstance(item, str) and ISO_DAY.match(item):
                try:
                    found.append(date.fromisoformat(item))
                except ValueError:  # free text that looks like a day (a certificate_no)
                    continue
    return found


def draw_date(draw: Callable[..., Any], today: date, state: dict[str, Any]) -> str:
    if draw(st.booleans()):
        return (today - timedelta(days=draw(st.integers(0, 3)))).isoformat()
    anchor = draw(st.sampled_from([today, *dates_in(state)]))
    offset = draw(
        st.one_of(
            st.integers(-40, 40),
            st.sampled_from([-31, -30, -11, -10, -7, 7, 10, 11, 30, 31, 61, 62, 92, 1826]),
        )
    )
    return (anchor + timedelta(days=offset)).isoformat()


def draw_value(
    draw: Callable[..., Any], name: str, spec: fields.Field, today: date, state: dict[str, Any]
) -> Any:
    validators = list(spec.validators)
    lengths = [v for v in validators if isinstance(v, validate.Length)]
    if isinstance(spec, fields.Nested):
        nested = spec.schema
        assert isinstance(nested, Schema)
        return draw_schema(draw, nested, today, state)
    if isinstance(spec, fields.List):
        low = lengths[0].min if lengths and lengths[0].min is not None else 0
        size = draw(st.integers(low, low + 2))
        assert spec.inner is not None
        return [draw_value(draw, name, spec.inner, today, state) for _ in range(size)]
    if isinstance(spec, fields.Date):
        if name == "birth_date":
            return date(draw(st.integers(1950, 2010)), 6, 15).isoformat()
        return draw_date(draw, today, state)
    if isinstance(spec, fields.Boolean):
        return draw(st.booleans())
    ranges = [v for v in validators if isinstance(v, validate.Range)]
    if isinstance(spec, fields.Integer):
        low = ranges[0].min if ranges and ranges[0].min is not None else 0
        return draw(st.integers(int(low), int(low) + 8))
    if isinstance(spec, fields.Float):
        return draw(st.sampled_from([0.5, 1.0, 2.5, 4.0, 8.0]))
    for validator in validators:
        if isinstance(validator, validate.OneOf):
            return draw(st.sampled_from(list(validator.choices)))
        if isinstance(validator, validate.Regexp):
            pattern = validator.regex.pattern
            if pattern == UNIT_CODE:
                return draw(st.sampled_from(UNITS))
            if pattern == ID_NUMBER:
                return draw(st.sampled_from(["32010219900101123X", "320102200801011234"]))
            if pattern == PHONE:
                return "13912345678"
    if name in ("household_address", "residence_address"):
        return draw(st.sampled_from([IN_PROVINCE, IN_PROVINCE, OUT_OF_PROVINCE]))
    return draw(st.sampled_from(["甲", "调解员甲", "notes of the day", "住建局", "街道办"]))


def draw_schema(
    draw: Callable[..., Any], schema: Schema, today: date, state: dict[str, Any]
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, spec in schema.fields.items():
        if spec.dump_only:
            continue
        if not spec.required and draw(st.integers(0, 3)) > 0:
            continue
        data[spec.data_key or name] = draw_value(draw, name, spec, today, state)
    return data


def draw_payload(
    draw: Callable[..., Any], case_class: type[Case], event_type: str, today: date, state: Any
) -> Any:
    """Mostly valid data for `event_type`; sometimes a valid one spoilt, sometimes junk."""
    try:
        event_class = case_class.event_class(event_type)
    except CasetrailError:
        return draw(st.one_of(JUNK, st.just({})))
    valid = draw_schema(draw, event_class.schema_instance(), today, state)
    roll = draw(st.integers(0, 19))
    if roll < 16:
        return valid
    if roll < 19 and valid:
        spoilt = dict(valid)
        key = draw(st.sampled_from(sorted(spoilt)))
        how = draw(st.sampled_from(["drop", "junk", "extra"]))
        if how == "drop":
            del spoilt[key]
        elif how == "junk":
            spoilt[key] = draw(JUNK_SCALAR)
        else:
            spoilt["unexpected_field"] = draw(JUNK_SCALAR)
        return spoilt
    return draw(JUNK)


# --- the kinds ------------------------------------------------------------------------------------


@dataclass
class Kind:
    """What the property test needs of a case kind: how to open one, and its invariants."""

    name: str
    opening: Callable[[Callable[..., Any], date], dict[str, Any]]
    invariants: Callable[[dict[str, Any] | None, dict[str, Any], date], None]
    statuses: frozenset[str]
    weights: dict[str, int] = field(default_factory=dict)
    extra_event_types: list[str] = field(default_factory=lambda: ["NoSuchEvent"])

    @property
    def case_class(self) -> type[Case]:
        return KINDS[self.name]

    @property
    def terminal(self) -> frozenset[str]:
        return self.statuses - self.case_class.open_statuses


def day_of(state: dict[str, Any], name: str) -> date | None:
    value = state.get(name)
    return date.fromisoformat(value) if value else None


# Disputes (DOMAIN.md section 1).

DISPUTE_STATUSES = frozenset(
    {
        "registered",
        "triaged",
        "assigned",
        "in_mediation",
        "returned",
        "agreement_reached",
        "mediation_failed",
        "refused",
        "withdrawn",
        "closed",
    }
)
DISPUTE_TRANSITIONS = {
    "registered": {"triaged", "refused", "withdrawn"},
    "triaged": {"assigned", "refused", "withdrawn"},
    "assigned": {"in_mediation", "returned", "mediation_failed", "refused", "withdrawn"},
    "in_mediation": {"agreement_reached", "mediation_failed", "returned", "withdrawn"},
    "returned": {"assigned", "refused", "withdrawn"},
    "agreement_reached": {"closed"},
    "mediation_failed": {"closed"},
    "refused": {"closed"},
    "withdrawn": {"closed"},
    "closed": set(),
}


def dispute_opening(draw: Callable[..., Any], today: date) -> dict[str, Any]:
    return registration(
        center_unit=CASE_UNIT,
        category=draw(st.sampled_from(sorted(rules.DISPUTE_CATEGORIES))),
        scope=draw(st.sampled_from(rules.DISPUTE_SCOPES)),
        source=draw(st.sampled_from(rules.DISPUTE_SOURCES)),
        people_involved=draw(st.integers(2, 8)),
    )


def dispute_invariants(before: dict[str, Any] | None, after: dict[str, Any], today: date) -> None:
    status = after["status"]
    assert status in DISPUTE_STATUSES
    if before is not None and before["status"] != status:
        assert status in DISPUTE_TRANSITIONS[before["status"]], (before["status"], status)
    registered_on = day_of(after, "registered_on")
    deadline = day_of(after, "deadline")
    assert registered_on is not None and deadline is not None
    limits = rules.MEDIATION_TIME_LIMITS[after["time_limit_class"]]
    # The deadline is never past registration + 2 months, nor short of the ordinary limit.
    assert deadline <= add_months(registered_on, limits.max_months)
    assert deadline >= add_days(registered_on, limits.ordinary_days)
    if not after["deadline_extended"]:
        major = after["complexity"] == "major" or after["scope"] == "cross_region"
        days = limits.major_days if major else limits.ordinary_days
        assert deadline == add_days(registered_on, days)
    assert after["collective"] == (after["people_involved"] >= rules.COLLECTIVE_DISPUTE_THRESHOLD)
    outcome = after["outcome"]
    assert (outcome is None) == (
        status in ("registered", "triaged", "assigned", "in_mediation", "returned")
    )
    if outcome is not None:
        assert status in (outcome, "closed")
    if outcome == "agreement_reached":  # an agreement implies at least one session
        assert after["sessions"] >= 1
    if outcome == "refused":  # a refusal ends the case unmediated
        assert after["sessions"] == 0
    if after["judicial_confirmation_requested_on"] is not None:
        assert outcome == "agreement_reached"
        effective = day_of(after, "agreement_effective_on")
        requested = day_of(after, "judicial_confirmation_requested_on")
        assert effective is not None and requested is not None
        assert effective <= requested <= add_days(effective, 30)
    assert (after["follow_ups"] > 0) <= (status == "closed")
    assert after["last_satisfaction"] in (None, 1, 2, 3, 4, 5)
    if status == "closed":
        assert after["concluded_on"] == after["closed_on"]
        assert after["on_time"] == (day_of(after, "concluded_on") <= deadline)  # type: ignore[operator]
        assert after["overdue"] is False
    else:
        assert after["on_time"] is None
        assert after["overdue"] == (today > deadline)
    if before is not None and before["status"] == "closed":
        # A closed dispute never changes but for follow-ups, judicial confirmation and a
        # turn into a criminal case (民轉刑, recorded after the close too).
        unchanged = {"follow_ups", "last_satisfaction", "agreement_performed", "turned_criminal_on"}
        unchanged |= {"turned_criminal_grade"}
        unchanged |= {"judicial_confirmation_requested_on", "version", "last_event_at"}
        assert {k: v for k, v in before.items() if k not in unchanged} == {
            k: v for k, v in after.items() if k not in unchanged
        }


DISPUTE = Kind(
    "dispute",
    dispute_opening,
    dispute_invariants,
    DISPUTE_STATUSES,
    weights={
        "DisputeTriaged": 4,
        "DisputeAssigned": 4,
        "MediationSessionHeld": 4,
        "AgreementReached": 6,
        "DisputeReturned": 2,
        "JointHandlingConvened": 4,
        "DeadlineExtended": 2,
        "JudicialConfirmationRequested": 3,
        "DisputeClosed": 3,
        "FollowUpVisited": 3,
    },
)


# Resettlement (DOMAIN.md section 2) and correction (section 3), when their kinds exist.


def person(draw: Callable[..., Any], *, birth: str = "1990-01-01") -> dict[str, Any]:
    return {
        "name": "王某某",
        "id_number": "32010219900101123X",
        "gender": draw(st.sampled_from(rules.GENDERS)),
        "birth_date": birth,
        "household_address": IN_PROVINCE,
        "residence_address": IN_PROVINCE,
    }


def resettlement_opening(draw: Callable[..., Any], today: date) -> dict[str, Any]:
    return {
        "person": person(draw),
        "release_type": draw(st.sampled_from(rules.RELEASE_TYPES)),
        "institution": "江蘇省某監獄",
        "expected_release_date": (today + timedelta(days=draw(st.integers(-3, 60)))).isoformat(),
        "offence": "盜竊罪",
    }


RESETTLEMENT_STATUSES = frozenset({"notified", "released", "received", "contact_lost", "closed"})


def resettlement_invariants(
    before: dict[str, Any] | None, after: dict[str, Any], today: date
) -> None:
    assert after["status"] in RESETTLEMENT_STATUSES
    if before is not None:
        if before["status"] != "notified":  # released once, never notified again
            assert after["status"] != "notified"
        if before["status"] == "closed":
            assert after["status"] == "closed"
        if before["ever_placed"]:
            assert after["ever_placed"]
    # The prison notifies at least 30 days ahead; a later notice is flagged.
    # Judged by the day the notice was recorded (the server's clock).
    expected, notified = day_of(after, "expected_release_date"), day_of(after, "notice_recorded_on")
    assert expected is not None and notified is not None
    assert after["late_notice"] == ((expected - notified).days < rules.RELEASE_NOTICE_MIN_DAYS)
    released, received = day_of(after, "released_on"), day_of(after, "received_on")
    if released is not None:
        assert day_of(after, "handover_due") == add_days(released, rules.HANDOVER_WINDOW_DAYS)
        assert day_of(after, "assistance_period_ends_on") == add_years(
            released, rules.ASSISTANCE_PERIOD_YEARS
        )
    if received is not None:  # received only after release
        assert released is not None and received >= released
        assert after["late_handover"] == (received > add_days(released, rules.HANDOVER_WINDOW_DAYS))
    assert after["contact_lost"] == (after["status"] == "contact_lost")
    if after["status"] == "closed":
        assert after["end_reason"] in rules.ASSISTANCE_END_REASONS
        if after["end_reason"] == "period_completed":
            ends = day_of(after, "assistance_period_ends_on")
            ended = day_of(after, "ended_on")
            assert ends is not None and ended is not None and ended >= ends


def correction_opening(draw: Callable[..., Any], today: date) -> dict[str, Any]:
    effective = today - timedelta(days=draw(st.integers(0, 12)))
    term_days = draw(st.sampled_from([20, 90, 365]))
    return {
        "person": person(draw),
        "correction_type": draw(st.sampled_from(rules.CORRECTION_TYPES)),
        "deciding_authority": "南京市玄武區人民法院",
        "decision_effective_on": effective.isoformat(),
        "offence_date": "2025-06-01",
        "term_start": effective.isoformat(),
        "term_end": (effective + timedelta(days=term_days)).isoformat(),
        "eligibility": {"basis": "household", "evidence": "常住人口登記卡"},
    }


CORRECTION_STATUSES = frozenset({"received", "under_correction", "completed", "committed", "died"})


def correction_invariants(
    before: dict[str, Any] | None, after: dict[str, Any], today: date
) -> None:
    assert after["status"] in CORRECTION_STATUSES
    if before is not None:
        if before["status"] in ("completed", "committed", "died"):
            assert after["status"] == before["status"]
        if before["status"] == "under_correction":
            assert after["status"] != "received"
        for rung, count in before["sanctions"].items():  # the ladder is only climbed
            assert after["sanctions"][rung] >= count
    effective = day_of(after, "decision_effective_on")
    assert effective is not None
    assert day_of(after, "report_in_due") == add_days(effective, rules.REPORT_IN_DAYS)
    if after["status"] in ("completed", "committed", "died"):
        assert after["ended_on"] is not None
    if after["status"] == "completed":  # 按期解除: not before the term ends
        ended_on, term_end = day_of(after, "ended_on"), day_of(after, "term_end")
        assert ended_on is not None and term_end is not None and ended_on >= term_end


RESETTLEMENT = Kind(
    "resettlement",
    resettlement_opening,
    resettlement_invariants,
    RESETTLEMENT_STATUSES,
    weights={
        "PersonReleased": 4,
        "PersonReceived": 6,
        "AssistanceActivityRecorded": 3,
        "PersonPlaced": 3,
        "PlacementEnded": 2,
        "ContactLost": 2,
        "ContactRestored": 3,
    },
)
CORRECTION = Kind(
    "correction",
    correction_opening,
    correction_invariants,
    CORRECTION_STATUSES,
    weights={
        "SubjectReportedIn": 6,
        "CheckInRecorded": 2,
        "LeaveRequested": 3,
        "LeaveApproved": 3,
        "LeaveReturned": 2,
        "ElectronicMonitoringEnded": 2,
        "CorrectionCompleted": 3,
    },
)


# --- the property -------------------------------------------------------------------------------


def replay(ct: Casetrail, case_id: str, lte: int | None = None) -> Any:
    """The case rebuilt from its stored events alone (no snapshot, no repository)."""
    case: Any = None
    for event in ct.app.events.get(UUID(case_id), lte=lte):
        case = event.mutate(case)  # type: ignore[attr-defined]
    return case


def stream(ct: Casetrail, case_id: str) -> list[tuple[int, str]]:
    return [
        (event.originator_version, type(event).__name__)
        for event in ct.app.events.get(UUID(case_id))
    ]


def current_state(ct: Casetrail, case_id: str) -> dict[str, Any]:
    case: Any = ct.app.repository.get(UUID(case_id))
    state: dict[str, Any] = case.state(ct.clock.now())
    return state


@dataclass
class Sent:
    """An accepted command, kept to retry it."""

    actor: Actor
    event_type: str
    data: Any
    expected_version: int | None
    key: str
    answer: Appended


def run_random_commands(ct: Casetrail, kind: Kind, draw: Callable[..., Any]) -> None:
    clock: Any = ct.clock
    clock.set(BASE + timedelta(days=draw(st.integers(0, 400)), hours=draw(st.integers(0, 23))))
    service = ct.service
    opening_event = kind.case_class.opening_event.__name__
    opened = service.open_case(
        WORKER, kind.name, CASE_UNIT, opening_event, kind.opening(draw, cst_date(clock.now()))
    )
    case_id = opened.id
    state = current_state(ct, case_id)
    kind.invariants(None, state, cst_date(clock.now()))
    answers = {1: opened.event}
    keyed: list[Sent] = []
    event_types = [e.__name__ for e in kind.case_class.events] + kind.extra_event_types
    supervisors_only = {e.__name__ for e in kind.case_class.events if e.supervisors_only}
    steps = draw(st.integers(8, 40))
    for step in range(steps):
        clock.advance(
            draw(st.sampled_from([timedelta(0)] * 3 + [timedelta(hours=5), timedelta(days=1)]))
            + timedelta(days=draw(st.sampled_from([0, 0, 0, 2, 6, 12, 31])))
        )
        today = cst_date(clock.now())
        head = ct.app.recorder.max_notification_id() or 0
        events_before = stream(ct, case_id)
        version = len(events_before)

        if keyed and draw(st.integers(0, 9)) == 0:
            # An idempotent retry: the first answer, and nothing appended.
            sent = draw(st.sampled_from(keyed))
            again = service.append(
                sent.actor,
                case_id,
                sent.event_type,
                sent.data,
                expected_version=sent.expected_version,
                idempotency_key=sent.key,
            )
            assert again.replayed
            assert (again.version, again.position, again.event) == (
                sent.answer.version,
                sent.answer.position,
                sent.answer.event,
            )
            assert (ct.app.recorder.max_notification_id() or 0) == head
            assert stream(ct, case_id) == events_before
            continue

        # Mostly an event the current status allows, so that examples reach deep states.
        allowed = [
            e.__name__
            for e in kind.case_class.events
            if not issubclass(e, CaseOpened)
            and (e.allowed_in is None or state["status"] in e.allowed_in)
        ]
        pool = allowed if allowed and draw(st.integers(0, 3)) > 0 else event_types
        # Events that move the case on weigh more than those that end or merely annotate it.
        pool = [name for name in pool for _ in range(kind.weights.get(name, 1))]
        event_type = draw(st.sampled_from(pool))
        actor = draw(st.sampled_from(ACTORS))
        if event_type in supervisors_only and draw(st.integers(0, 3)) > 0:
            actor = draw(st.sampled_from(SUPERVISORS))
        data = draw_payload(draw, kind.case_class, event_type, today, state)
        expected_version = draw(st.sampled_from([None, None, None, version, version, version - 1]))
        key = draw(st.sampled_from([None, None, f"{case_id}/{step}"]))
        reused = keyed and draw(st.integers(0, 14)) == 0
        if reused:  # a used key with another payload must be refused
            key = keyed[0].key
            actor = keyed[0].actor
            data = {"another": "payload", "step": step}
        try:
            answer = service.append(
                actor,
                case_id,
                event_type,
                data,
                expected_version=expected_version,
                idempotency_key=key,
            )
        except CasetrailError as refusal:
            # (c) A refusal leaves the stream and the global log as they were.
            assert refusal.status in REFUSAL_STATUSES
            assert isinstance(refusal.code, str) and refusal.code
            assert (ct.app.recorder.max_notification_id() or 0) == head
            assert stream(ct, case_id) == events_before
            if reused:
                assert refusal.code == "idempotency_key_reused"
            elif expected_version == version - 1:
                assert refusal.code in (
                    "version_conflict",
                    "outside_jurisdiction",
                    "case_not_found",
                    "role_cannot_write",
                )
            continue
        assert not reused
        assert not answer.replayed
        assert answer.version == version + 1
        assert answer.event["type"] == event_type
        assert (ct.app.recorder.max_notification_id() or 0) == answer.position > head
        assert stream(ct, case_id) == [*events_before, (version + 1, event_type)]
        answers[answer.version] = answer.event
        if key is not None:
            keyed.append(Sent(actor, event_type, data, expected_version, key, answer))
        # (b) The invariants of DOMAIN.md hold after every accepted event.
        new_state = current_state(ct, case_id)
        assert new_state["version"] == answer.version
        kind.invariants(state, new_state, today)
        state = new_state

    # (a) The service's state is the state rebuilt from the stored events, now and before.
    rebuilt = replay(ct, case_id)
    assert ct.reads.case_state(AUDITOR, case_id) == rebuilt.state(clock.now())
    version = draw(st.integers(1, rebuilt.version))
    past = replay(ct, case_id, lte=version)
    assert ct.reads.case_state(AUDITOR, case_id, as_of_version=version) == past.state(
        past.last_event_at
    )
    # Every answer the service gave is the event as the history keeps it.
    history = ct.reads.history(AUDITOR, case_id)
    assert [event["version"] for event in history] == list(range(1, rebuilt.version + 1))
    assert {event["version"]: event for event in history} == answers


PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_random_dispute_commands_keep_every_invariant(
    store: Casetrail, data: st.DataObject
) -> None:
    run_random_commands(store, DISPUTE, data.draw)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_random_resettlement_commands_keep_every_invariant(
    store: Casetrail, data: st.DataObject
) -> None:
    if "resettlement" not in KINDS:
        pytest.skip("the resettlement kind is not registered yet")
    run_random_commands(store, RESETTLEMENT, data.draw)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_random_correction_commands_keep_every_invariant(
    store: Casetrail, data: st.DataObject
) -> None:
    if "correction" not in KINDS:
        pytest.skip("the correction kind is not registered yet")
    run_random_commands(store, CORRECTION, data.draw)
