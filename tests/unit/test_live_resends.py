"""Resend timing of a live dispatch: backoff per endpoint, and no resend while acks may still be queued unread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keng.runtime.dispatch.live import LiveDispatch, RetryPolicy
from keng.runtime.dispatch.plan import Plan, Target

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def live(states: dict[str, str] | None = None) -> LiveDispatch:
    targets = {c: Target(c, "speaker", "00595", False) for c in ("A", "B", "C")}
    plan = Plan(
        dispatch_id="d",
        broadcast_id="b",
        priority="emergency",
        rank=0,
        expires_at=T0 + timedelta(hours=1),
        reference_at=T0,
        targets=targets,
        group_topics=[],
        direct=[],
        commands={},
        states=dict(states or {}),
        play_s=3.0,
    )
    return LiveDispatch(plan, RetryPolicy(first_s=2, factor=2, cap_s=8), opened_mono=100.0)


def test_silent_endpoints_are_due_after_the_first_delay_and_back_off() -> None:
    x = live({"A": "played"})
    assert x.due_retries(101.9, lambda c: True) == []
    assert x.due_retries(102.0, lambda c: True) == ["B", "C"]
    assert x.due_retries(105.9, lambda c: True) == []  # next after 4 s
    assert x.due_retries(106.0, lambda c: True) == ["B", "C"]


def test_an_endpoint_that_acknowledged_is_asked_again_only_after_its_playback_should_be_over() -> None:
    x = live({"A": "played", "B": "playing", "C": "failed"})
    assert x.due_retries(104.9, lambda c: True) == []
    assert x.due_retries(105.0, lambda c: True) == ["B"]  # opened + play 3 s + first 2 s


def test_unreachable_endpoints_wait() -> None:
    x = live()
    assert x.due_retries(102.0, lambda c: c != "B") == ["A", "C"]


def test_resends_wait_until_the_acks_sent_before_they_fell_due_have_been_read() -> None:
    x = live({"A": "played"})
    assert x.due_retries(103.0, lambda c: True, acks_read_at=101.5) == []  # due at 102: acks may be queued
    assert x.held_back == 2
    x.apply([{"endpoint": "B", "state": "played", "at": T0.isoformat()}])  # B's ack was in the backlog
    assert x.due_retries(103.1, lambda c: True, acks_read_at=102.5) == ["C"]
    assert x.held_back == 0


def test_completion_is_counted_as_acks_arrive() -> None:
    x = live({"A": "played"})
    assert x.outcome(101.0, None) is None
    x.apply([{"endpoint": "B", "state": "received", "at": T0.isoformat()}])
    x.apply(
        [
            {"endpoint": "B", "state": "played", "at": T0.isoformat()},
            {"endpoint": "C", "state": "failed", "at": T0.isoformat()},
        ]
    )
    x.apply([{"endpoint": "C", "state": "failed", "at": T0.isoformat()}])  # a repeat changes nothing
    assert x.finals == 3 and x.outcome(101.0, None) == "complete"
