"""One vocabulary: the enums hold exactly the strings stored events carry, so that histories written before the
enums replay unchanged; the ack rank and the first-ack fold are one rule for the domain, the dispatcher and the read
models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

from keng.adapters.store.app import Keng
from keng.domain.broadcast import FINAL_STATES, LIVE_STATES, REVISABLE_STATES, STATE_AFTER
from keng.domain.dispatch import Dispatch, first_ack_at, note_first_acks
from keng.domain.records import Ack
from keng.domain.values import (
    ACK_RANK,
    FINAL_ACK_STATES,
    AckState,
    BroadcastState,
    DispatchOutcome,
    Priority,
    ack_advances,
)
from tests.unit.helpers import NOW, staff, submitted


def test_enum_values_are_the_strings_stored_events_carry() -> None:
    assert [s.value for s in BroadcastState] == [
        "draft", "submitted", "approved", "scheduled", "dispatching", "completed", "cancelled", "expired", "rejected",
    ]  # fmt: skip
    assert [s.value for s in AckState] == ["received", "playing", "played", "failed", "displayed", "cleared"]
    assert [p.value for p in Priority] == ["emergency", "priority", "normal"]
    assert [o.value for o in DispatchOutcome] == ["complete", "settled", "expired", "cancelled"]


def test_live_final_and_revisable_states_are_derived_from_the_enum_as_they_were_written() -> None:
    assert LIVE_STATES == ("draft", "submitted", "approved", "scheduled", "dispatching")
    assert FINAL_STATES == ("completed", "cancelled", "expired", "rejected")
    assert REVISABLE_STATES == ("draft", "submitted", "approved", "scheduled")
    assert {s for s in STATE_AFTER.values() if s.is_final} == set(FINAL_STATES)


def test_a_history_stored_as_plain_strings_replays_into_the_enum() -> None:
    app = Keng()  # in memory: the real mapper and transcoder, no file
    drafter, approver = staff("lan", "drafter"), staff("hung", "approver")
    b = submitted(drafter, priority="emergency", expires_at=NOW + timedelta(hours=6))
    b.approve(by=approver, now=NOW)
    stored = [app.mapper.to_stored_event(e) for e in b.collect_events()]
    assert b'"emergency"' in stored[0].state
    replayed: Any = None
    for record in stored:
        replayed = app.mapper.to_domain_event(record).mutate(replayed)
    assert replayed.state is BroadcastState.APPROVED and replayed.state == "approved"
    assert replayed.priority == Priority.EMERGENCY


def test_enum_members_are_stored_as_their_plain_strings() -> None:
    transcoder = Keng().mapper.transcoder
    with_enums = {"acks": [{"endpoint": "e1", "state": AckState.PLAYED}], "outcome": DispatchOutcome.COMPLETE}
    plain = {"acks": [{"endpoint": "e1", "state": "played"}], "outcome": "complete"}
    assert transcoder.encode(with_enums) == transcoder.encode(plain)
    assert type(transcoder.decode(transcoder.encode(with_enums))["outcome"]) is str


def test_an_ack_never_moves_an_endpoint_backwards_and_final_states_rank_alike() -> None:
    order = [AckState.RECEIVED, AckState.PLAYING, AckState.PLAYED]
    assert [ACK_RANK[s] for s in order] == sorted(ACK_RANK[s] for s in order)
    assert ack_advances("received", None) and ack_advances("played", "playing")
    assert not ack_advances("received", "playing") and not ack_advances("playing", "playing")
    assert not ack_advances("failed", "played") and not ack_advances("played", "failed")
    assert FINAL_ACK_STATES == {s for s in AckState if s.is_final} == {"played", "failed", "displayed", "cleared"}
    # a board: `displayed` is its `played`; `cleared` after it (or after a failure) changes nothing
    assert ack_advances("displayed", "received") and not ack_advances("cleared", "displayed")
    assert not ack_advances("displayed", "failed") and not ack_advances("cleared", "failed")


def test_the_first_ack_is_the_earliest_whatever_the_order_of_arrival() -> None:
    seven = timezone(timedelta(hours=7))
    late, early = datetime(2026, 11, 27, 7, 0, 5, tzinfo=UTC), datetime(2026, 11, 27, 14, 0, 1, tzinfo=seven)
    firsts: dict[str, datetime] = {}
    acks: list[Ack] = [
        {"endpoint": "e1", "state": "played", "at": late.isoformat()},
        {"endpoint": "e1", "state": "received", "at": early.isoformat()},
        {"endpoint": "e2", "state": "received", "at": late.isoformat()},
    ]
    note_first_acks(firsts, acks)
    assert firsts == {"e1": early, "e2": late}
    assert first_ack_at(None, "2026-11-27T07:00:05+00:00") == "2026-11-27T07:00:05+00:00"
    assert first_ack_at("2026-11-27T07:00:05+00:00", "2026-11-27T07:00:01+00:00") == "2026-11-27T07:00:01+00:00"


def test_a_dispatch_keeps_each_endpoints_furthest_ack_and_knows_what_is_pending() -> None:
    d = Dispatch.open(
        broadcast_id=uuid4(),
        wave=1,
        priority=Priority.EMERGENCY,
        targets=["e1", "e2", "e3"],
        expires_at=NOW + timedelta(hours=1),
        drill=False,
    )
    at = NOW.isoformat()
    d.record_acks([{"endpoint": "e1", "state": "played", "at": at}, {"endpoint": "e2", "state": "playing", "at": at}])
    d.record_acks([{"endpoint": "e1", "state": "received", "at": at}, {"endpoint": "e3", "state": "failed", "at": at}])
    assert {code: ack["state"] for code, ack in d.states.items()} == {"e1": "played", "e2": "playing", "e3": "failed"}
    assert d.pending() == ["e2"]
