"""The dispatcher's loop without a broker: a real Dispatcher over a real store (SQLite in tmp_path, the sample ward)
on the recording links of tests/fakes.py. What it publishes is read from the outbound fake; device acks are fed in
through the intake fake, and what it recorded is read back from the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from keng.adapters.mqtt import protocol as proto
from keng.domain.dispatch import Dispatch
from keng.domain.endpoint import Endpoint
from keng.projections.catalog import Catalog
from keng.runtime.dispatch.live import RetryPolicy
from keng.services import broadcasts
from tests.fakes import FakeInbound, RecordingLink
from tests.integration.harness import WARD, Harness

# Resends only long after each test is over: what is published is the first fan-out and what the loop reacts to.
NO_RESENDS = RetryPolicy(first_s=60.0, cap_s=60.0)


class Wired:
    def __init__(self, harness: Harness, link: RecordingLink, inbound: FakeInbound) -> None:
        self.h, self.link, self.inbound = harness, link, inbound

    def group_topics(self, bid: UUID) -> set[str]:
        """The group topic of every class of device the broadcast's dispatch targets in the ward."""
        d = self.h.dispatch_of(bid)
        assert d is not None
        endpoints = Catalog().fold(self.h.app.read_events()).of_type(Endpoint)
        return {proto.area_topic(proto.CLASS_OF_KIND[e.kind], WARD) for e in endpoints if e.code in d.targets}

    def commands(self, bid: UUID, op: str) -> dict[str, dict[str, object]]:
        """The commands of an operation for a broadcast, by topic."""
        return {
            p.topic: p.message
            for p in self.link.published
            if proto.parse_ack_topic(p.topic) is None and p.message["broadcast"] == str(bid) and p.message["op"] == op
        }

    def ack(self, code: str, command: dict[str, object], state: str) -> None:
        """A device's ack; `played` is a board's `displayed` (of the text, which a board may show itself)."""
        audio = command.get("audio")
        if state == "played" and command["op"] == "display":
            state, sha = "displayed", command["text_sha256"]
        else:
            sha = audio["sha256"] if state == "played" and isinstance(audio, dict) else None
        message = proto.ack_message(
            code=code,
            dispatch_id=str(command["dispatch"]),
            seq=1,
            state=state,
            at=datetime.now(UTC),
            sha256=str(sha) if sha else None,
        )
        self.inbound.feed(proto.ack_topic(code), proto.encode(message))


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[Wired]:
    harness = Harness(tmp_path, broker=None)
    inbound = FakeInbound()
    link = RecordingLink(loopback=inbound)
    await harness.start_dispatcher(link=link, inbound=inbound, retry=NO_RESENDS)
    yield Wired(harness, link, inbound)
    await harness.close()
    assert link.closed and inbound.closed  # the dispatcher closes the links it was given


async def test_an_approved_emergency_is_published_once_to_each_of_its_wards_group_topics(wired: Wired) -> None:
    bid = wired.h.broadcast("emergency")
    await wired.h.until(lambda: wired.h.dispatch_of(bid) is not None)
    groups = wired.group_topics(bid)
    assert groups == {proto.area_topic(proto.SPEAKER, WARD), proto.area_topic(proto.BOARD, WARD)}
    await wired.h.until(lambda: set(wired.commands(bid, "play")) | set(wired.commands(bid, "display")) == groups)
    play = wired.commands(bid, "play")[proto.area_topic(proto.SPEAKER, WARD)]
    assert play["priority"] == "emergency" and play["dispatch"] == str(wired.h.app.broadcast(bid).dispatches[0])
    commands = [p for p in wired.link.published if proto.parse_ack_topic(p.topic) is None]
    assert len(commands) == len(groups)  # one publish per group topic: the broker fans out, not the dispatcher
    assert all(p.expires_at == wired.h.app.broadcast(bid).expires_at for p in commands)


async def test_acks_fed_through_the_intake_are_recorded_in_batches_and_complete_the_dispatch(wired: Wired) -> None:
    bid = wired.h.broadcast("emergency")
    await wired.h.until(lambda: len(wired.commands(bid, "play")) == 1)
    [play] = wired.commands(bid, "play").values()
    [display] = wired.commands(bid, "display").values()
    d = wired.h.dispatch_of(bid)
    assert d is not None
    targets = {
        e.code: e.kind for e in Catalog().fold(wired.h.app.read_events()).of_type(Endpoint) if e.code in d.targets
    }
    for code, kind in targets.items():
        wired.ack(code, play if kind == "ip-speaker" else display, "received")

    def all_received() -> bool:
        d = wired.h.dispatch_of(bid)
        return d is not None and {c: s["state"] for c, s in d.states.items()} == dict.fromkeys(targets, "received")

    await wired.h.until(all_received)
    batches = [e for e in wired.h.events(Dispatch.AcksRecorded) if e.originator_id == d.id]
    assert 1 <= len(batches) < len(targets)  # batched, never one transaction per ack
    for code, kind in targets.items():
        wired.ack(code, play if kind == "ip-speaker" else display, "played")
    await wired.h.until(lambda: wired.h.closed(bid))
    closed = wired.h.dispatch_of(bid)
    assert closed is not None and closed.summary["outcome"] == "complete"
    assert closed.summary["played"] == closed.summary["targeted"] == len(targets)


async def test_cancelling_a_broadcast_on_its_way_sends_stop_to_its_group_topics(wired: Wired) -> None:
    bid = wired.h.broadcast("emergency")
    await wired.h.until(lambda: len(wired.commands(bid, "play")) == 1)
    groups = wired.group_topics(bid)
    assert broadcasts.cancel(wired.h.app, bid, by="hung.tran", reason="Thông tin đã cũ") is True
    await wired.h.until(lambda: set(wired.commands(bid, "stop")) | set(wired.commands(bid, "clear")) == groups)
    stop = wired.commands(bid, "stop")[proto.area_topic(proto.SPEAKER, WARD)]
    assert stop["seq"] == 2  # after the play (seq 1), so a device that already played it stops
    await wired.h.until(lambda: wired.h.closed(bid))
    d = wired.h.dispatch_of(bid)
    assert d is not None and d.summary["outcome"] == "cancelled"


async def test_refused_acks_are_answered_on_the_devices_topic_at_most_once_each_and_eight_times_in_all(
    wired: Wired,
) -> None:
    bid = wired.h.broadcast("emergency")
    await wired.h.until(lambda: len(wired.commands(bid, "play")) == 1)
    [play] = wired.commands(bid, "play").values()
    d = wired.h.dispatch_of(bid)
    assert d is not None
    speaker = next(c for c in sorted(d.targets) if "-IP" in c)
    own = proto.endpoint_topic(proto.SPEAKER, speaker)

    def feed(code: str, **over: object) -> None:
        message = {"v": 1, "endpoint": code, "dispatch": str(d.id), "seq": 1, "state": "received"}
        message |= {"at": datetime.now(UTC).isoformat(), **over}
        wired.inbound.feed(proto.ack_topic(code), proto.encode(message))

    for _ in range(3):
        feed(speaker, seq=5)  # the same refusal: one notice
    feed(speaker, state="played", sha256=play["text_sha256"])  # the text's hash: accepted, no notice
    feed("00595-NOPE", endpoint="00595-NOPE", seq=5)  # an unknown endpoint: refused, never answered
    await wired.h.until(lambda: len(wired.link.to(own)) >= 1)
    await asyncio.sleep(0.3)
    assert wired.link.to(own) == [
        {"v": 1, "op": "ack-refused", "dispatch": str(d.id), "seq": 5, "state": "received", "reason": "bad-sequence"}
    ]
    for seq in range(10, 30):  # a device making sequence numbers up: at most 8 notices in all
        feed(speaker, seq=seq)
    await wired.h.until(lambda: len(wired.link.to(own)) >= 8)
    await asyncio.sleep(0.3)
    assert len(wired.link.to(own)) == 8
    assert wired.h.dispatcher is not None and wired.h.dispatcher.metrics["ack_refusals_not_notified"] == 2 + 13
    assert not [p for p in wired.link.published if p.topic.endswith("/00595-NOPE")]
