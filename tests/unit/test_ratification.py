"""Standing-order approvals are judged as decisions, not by their air time: ratify and retract work while the broadcast
is live and after it has finished (completed or expired); the unratified list keeps them until they are settled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keng.domain.broadcast import Broadcast
from keng.domain.errors import IllegalTransition, InvalidValue, NotAuthorised, OutOfScope
from tests.unit.helpers import LATER, content, staff, submitted

APPROVER = staff("hung", "approver")
SUMMARY: Any = {"outcome": "complete", "targeted": 1, "online": 1, "received": 1, "playing": 0, "played": 1,
                "failed": 0, "unreachable": 0, "retries": 0, "latency_ms": {}}  # fmt: skip


def auto_approved() -> Broadcast:
    b = submitted(priority="emergency")
    b.auto_approve(rule="kttv-extreme", now=LATER)
    return b


def completed() -> Broadcast:
    b = auto_approved()
    b.open_dispatch(now=LATER)
    b.complete(SUMMARY)
    return b


def expired() -> Broadcast:
    b = auto_approved()
    assert b.expire(now=b.expires_at + timedelta(seconds=1))
    return b


@pytest.mark.parametrize("build", [auto_approved, completed, expired], ids=["approved", "completed", "expired"])
def test_a_standing_order_approval_awaits_ratification_live_and_after_it_finished(build: Any) -> None:
    b = build()
    assert b.awaiting_ratification
    assert b.ratification_due(timedelta(minutes=30)) == b.approvals[0]["at"] + timedelta(minutes=30)
    state = b.state
    b.ratify(by=APPROVER)
    assert (b.state, b.approvals[0]["ratified_by"], b.awaiting_ratification) == (state, "hung", False)
    assert b.ratification_due(timedelta(minutes=30)) is None
    with pytest.raises(IllegalTransition, match="no standing-order approval awaiting ratification"):
        b.ratify(by=APPROVER)


def test_a_retraction_after_completion_records_the_judgement_and_leaves_the_state() -> None:
    b = completed()
    assert b.retract(by=APPROVER, reason="Cảnh báo không đúng khu vực") is False
    assert (b.state, b.approvals[0]["retracted_by"], b.awaiting_ratification) == ("completed", "hung", False)
    with pytest.raises(IllegalTransition):
        b.ratify(by=APPROVER)
    with pytest.raises(IllegalTransition):
        b.retract(by=APPROVER, reason="again")


def test_a_retraction_of_a_live_broadcast_cancels_it_and_on_air_asks_for_stop() -> None:
    waiting = auto_approved()
    assert waiting.retract(by=APPROVER, reason="Nhầm") is False
    assert (waiting.state, waiting.end_reason) == ("cancelled", "Nhầm")
    on_air = auto_approved()
    on_air.open_dispatch(now=LATER)
    assert on_air.retract(by=APPROVER, reason="Nhầm") is True
    assert on_air.state == "cancelled" and not on_air.awaiting_ratification


def test_a_cancelled_or_person_approved_broadcast_has_nothing_to_ratify() -> None:
    cancelled = auto_approved()
    cancelled.cancel(by=APPROVER, reason="Bên gửi hủy")
    approved = submitted()
    approved.approve(by=APPROVER, now=LATER)
    for b in (cancelled, approved):
        assert not b.awaiting_ratification
        with pytest.raises(IllegalTransition):
            b.ratify(by=APPROVER)
        with pytest.raises(IllegalTransition):
            b.retract(by=APPROVER, reason="x")


def test_a_revision_after_completion_is_impossible_so_the_finished_approval_stays_the_one_judged() -> None:
    b = completed()
    with pytest.raises(IllegalTransition):
        b.revise(content(title="Sửa"), by=staff("lan", "drafter"))
    assert b.awaiting_ratification


@pytest.mark.parametrize("verb", ["ratify", "retract"])
def test_after_completion_authority_is_still_checked(verb: str) -> None:
    b = completed()
    before = len(b.collect_events())
    act = {"ratify": lambda who: b.ratify(by=who), "retract": lambda who: b.retract(by=who, reason="x")}[verb]
    with pytest.raises(NotAuthorised):
        act(staff("lan", "drafter"))
    with pytest.raises(OutOfScope):
        act(staff("ha", "approver", wards=["00598"]))
    assert before > 0 and b.collect_events() == [] and b.awaiting_ratification


def test_a_retraction_needs_a_reason() -> None:
    with pytest.raises(InvalidValue):
        completed().retract(by=APPROVER, reason="  ")
