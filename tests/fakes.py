"""Recording fakes of the dispatcher's links (adapters/mqtt/link.py `CommandLink`, adapters/mqtt/wire.py
`MessageSource`), so that its loop can be driven without a broker: what it publishes is kept in `published`, and what
devices say is fed in by hand. Like a broker, the fake hands the dispatcher's own ack-topic publishes (its ack-barrier
markers) back to the intake that subscribes to acks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.link import LinkClosed
from keng.adapters.mqtt.wire import OnMessage


@dataclass(frozen=True)
class Published:
    """One publish the dispatcher made."""

    topic: str
    payload: bytes
    expires_at: datetime | None

    @property
    def message(self) -> Any:
        return proto.decode(self.payload)


class FakeInbound:
    """The intake link: `feed` plays a device's message into the dispatcher's callback."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.on_message: OnMessage | None = None
        self.closed = False

    def start(self) -> None:
        self.connected.set()

    def feed(self, topic: str, payload: bytes) -> None:
        if self.on_message is None:
            raise RuntimeError("no dispatcher listens to this intake")
        self.on_message(topic, payload)

    async def close(self) -> None:
        self.closed = True


class RecordingLink:
    """The outbound link: records every publish; ack-topic publishes come back through `loopback`, as a broker would
    deliver them to a subscriber of `keng/v1/ack/+`."""

    def __init__(self, loopback: FakeInbound | None = None) -> None:
        self.connected = asyncio.Event()
        self.loopback = loopback
        self.published: list[Published] = []
        self.closed = False

    def start(self) -> None:
        self.connected.set()

    async def publish(self, topic: str, payload: bytes, *, expires_at: datetime | None = None) -> bool:
        if self.closed:
            raise LinkClosed("recording link")
        self.published.append(Published(topic, payload, expires_at))
        if self.loopback is not None and proto.parse_ack_topic(topic) is not None:
            asyncio.get_running_loop().call_soon(self.loopback.feed, topic, payload)
        return True

    async def close(self) -> None:
        self.closed = True

    def to(self, topic: str) -> list[Any]:
        """The decoded messages published to a topic, in order."""
        return [p.message for p in self.published if p.topic == topic]
