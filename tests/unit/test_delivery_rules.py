from datetime import UTC, datetime, timedelta, timezone

import pytest

from keng.adapters.mqtt import protocol as proto
from keng.domain.delivery import check_ack, latency_summary, percentile, summarise
from keng.domain.device_status import check_status
from keng.domain.lanes import PriorityLanes
from keng.domain.programme import Programme, Slot, parse_slots, volume_for
from keng.runtime.dispatch.live import RetryPolicy

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SHA = "a" * 64
LIVE = {"targets_of": {"d1": {"E1", "E2"}}, "sha256_of": {"d1": {1: {SHA}}}, "max_seq_of": {"d1": 1}}


def ack(**over: object) -> dict[str, object]:
    msg: dict[str, object] = {"v": 1, "endpoint": "E1", "dispatch": "d1", "seq": 1, "state": "received"}
    msg["at"] = T0.isoformat()
    return msg | over


def check(topic_endpoint: str, message: object):  # type: ignore[no-untyped-def]
    return check_ack(topic_endpoint, message, known_endpoints={"E1", "E2", "E3"}, **LIVE)  # type: ignore[arg-type]


def test_a_well_formed_ack_is_accepted_as_a_record() -> None:
    result = check("E1", ack())
    assert result.refused is None and result.ack == {
        "endpoint": "E1",
        "state": "received",
        "at": T0.isoformat(),
        "seq": 1,
    }


@pytest.mark.parametrize(
    ("topic", "message", "reason"),
    [
        ("E1", [1, 2], "malformed"),
        ("E1", ack(v=2), "unsupported-version"),
        ("E1", ack(endpoint="E2"), "endpoint-mismatch"),
        ("X9", ack(endpoint="X9"), "unknown-endpoint"),
        ("E1", ack(dispatch="nope"), "unknown-dispatch"),
        ("E3", ack(endpoint="E3"), "not-targeted"),
        ("E1", ack(state="exploded"), "bad-state"),
        ("E1", ack(seq=7), "bad-sequence"),
        ("E1", ack(seq=True), "bad-sequence"),
        ("E1", ack(at="yesterday"), "bad-time"),
        ("E1", ack(at="2026-11-27T10:00:00"), "bad-time"),
        ("E1", ack(sha256="short"), "bad-sha256"),
    ],
)
def test_malformed_or_foreign_acks_are_refused_with_a_named_reason(topic: str, message: object, reason: str) -> None:
    result = check(topic, message)
    assert result.ack is None and result.refused == reason


def test_played_with_another_hash_is_recorded_as_a_failure() -> None:
    result = check("E1", ack(state="played", sha256="b" * 64))
    assert result.ack is not None and result.ack["state"] == "failed" and result.ack["reason"] == "sha256-mismatch"


def test_played_with_the_approved_hash_is_played() -> None:
    result = check("E1", ack(state="played", sha256=SHA))
    assert result.ack is not None and result.ack["state"] == "played"


def test_each_item_is_checked_against_its_own_hashes_the_file_or_the_text() -> None:
    """Item 1 was sent with audio A (text T); item 2 with audio B (same text). A device that played item 1's file, or
    spoke its text, is right for seq 1; the same hashes for a seq that is no item, or B for seq 1, are not."""
    audio_a, audio_b, text, image = "a" * 64, "b" * 64, "c" * 64, "d" * 64
    live = {"targets_of": {"d1": {"E1"}}, "sha256_of": {"d1": {1: {audio_a, text, image}, 2: {audio_b, text}}},
            "max_seq_of": {"d1": 3}}  # fmt: skip

    def state(**over: object) -> str | None:
        result = check_ack("E1", ack(**over), known_endpoints={"E1"}, **live)  # type: ignore[arg-type]
        return None if result.ack is None else result.ack["state"]

    assert state(state="played", sha256=audio_a) == state(state="played", sha256=text) == "played"
    assert state(state="displayed", sha256=image) == "displayed"
    assert state(state="played", sha256=audio_b, seq=2) == "played"
    assert state(state="played", sha256=audio_b) == "failed"  # item 2's file is not item 1's
    assert state(state="displayed", sha256="e" * 64) == "failed"
    assert state(state="played", sha256=audio_a, seq=3) == "failed"  # seq 3 (a stop) is no item
    assert state(state="played") == "failed"  # a played ack must say what it played
    assert state(state="cleared") == "cleared"  # nothing to check: the board took it off


def test_a_boards_displayed_counts_as_played_in_the_summary() -> None:
    summary = summarise(
        targets=["S1", "B1", "B2"],
        states={"S1": "played", "B1": "displayed", "B2": "cleared"},
        first_ack_at={},
        online=set(),
        reference_at=T0,
        priority="emergency",
        outcome="complete",
        retries=0,
    )
    assert (summary["played"], summary["failed"], summary["received"], summary["unreachable"]) == (2, 0, 3, 0)


def test_percentiles_use_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile([], 50) is None
    assert latency_summary([3.0, 1.0, 2.0]) == {"p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0, "count": 3}


def test_summary_counts_each_target_once_and_measures_from_the_reference() -> None:
    summary = summarise(
        targets=["E1", "E2", "E3", "E4"],
        states={"E1": "played", "E2": "failed", "E3": "received"},
        first_ack_at={"E1": T0 + timedelta(milliseconds=100), "E2": T0 + timedelta(milliseconds=300)},
        online={"E4"},
        reference_at=T0,
        priority="emergency",
        outcome="expired",
        retries=2,
    )
    assert (summary["targeted"], summary["received"], summary["played"], summary["failed"]) == (4, 3, 1, 1)
    assert summary["unreachable"] == 1 and summary["online"] == 4
    assert summary["latency_ms"]["emergency"]["p50"] == 100.0 and summary["latency_ms"]["emergency"]["max"] == 300.0


def test_an_emergency_is_popped_before_a_full_backlog_of_normal_commands() -> None:
    lanes: PriorityLanes[str] = PriorityLanes({0: 2, 2: 3})
    assert all(lanes.push(2, f"n{i}") for i in range(3))
    assert not lanes.push(2, "overflow")
    assert lanes.push(0, "e1")
    assert [lanes.pop() for _ in range(4)] == ["e1", "n0", "n1", "n2"]
    assert lanes.pop() is None


def test_lanes_keep_explicit_order_then_arrival_and_can_drop_a_broadcast() -> None:
    lanes: PriorityLanes[str] = PriorityLanes({1: 10})
    lanes.push(1, "b-late", order=2)
    lanes.push(1, "a-first", order=1)
    lanes.push(1, "a-second", order=1)
    assert lanes.remove_where(lambda s: s.startswith("b")) == 1
    assert [lanes.pop(), lanes.pop(), lanes.pop()] == ["a-first", "a-second", None]


ICT = timezone(timedelta(hours=7))


def test_normal_waits_for_the_next_slot_and_emergency_goes_at_once() -> None:
    programme = Programme()
    now = datetime(2026, 11, 27, 12, 0, tzinfo=ICT)
    assert programme.release_at(priority="emergency", wards=["W"], now=now) == now
    assert programme.release_at(priority="normal", wards=["W"], now=now) == datetime(2026, 11, 27, 17, 0, tzinfo=ICT)
    assert programme.release_at(priority="priority", wards=["W"], now=now) == datetime(2026, 11, 27, 17, 0, tzinfo=ICT)
    late = datetime(2026, 11, 27, 19, 0, tzinfo=ICT)
    assert programme.release_at(priority="normal", wards=["W"], now=late) == datetime(2026, 11, 28, 5, 30, tzinfo=ICT)


def test_a_slot_that_is_open_releases_at_once_and_wards_have_their_own_slots() -> None:
    programme = Programme(by_ward={"X": parse_slots("11:00-13:00")})
    now = datetime(2026, 11, 27, 12, 0, tzinfo=ICT)
    assert programme.release_at(priority="normal", wards=["X"], now=now) == now
    assert programme.release_at(priority="normal", wards=["W", "X"], now=now) == now
    assert Slot.parse("00:00-24:00").bounds(now)[1] == datetime(2026, 11, 28, 0, 0, tzinfo=ICT)


def test_a_scheduled_normal_broadcast_goes_out_in_the_first_slot_after_its_time() -> None:
    now = datetime(2026, 11, 27, 5, 40, tzinfo=ICT)
    at = datetime(2026, 11, 27, 7, 0, tzinfo=ICT)
    release = Programme().release_at(priority="normal", wards=["W"], now=now, scheduled=[at])
    assert release == datetime(2026, 11, 27, 17, 0, tzinfo=ICT)


def test_volume_is_full_for_emergencies_and_lower_for_routine() -> None:
    assert volume_for("emergency") == 100 and volume_for("normal") < volume_for("priority") < 100


def test_status_messages_become_states_and_foreign_ones_are_refused() -> None:
    known = {"E1"}
    assert check_status("E1", {"v": 1, "state": "online"}, known_endpoints=known) == ("online", "")
    assert check_status("E1", {"v": 1, "state": "offline", "reason": "last-will"}, known_endpoints=known) == (
        "offline",
        "last-will",
    )
    assert check_status("E2", {"v": 1, "state": "online"}, known_endpoints=known) == ("refused", "unknown-endpoint")
    assert check_status("E1", {"v": 1, "endpoint": "E2", "state": "online"}, known_endpoints=known)[1] == (
        "endpoint-mismatch"
    )
    assert check_status("E1", "online", known_endpoints=known) == ("refused", "malformed")


def test_topics_round_trip_and_reject_foreign_shapes() -> None:
    assert proto.parse_ack_topic(proto.ack_topic("00595-T01-IP1")) == "00595-T01-IP1"
    assert proto.parse_status_topic(proto.status_topic("E1")) == "E1"
    assert proto.parse_ack_topic("keng/v1/ack/a/b") is None and proto.parse_ack_topic("other/ack/E1") is None
    assert proto.device_subscriptions("speaker", "E1", ["T1", "W1"]) == [
        "keng/v1/cmd/speaker/ep/E1",
        "keng/v1/cmd/speaker/area/T1",
        "keng/v1/cmd/speaker/area/W1",
    ]
    with pytest.raises(proto.ProtocolError):
        proto.decode(b"{not json")


def test_message_expiry_follows_the_broadcast_and_expired_content_gets_none() -> None:
    props = proto.expiry_properties(T0 + timedelta(seconds=90), T0)
    assert props is not None and props.MessageExpiryInterval == 90
    assert proto.expiry_properties(T0, T0) is None


def test_resend_backoff_is_capped() -> None:
    policy = RetryPolicy(first_s=1, factor=2, cap_s=5)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
