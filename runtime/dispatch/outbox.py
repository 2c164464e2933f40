"""Outgoing commands: one bounded set of priority lanes per channel, drained by publisher tasks through throttles.

An `emergency` command is published before anything of lower priority still queued (lanes, domain/lanes.py); each
channel has its own rate (asyncio-throttle), and so does each endpoint class (boards and speakers on 3G/4G get a lower
rate than wired ones). Expired commands are dropped here, at the last moment before publishing.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import structlog
from asyncio_throttle.throttler import Throttler

from keng.adapters.aio import cancel_and_wait
from keng.adapters.mqtt.link import CommandLink
from keng.adapters.store.app import Clock
from keng.domain.lanes import PriorityLanes

log = structlog.get_logger(__name__)
LANE_CAPACITY = {0: 50_000, 1: 100_000, 2: 200_000}
# Publishers per channel: each awaits its PUBACK, so this is the number of commands in flight per channel. With 4,
# a backlog of commands to single endpoints drained at about 300/s on a busy 2-core machine (bench/priority.py).
WORKERS = 32


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One command to publish."""

    topic: str
    payload: bytes
    expires_at: datetime
    rank: int
    cellular: bool
    broadcast_id: str
    dispatch_id: str
    order: int = 0


@dataclass(frozen=True)
class Rates:
    """Messages per second: per channel (`speaker`, `board`) and per endpoint class (wired, cellular)."""

    speaker: float = 5000.0
    board: float = 500.0
    wired: float = 5000.0
    cellular: float = 1000.0


class Outbox:
    """Lanes and publishers for every channel; `put` never blocks (a full lane refuses and is counted)."""

    def __init__(
        self,
        link: CommandLink,
        *,
        clock: Clock,
        metrics: Counter[str],
        rates: Rates | None = None,
        workers: int = WORKERS,
    ) -> None:
        rates = rates or Rates()
        self.link = link
        self.clock = clock
        self.metrics = metrics
        self.workers = workers
        self.lanes: dict[str, PriorityLanes[Outgoing]] = {
            "speaker": PriorityLanes(LANE_CAPACITY),
            "board": PriorityLanes(LANE_CAPACITY),
        }
        self.channel_rate = {
            "speaker": Throttler(rate_limit=max(1, int(rates.speaker / 10)), period=0.1),
            "board": Throttler(rate_limit=max(1, int(rates.board / 10)), period=0.1),
        }
        self.class_rate = {
            False: Throttler(rate_limit=max(1, int(rates.wired / 10)), period=0.1),
            True: Throttler(rate_limit=max(1, int(rates.cellular / 10)), period=0.1),
        }
        self._wake = {channel: asyncio.Event() for channel in self.lanes}
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0
        self.queued: Counter[str] = Counter()  # commands still queued or being published, per dispatch id
        self.last_out: dict[str, float] = {}  # monotonic time a dispatch's last queued command left the outbox

    def put(self, channel: str, item: Outgoing) -> bool:
        """Queue a command on a channel's lane for its rank."""
        if not self.lanes[channel].push(item.rank, item, item.order):
            self.metrics["commands_refused_queue_full"] += 1
            log.error("dispatch.queue_full", channel=channel, rank=item.rank, dispatch_id=item.dispatch_id)
            return False
        self.queued[item.dispatch_id] += 1
        self._wake[channel].set()
        return True

    def drop(self, broadcast_id: str) -> int:
        """Remove everything queued for a broadcast (it was cancelled)."""
        dropped: list[Outgoing] = []

        def match(item: Outgoing) -> bool:
            if item.broadcast_id == broadcast_id:
                dropped.append(item)
                return True
            return False

        for lanes in self.lanes.values():
            lanes.remove_where(match)
        for item in dropped:
            self._done(item.dispatch_id)
        return len(dropped)

    def forget(self, dispatch_id: str) -> None:
        """A dispatch closed: stop tracking it."""
        self.queued.pop(dispatch_id, None)
        self.last_out.pop(dispatch_id, None)

    def _done(self, dispatch_id: str) -> None:
        if self.queued.get(dispatch_id):  # a closed dispatch's stop commands are no longer tracked
            self.queued[dispatch_id] -= 1
            self.last_out[dispatch_id] = time.monotonic()

    def depth(self) -> int:
        """Commands queued on all channels."""
        return sum(len(lanes) for lanes in self.lanes.values())

    def start(self) -> None:
        """Start the publisher tasks (kept, cancelled by `stop`)."""
        for channel in self.lanes:
            for i in range(self.workers):
                self._tasks.append(asyncio.create_task(self._publisher(channel), name=f"publish-{channel}-{i}"))

    async def stop(self) -> None:
        """Cancel and await the publisher tasks."""
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    async def _publisher(self, channel: str) -> None:
        lanes, wake = self.lanes[channel], self._wake[channel]
        while True:
            item = lanes.pop()
            if item is None:
                wake.clear()
                await wake.wait()
                continue
            if item.expires_at <= self.clock():
                self.metrics["commands_dropped_expired"] += 1
                self._done(item.dispatch_id)
                continue
            try:
                async with self.channel_rate[channel], self.class_rate[item.cellular]:
                    sent = await self.link.publish(item.topic, item.payload, expires_at=item.expires_at)
            finally:
                self._done(item.dispatch_id)
            if sent:
                self.published += 1
                self.metrics["commands_published"] += 1
            else:
                self.metrics["commands_dropped_expired"] += 1
