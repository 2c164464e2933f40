"""services/broadcasts.py on a real SQLite store: each command saves what the domain allows and nothing else, reads
show a reader only what their scope reaches, and the application's clock is the one the rules read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.authority import EVERYTHING, Visibility
from keng.domain.errors import ExpiredBroadcast, IllegalTransition, NotAuthorised, OutOfScope, SelfApprovalRefused
from keng.projections.catalog import Catalog
from keng.services import broadcasts
from tests.integration.small_district import START, WARD_A, WARD_B, Clock, open_district

NOTICE = {"title": "Thông báo lịch cắt điện", "text": "Cắt điện từ 8 giờ đến 11 giờ.", "priority": "normal"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Keng]:
    app = open_district(tmp_path, clock)
    yield app
    app.close()


def reader(app: Keng, handle: str) -> Visibility:
    return app.visibility_of(app.staff(handle))


def catalog(app: Keng) -> Catalog:
    return Catalog().fold(app.read_events())


def test_a_drafted_submitted_and_approved_broadcast_records_its_drafter_scope_and_approver(app: Keng) -> None:
    bid = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    broadcasts.submit(app, bid, by="lan")
    broadcasts.approve(app, bid, by="hung")
    item = app.broadcast(bid)
    assert (item.state, item.scope, item.drafted_by) == ("approved", [WARD_A], "lan")
    assert [a["by"] for a in item.approvals] == ["hung"]


def test_an_approval_after_expiry_by_the_applications_clock_is_refused(app: Keng, clock: Clock) -> None:
    bid = broadcasts.draft(app, by="lan", target_areas=[WARD_A], expires_at=START + timedelta(hours=1), **NOTICE)
    broadcasts.submit(app, bid, by="lan")
    clock.advance(hours=1, seconds=1)
    with pytest.raises(ExpiredBroadcast):
        broadcasts.approve(app, bid, by="hung")
    assert app.broadcast(bid).state == "submitted"


def test_a_refused_approval_writes_nothing(app: Keng) -> None:
    bid = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    broadcasts.submit(app, bid, by="lan")
    before = app.max_position()
    with pytest.raises(OutOfScope):
        broadcasts.approve(app, bid, by="ha")  # an approver of the other ward
    with pytest.raises(NotAuthorised):
        broadcasts.act(app, bid, "approve", by="lan")  # a drafter only
    broadcasts.revise(app, bid, by="minh", title="Thông báo lịch cắt điện (sửa)")  # stays submitted
    before = app.max_position()
    with pytest.raises(SelfApprovalRefused):
        broadcasts.act(app, bid, "approve", by="minh")  # an approver who revised it
    assert app.max_position() == before and app.broadcast(bid).state == "submitted"


def test_a_revision_keeps_the_fields_it_does_not_name_recomputes_the_scope_and_voids_approvals(app: Keng) -> None:
    bid = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    broadcasts.submit(app, bid, by="lan")
    broadcasts.approve(app, bid, by="hung")
    broadcasts.revise(app, bid, by="lan", target_areas=[WARD_A, WARD_B], text=None)
    item = app.broadcast(bid)
    assert (item.title, item.text, item.scope) == (NOTICE["title"], NOTICE["text"], [WARD_A, WARD_B])
    assert (item.state, item.approvals, item.revision) == ("submitted", [], 1)


def test_an_endpoint_target_puts_its_ward_in_scope(app: Keng) -> None:
    bid = broadcasts.draft(app, by="lan", target_endpoints=[f"{WARD_A}-T01-IP1"], **NOTICE)
    assert app.broadcast(bid).scope == [WARD_A]


def test_reject_and_cancel_record_their_reasons_and_a_cancel_before_dispatch_sends_no_stop(app: Keng) -> None:
    rejected = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    broadcasts.submit(app, rejected, by="lan")
    assert broadcasts.act(app, rejected, "reject", by="hung", reason="sai giờ") is False
    cancelled = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    assert broadcasts.cancel(app, cancelled, by="lan", reason="trùng lặp") is False
    assert [(app.broadcast(b).state, app.broadcast(b).end_reason) for b in (rejected, cancelled)] == [
        ("rejected", "sai giờ"),
        ("cancelled", "trùng lặp"),
    ]


def test_an_action_outside_the_list_is_refused_before_anything_is_read(app: Keng) -> None:
    with pytest.raises(ValueError, match="not one of submit, approve, ratify, retract, reject, cancel"):
        broadcasts.act(app, broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE), "publish", by="hung")


def test_a_standing_order_approval_awaits_ratification_until_its_deadline_and_a_ratify_ends_the_wait(
    app: Keng, clock: Clock
) -> None:
    bid = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    item = app.broadcast(bid)
    item.auto_approve(rule="kttv-flood", now=clock())
    app.save_changes(item)
    within = timedelta(minutes=30)
    due = app.broadcast(bid).approvals[0]["at"] + within
    listed = broadcasts.readable_list(catalog(app), EVERYTHING)
    assert broadcasts.awaiting_ratification(listed, within=within, now=due) == [
        broadcasts.Unratified(listed[0], due, overdue=False)
    ]
    [late] = broadcasts.awaiting_ratification(listed, within=within, now=due + timedelta(seconds=1))
    assert (late.broadcast.id, late.overdue) == (bid, True)
    broadcasts.ratify(app, bid, by="hung")
    assert broadcasts.awaiting_ratification([app.broadcast(bid)], within=within, now=due) == []
    with pytest.raises(IllegalTransition):
        broadcasts.ratify(app, bid, by="hung")


def test_a_ward_reader_sees_their_ward_and_the_district_but_another_wards_broadcast_is_not_found(app: Keng) -> None:
    mine = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    district = broadcasts.draft(app, by="lan", target_areas=["021"], **NOTICE)
    other = broadcasts.draft(app, by="lan", target_areas=[WARD_B], **NOTICE)
    ward_a = reader(app, "tuan")
    assert broadcasts.readable(app, mine, ward_a).id == mine
    with pytest.raises(NotFound, match=f"broadcast {other} not found"):
        broadcasts.readable(app, other, ward_a)
    assert {b.id for b in broadcasts.readable_list(catalog(app), ward_a)} == {mine, district}
    assert {b.id for b in broadcasts.readable_list(catalog(app), reader(app, "mai"))} == {mine, district, other}


def test_a_listing_filters_by_state_within_the_readers_scope(app: Keng) -> None:
    drafted = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    submitted = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    broadcasts.submit(app, submitted, by="lan")
    broadcasts.submit(app, broadcasts.draft(app, by="lan", target_areas=[WARD_B], **NOTICE), by="lan")
    listed = broadcasts.readable_list(catalog(app), reader(app, "tuan"), state="submitted")
    assert [b.id for b in listed] == [submitted] and drafted not in [b.id for b in listed]


def test_an_id_is_found_by_a_unique_prefix_of_six_hex_digits_or_more(app: Keng) -> None:
    bid = broadcasts.draft(app, by="lan", target_areas=[WARD_A], **NOTICE)
    assert broadcasts.resolve_id(app, str(bid)) == bid
    assert broadcasts.resolve_id(app, bid.hex[:6].upper()) == bid
    with pytest.raises(NotFound, match="at least its first 6 hex digits"):
        broadcasts.resolve_id(app, bid.hex[:5])
    with pytest.raises(NotFound, match="0 broadcasts have ids starting with"):
        broadcasts.resolve_id(app, "ffffff" if not bid.hex.startswith("ffffff") else "000000")
