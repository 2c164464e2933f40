"""Every rule of the Broadcast lifecycle, one behaviour per test."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keng.domain.broadcast import Broadcast
from keng.domain.errors import (
    ExpiredBroadcast,
    IllegalTransition,
    InvalidValue,
    NotApproved,
    NotAuthorised,
    OutOfScope,
    SelfApprovalRefused,
)
from keng.domain.ids import sourced_broadcast_id
from tests.unit.helpers import LATER, NOW, content, staff, submitted

APPROVER = staff("hung", "approver")


def test_draft_starts_in_draft_state_with_the_drafter_as_author() -> None:
    lan = staff("lan", "drafter")
    b = Broadcast.draft(content(), by=lan)
    assert (b.state, b.drafted_by, b.authors, b.revision) == ("draft", "lan", ["lan"], 0)


def test_drafting_needs_the_drafter_role() -> None:
    with pytest.raises(NotAuthorised, match="role-required"):
        Broadcast.draft(content(), by=staff("mai", "auditor"))


def test_approval_is_refused_when_approver_drafted_the_broadcast() -> None:
    both = staff("minh", "drafter", "approver")
    b = submitted(both)
    with pytest.raises(SelfApprovalRefused, match="approver-is-not-drafter"):
        b.approve(by=both, now=LATER)
    assert b.state == "submitted" and not b.is_approved


def test_approval_is_refused_when_approver_revised_the_broadcast() -> None:
    reviser = staff("minh", "drafter", "approver")
    b = submitted()
    b.revise(content(title="Đã sửa"), by=reviser)
    with pytest.raises(SelfApprovalRefused):
        b.approve(by=reviser, now=LATER)


def test_approval_needs_the_approver_role() -> None:
    b = submitted()
    with pytest.raises(NotAuthorised, match="approver role is required"):
        b.approve(by=staff("tuan", "drafter"), now=LATER)


def test_ward_approver_cannot_approve_another_wards_broadcast() -> None:
    b = submitted(target_areas=["00598"], scope=["00598"])
    with pytest.raises(OutOfScope, match="approver-area-scope"):
        b.approve(by=staff("ha", "approver", wards=["00595"]), now=LATER)


def test_ward_approver_approves_their_own_ward() -> None:
    b = submitted()
    b.approve(by=staff("ha", "approver", wards=["00595"]), now=LATER)
    assert b.state == "approved"


def test_only_submitted_broadcasts_can_be_approved() -> None:
    lan = staff("lan", "drafter")
    b = Broadcast.draft(content(), by=lan)
    with pytest.raises(IllegalTransition, match="cannot approve a broadcast that is draft"):
        b.approve(by=APPROVER, now=LATER)


def test_revision_voids_earlier_approvals_and_needs_approval_again() -> None:
    lan = staff("lan", "drafter")
    b = submitted(lan)
    b.approve(by=APPROVER, now=LATER)
    b.revise(content(text="Nội dung mới"), by=lan)
    assert (b.state, b.approvals, b.is_approved, b.revision) == ("submitted", [], False, 1)
    with pytest.raises(NotApproved, match="nothing-dispatched-unapproved"):
        b.open_dispatch(now=LATER)
    b.approve(by=APPROVER, now=LATER)
    assert b.is_approved and b.approvals[-1]["revision"] == 1


def test_revising_a_draft_keeps_it_a_draft() -> None:
    lan = staff("lan", "drafter")
    b = Broadcast.draft(content(), by=lan)
    b.revise(content(text="khác"), by=lan)
    assert b.state == "draft"


def test_nothing_is_dispatched_unapproved() -> None:
    b = submitted()
    with pytest.raises(NotApproved):
        b.open_dispatch(now=LATER)
    assert b.dispatches == []


def test_approved_broadcast_opens_a_dispatch_wave_with_a_deterministic_id() -> None:
    b = submitted()
    b.approve(by=APPROVER, now=LATER)
    first = b.open_dispatch(now=LATER)
    assert b.state == "dispatching" and b.dispatches == [first]


@pytest.mark.parametrize("steps", [[], ["submit"], ["submit", "approve"], ["submit", "approve", "dispatch"]])
def test_cancel_works_from_every_live_state(steps: list[str]) -> None:
    lan = staff("lan", "drafter")
    b = Broadcast.draft(content(), by=lan)
    for step in steps:
        {
            "submit": lambda: b.submit(by=lan),
            "approve": lambda: b.approve(by=APPROVER, now=LATER),
            "dispatch": lambda: b.open_dispatch(now=LATER),
        }[step]()
    stop = b.cancel(by=lan, reason="nhập nhầm")
    assert b.state == "cancelled"
    assert stop is ("dispatch" in steps)


def test_cancel_of_a_final_broadcast_is_refused() -> None:
    b = submitted()
    b.reject(by=APPROVER, reason="sai nội dung")
    with pytest.raises(IllegalTransition, match="cannot cancel a broadcast that is rejected"):
        b.cancel(by=APPROVER, reason="x")


def test_expired_broadcast_cannot_be_approved() -> None:
    b = submitted(expires_at=NOW + timedelta(hours=1))
    with pytest.raises(ExpiredBroadcast, match="expired-cannot-be-approved"):
        b.approve(by=APPROVER, now=NOW + timedelta(hours=1))
    assert not b.is_approved


def test_expired_broadcast_cannot_be_dispatched_even_if_approved() -> None:
    b = submitted(expires_at=NOW + timedelta(hours=1))
    b.approve(by=APPROVER, now=LATER)
    with pytest.raises(ExpiredBroadcast):
        b.open_dispatch(now=NOW + timedelta(hours=2))


def test_expire_marks_live_broadcasts_after_their_expiry_only() -> None:
    b = submitted(expires_at=NOW + timedelta(hours=1))
    assert b.expire(now=LATER) is False
    assert b.expire(now=NOW + timedelta(hours=1)) is True
    assert b.state == "expired"


def test_rejection_is_final() -> None:
    lan = staff("lan", "drafter")
    b = submitted(lan)
    b.reject(by=APPROVER, reason="không phù hợp")
    with pytest.raises(IllegalTransition):
        b.revise(content(), by=lan)


def test_content_refuses_empty_text_unknown_priority_and_past_expiry() -> None:
    with pytest.raises(InvalidValue, match="text must not be empty"):
        content(text="   ")
    with pytest.raises(InvalidValue, match="unknown priority class 'urgent'"):
        content(priority="urgent")
    with pytest.raises(InvalidValue, match="not in the future"):
        content(expires_at=NOW - timedelta(minutes=1))
    with pytest.raises(InvalidValue, match="at least one target"):
        content(target_areas=[])
    with pytest.raises(InvalidValue, match="limit is 5000"):
        content(text="a" * 5001)


def test_content_is_nfc_normalised() -> None:
    decomposed = "Thông báo".replace("ô", "o\u0302")
    assert content(title=decomposed).title == "Thông báo"


def test_emergency_defaults_to_three_repeats_and_all_channels() -> None:
    c = content(priority="emergency")
    assert c.repeats == 3 and c.channels == ["speaker", "eboard", "portal", "app"]


def test_sourced_broadcasts_get_deterministic_ids() -> None:
    lan = staff("lan", "drafter")
    a = Broadcast.draft(content(), by=lan, source_kind="city-source", source_ref="msg-1")
    b = Broadcast.draft(content(), by=lan, source_kind="city-source", source_ref="msg-1")
    assert a.id == b.id == sourced_broadcast_id("city-source", "msg-1")
    assert Broadcast.draft(content(), by=lan).id != a.id


def test_a_drill_is_announced_as_a_drill_before_and_after_its_text() -> None:
    lan = staff("lan", "drafter")
    b = Broadcast.draft(content(drill=True), by=lan)
    assert b.announced_text.startswith("Đây là bản tin diễn tập.") and b.announced_text.endswith("diễn tập.")
    assert Broadcast.draft(content(), by=lan).announced_text == b.text
