"""Hand-downs and transfers: a dispute assigned to a township is handled there too (分流指派),
and a case changes hands only when a supervisor of the receiving unit accepts (移交)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.case import Actor, Case, Context
from domain.correction import Correction
from domain.dispute import Dispute
from domain.errors import CasetrailError, NotPermitted
from tests.dispute_builders import event_data, registration
from tests.domain.test_correction import reception

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
CENTRE = "320102"
TOWNSHIP = "320102001"
OTHER_COUNTY = "320104"
CENTRE_WORKER = Actor(user_id="u_centre", role="caseworker", unit=CENTRE)
CENTRE_SUPERVISOR = Actor(user_id="u_centre_sup", role="supervisor", unit=CENTRE)
OTHER_SUPERVISOR = Actor(user_id="u_other_sup", role="supervisor", unit=OTHER_COUNTY)


def at(actor: Actor) -> Context:
    return Context(actor=actor, now=NOW)


def record(case: Case, event_type: str, actor: Actor, **changes: Any) -> None:
    case.record(event_type, event_data(event_type, NOW.date(), **changes), at(actor))


def refused(case: Case, event_type: str, actor: Actor, code: str, **changes: Any) -> None:
    version, state = case.version, case.state(NOW)
    with pytest.raises(CasetrailError) as refusal:
        record(case, event_type, actor, **changes)
    assert refusal.value.code == code, refusal.value.message
    assert (case.version, case.state(NOW)) == (version, state)


def registered() -> Dispute:
    return Dispute.open(CENTRE, registration(), at(CENTRE_WORKER))


def handed_down() -> Dispute:
    case = registered()
    record(case, "DisputeTriaged", CENTRE_WORKER)
    record(case, "DisputeAssigned", CENTRE_WORKER, assigned_unit=TOWNSHIP)
    return case


# --- the hand-down (分流指派) -----------------------------------------------------------


def test_a_dispute_handed_down_is_handled_by_the_township_and_the_centre() -> None:
    case = handed_down()
    assert case.acting_units("MediationSessionHeld") == (CENTRE, TOWNSHIP)
    assert case.acting_units("AgreementReached") == (CENTRE, TOWNSHIP)
    assert case.acting_units("DisputeReturned") == (CENTRE, TOWNSHIP)
    assert case.reach_units() == (CENTRE, TOWNSHIP)


def test_the_centre_alone_triages_assigns_extends_and_closes() -> None:
    case = handed_down()
    for event_type in ("DisputeAssigned", "DeadlineExtended", "DisputeClosed", "FollowUpVisited"):
        assert case.acting_units(event_type) == (CENTRE,)


def test_a_dispute_not_handed_down_is_the_centres_alone() -> None:
    case = registered()
    assert case.acting_units("MediationSessionHeld") == (CENTRE,)
    assert case.reach_units() == (CENTRE,)


# --- transfers (移交) --------------------------------------------------------------------


def test_a_proposed_transfer_leaves_the_case_where_it_is() -> None:
    case = registered()
    record(case, "TransferProposed", CENTRE_SUPERVISOR)
    assert case.unit == CENTRE
    assert case.pending_transfer is not None
    assert case.pending_transfer["to_unit"] == OTHER_COUNTY
    assert case.reach_units() == (CENTRE, OTHER_COUNTY)
    # Only the receiving unit answers it.
    assert case.acting_units("TransferAccepted") == (OTHER_COUNTY,)
    assert case.acting_units("DisputeTriaged") == (CENTRE,)


def test_an_accepted_transfer_moves_the_case_and_keeps_both_acts() -> None:
    case = registered()
    record(case, "TransferProposed", CENTRE_SUPERVISOR)
    record(case, "TransferAccepted", OTHER_SUPERVISOR)
    assert case.unit == OTHER_COUNTY
    assert case.state(NOW)["center_unit"] == OTHER_COUNTY
    assert case.pending_transfer is None
    [transfer] = case.transfers
    assert transfer["from_unit"] == CENTRE
    assert transfer["proposed_by"] == "u_centre_sup"
    assert transfer["accepted_by"] == "u_other_sup"
    assert case.acting_units("DisputeTriaged") == (OTHER_COUNTY,)


def test_a_declined_transfer_leaves_the_case_and_ends_the_proposal() -> None:
    case = registered()
    record(case, "TransferProposed", CENTRE_SUPERVISOR)
    record(case, "TransferDeclined", OTHER_SUPERVISOR)
    assert case.unit == CENTRE
    assert case.pending_transfer is None
    assert case.reach_units() == (CENTRE,)


def test_a_transfer_is_proposed_and_answered_by_supervisors() -> None:
    case = registered()
    refused(case, "TransferProposed", CENTRE_WORKER, "supervisor_only")
    record(case, "TransferProposed", CENTRE_SUPERVISOR)
    worker = Actor(user_id="u_w", role="caseworker", unit=OTHER_COUNTY)
    refused(case, "TransferAccepted", worker, "supervisor_only")


def test_the_proposer_does_not_accept_their_own_transfer() -> None:
    case = registered()
    record(case, "TransferProposed", CENTRE_SUPERVISOR)
    with pytest.raises(NotPermitted) as refusal:
        record(case, "TransferAccepted", CENTRE_SUPERVISOR)
    assert refusal.value.code == "transfer_accepted_by_proposer"


def test_one_transfer_at_a_time_and_answers_name_it() -> None:
    case = registered()
    refused(case, "TransferAccepted", OTHER_SUPERVISOR, "no_pending_transfer")
    refused(case, "TransferDeclined", OTHER_SUPERVISOR, "no_pending_transfer")
    record(case, "TransferProposed", CENTRE_SUPERVISOR)
    refused(case, "TransferProposed", CENTRE_SUPERVISOR, "transfer_pending", to_unit="320105")
    refused(case, "TransferAccepted", OTHER_SUPERVISOR, "transfer_unit_mismatch", to_unit="320105")


@pytest.mark.parametrize("to_unit", [CENTRE, "320100", "320000"])
def test_a_case_is_not_transferred_to_itself_or_up_its_chain(to_unit: str) -> None:
    refused(
        registered(),
        "TransferProposed",
        CENTRE_SUPERVISOR,
        "transfer_up_the_chain",
        to_unit=to_unit,
    )


def test_a_dispute_handed_down_is_not_transferred_nor_assigned_while_a_transfer_waits() -> None:
    refused(handed_down(), "TransferProposed", CENTRE_SUPERVISOR, "not_allowed_in_status")
    case = registered()
    record(case, "DisputeTriaged", CENTRE_WORKER)
    record(case, "TransferProposed", CENTRE_SUPERVISOR)
    refused(case, "DisputeAssigned", CENTRE_WORKER, "transfer_pending")


def test_a_correction_case_moves_when_the_new_residence_accepts() -> None:
    case = Correction.open(TOWNSHIP, reception(), at(CENTRE_WORKER))
    supervisor = Actor(user_id="u_t", role="supervisor", unit=TOWNSHIP)
    case.record("TransferProposed", {"to_unit": "320104002", "reason": "遷居"}, at(supervisor))
    assert case.unit == TOWNSHIP
    other = Actor(user_id="u_q", role="supervisor", unit="320104002")
    case.record("TransferAccepted", {"to_unit": "320104002"}, at(other))
    assert case.unit == "320104002"
    assert case.state(NOW)["residence_changes"] == 1
