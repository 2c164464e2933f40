"""A simulated fleet of endpoints that obeys device protocol v1 (docs/device-protocol.md).

Each device has its own client id and connection, subscribes to its own and its areas' command topics, publishes a
retained `online` status with a retained last will `offline`, acknowledges (`received`, `playing`, `played` with the
SHA-256 of what it played, or `failed` with a reason), de-duplicates by (dispatch id, sequence) so that a resend never
plays twice (it re-acknowledges instead, which recovers lost acks), interrupts lower-priority playback for a more
urgent command and resumes the interrupted item afterwards if it has not expired, never plays expired content, and can
drop offline and come back. `run_processes` spreads a fleet over several processes (runtime/cli/dispatch.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.broker import BrokerAddress
from keng.adapters.mqtt.topics import DEFAULT_ROOT, DEFAULT_TOPICS, Topics
from keng.adapters.mqtt.wire import WireLink, WireWill
from keng.domain.values import AckState


def device_will(code: str, topics: Topics = DEFAULT_TOPICS) -> WireWill:
    """The retained last will of a device: `offline`, reason `last-will`."""
    return WireWill(topics.status(code), proto.encode(proto.status_message(code, "offline", reason="last-will")))


@dataclass(frozen=True)
class DeviceSpec:
    """Who a simulated device is: endpoint code, class (speaker/board) and its area codes, nearest first."""

    code: str
    cls: str
    areas: tuple[str, ...]


@dataclass
class Command:
    dispatch: str
    seq: int
    rank: int
    sha256: str
    seconds: float
    expires_at: datetime


@dataclass
class FleetOptions:
    """Behaviour of the simulated fleet."""

    fail_rate: float = 0.0
    offline_rate: float = 0.0
    comeback_s: tuple[float, float] = (3.0, 8.0)
    play_scale: float = 0.01  # simulated playback time = duration x repeats x play_scale
    seed: int = 2022
    connect_concurrency: int = 200
    drill_mode_rate: float = 1.0  # share of devices in drill mode (they play exercises; the others decline them)
    topic_root: str = DEFAULT_ROOT  # the installation's (KENG_TOPIC_ROOT, `keng simulate --topic-root`)


class SimDevice:
    """One simulated endpoint."""

    def __init__(
        self,
        spec: DeviceSpec,
        broker: BrokerAddress,
        options: FleetOptions,
        rng: random.Random,
        topics: Topics = DEFAULT_TOPICS,
    ) -> None:
        self.topics = topics
        self.drill_mode = options.drill_mode_rate >= 1.0 or rng.random() < options.drill_mode_rate
        self.spec, self.broker, self.options, self.rng = spec, broker, options, rng
        self.link: WireLink | None = None
        self.ack_topic = topics.ack(spec.code)
        self.seen: dict[tuple[str, int], tuple[str, str]] = {}
        self.current: Command | None = None
        self.play_timer: asyncio.TimerHandle | None = None  # a timer, not a task: 10,000 of them start at once
        self.waiting: list[Command] = []
        self.journal: list[tuple[str, str, float]] = []  # (what, dispatch, loop time) for tests
        self.plays: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def code(self) -> str:
        return self.spec.code

    async def connect(self) -> None:
        """Connect (own client id), subscribe, announce `online`."""
        self.link = WireLink(
            self.broker,
            client_id=f"keng-dev-{self.code}",
            subscriptions=tuple(self.topics.device_subscriptions(self.spec.cls, self.code, list(self.spec.areas))),
            on_message=self._on_message,
            will=device_will(self.code, self.topics),
            on_connect=self._announce,
        )
        self.link.start()
        await self.link.connected.wait()

    async def _announce(self, link: WireLink) -> None:
        status = proto.status_message(self.code, "online", datetime.now(UTC))
        await link.publish(self.topics.status(self.code), proto.encode(status), retain=True)

    async def go_offline(self, reason: str = "powered-off") -> None:
        """Announce `offline` (retained) and disconnect; queued playback stops."""
        if self.link is None:
            return
        status = proto.status_message(self.code, "offline", datetime.now(UTC), reason=reason)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.link.publish(self.topics.status(self.code), proto.encode(status), retain=True), 2
            )
        await self.link.close()
        self.link = None
        if self.play_timer:
            self.play_timer.cancel()
        self.current, self.waiting = None, []
        self.journal.append(("offline", "", asyncio.get_running_loop().time()))

    async def close(self) -> None:
        """Disconnect quietly (end of simulation)."""
        for task in list(self._tasks):
            task.cancel()
        if self.play_timer:
            self.play_timer.cancel()
        if self.link is not None:
            await self.link.close()
            self.link = None

    def _ack(self, cmd: Command, state: str, reason: str = "", at: datetime | None = None) -> None:
        self.seen[(cmd.dispatch, cmd.seq)] = (state, reason)
        if self.link is None:
            return
        sha = cmd.sha256 if state == AckState.PLAYED else None
        msg = proto.ack_message(
            code=self.spec.code,
            dispatch_id=cmd.dispatch,
            seq=cmd.seq,
            state=state,
            at=at or datetime.now(UTC),
            sha256=sha,
            reason=reason,
        )
        self.link.send(self.ack_topic, proto.encode(msg))

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            msg = proto.decode(payload)
            key = (str(msg["dispatch"]), int(msg["seq"]))
            op = msg["op"]
        except (proto.ProtocolError, KeyError, TypeError, ValueError):
            return
        now = asyncio.get_running_loop().time()
        if op in ("stop", "clear"):
            if key not in self.seen:
                self.seen[key] = ("stopped", "")
                self._stop(key[0], now)
            return
        if key in self.seen:  # a resend or a second topic: never play twice, re-acknowledge what we know
            state, reason = self.seen[key]
            cmd = Command(key[0], key[1], 9, str(msg.get("audio", {}).get("sha256", "")), 0, datetime.now(UTC))
            self._ack(cmd, state, reason)
            return
        audio = msg.get("audio") or {}
        cmd = Command(
            key[0],
            key[1],
            int(msg.get("rank", 2)),
            str(audio.get("sha256", "")),
            max(0.01, float(audio.get("duration_s") or 1) * int(msg.get("repeats", 1)) * self.options.play_scale),
            datetime.fromisoformat(msg["expires_at"]),
        )
        wall = datetime.now(UTC)
        if cmd.expires_at <= wall:
            self.journal.append(("refused-expired", cmd.dispatch, now))
            self._ack(cmd, AckState.FAILED, "expired", wall)
            return
        self.journal.append(("received", cmd.dispatch, now))
        self._ack(cmd, AckState.RECEIVED, at=wall)
        if msg.get("drill") and not self.drill_mode:
            self.journal.append(("declined-drill", cmd.dispatch, now))
            self._ack(cmd, AckState.FAILED, "drill-mode-off")
            return
        if self.rng.random() < self.options.fail_rate:
            self._ack(cmd, AckState.FAILED, "amplifier-fault")
            return
        if self.current is None:
            self._start(cmd)
        elif cmd.rank < self.current.rank:
            interrupted = self.current
            self.journal.append(("interrupted", interrupted.dispatch, now))
            if self.play_timer:
                self.play_timer.cancel()
            self.waiting.insert(0, interrupted)
            self._start(cmd)
        else:
            self.waiting.append(cmd)
            self.waiting.sort(key=lambda c: c.rank)

    def _stop(self, dispatch: str, now: float) -> None:
        self.waiting = [c for c in self.waiting if c.dispatch != dispatch]
        if self.current is not None and self.current.dispatch == dispatch:
            self.journal.append(("stopped", dispatch, now))
            if self.play_timer:
                self.play_timer.cancel()
            self.current = None
            self._next()

    def _start(self, cmd: Command) -> None:
        self.current = cmd
        self._ack(cmd, AckState.PLAYING)
        self.play_timer = asyncio.get_running_loop().call_later(cmd.seconds, self._played, cmd)

    def _played(self, cmd: Command) -> None:
        self.play_timer = None
        self.plays[cmd.dispatch] += 1
        self.journal.append(("played", cmd.dispatch, asyncio.get_running_loop().time()))
        self._ack(cmd, AckState.PLAYED)
        self.current = None
        self._next()

    def _next(self) -> None:
        while self.waiting:
            cmd = self.waiting.pop(0)
            if cmd.expires_at > datetime.now(UTC):
                self._start(cmd)
                return
            self._ack(cmd, AckState.FAILED, "expired-while-waiting")


@dataclass
class Fleet:
    """Many simulated devices in this process's event loop."""

    broker: BrokerAddress
    specs: list[DeviceSpec]
    options: FleetOptions = field(default_factory=FleetOptions)
    devices: dict[str, SimDevice] = field(default_factory=dict)

    async def start(self) -> int:
        """Connect every device except those drawn offline (they come back later); returns how many connected."""
        rng = random.Random(self.options.seed)
        gate = asyncio.Semaphore(self.options.connect_concurrency)
        topics = Topics(self.options.topic_root)
        self.devices = {
            s.code: SimDevice(s, self.broker, self.options, random.Random(rng.random()), topics) for s in self.specs
        }
        late = [c for c in self.devices if rng.random() < self.options.offline_rate]

        async def one(device: SimDevice) -> None:
            async with gate:
                await asyncio.wait_for(device.connect(), 60)

        await asyncio.gather(*(one(d) for c, d in self.devices.items() if c not in late))
        for code in late:
            self.devices[code].journal.append(("offline", "", asyncio.get_running_loop().time()))
            delay = rng.uniform(*self.options.comeback_s)
            asyncio.get_running_loop().call_later(delay, self._come_back, self.devices[code])
        return len(self.devices) - len(late)

    def _come_back(self, device: SimDevice) -> None:
        task = asyncio.ensure_future(device.connect())
        device._tasks.add(task)  # keep a reference until it is done

    async def stop(self) -> None:
        """Disconnect every device."""
        await asyncio.gather(*(d.close() for d in self.devices.values()), return_exceptions=True)


def fleet_specs(app: Any, *, limit: int | None = None, wards: set[str] | None = None) -> list[DeviceSpec]:
    """Devices for every commandable MQTT endpoint in the store (optionally the first `limit`, or some wards)."""
    from keng.projections.catalog import Catalog

    catalog = Catalog().fold(app.read_events())
    parents: dict[str, str | None] = {a.code: a.parent for a in catalog.areas()}
    specs = []
    for e in catalog.endpoints():
        if e.kind not in proto.CLASS_OF_KIND or e.decommissioned or (wards and e.ward not in wards):
            continue
        chain: list[str] = []
        code: str | None = e.group or e.ward
        while code:
            chain.append(code)
            code = parents.get(code)
        specs.append(DeviceSpec(e.code, proto.CLASS_OF_KIND[e.kind], tuple(chain)))
    return specs[:limit] if limit else specs
