"""A simulated fleet of endpoints that obeys device protocol v1 (docs/device-protocol.md).

Each device has its own client id and connection, subscribes to its own and its areas' command topics, publishes a
retained `online` status with a retained last will `offline`, acknowledges (`received`, `playing`, `played` with the
SHA-256 of what it played, or `failed` with a reason), de-duplicates by (dispatch id, sequence) so that a resend never
plays twice (it re-acknowledges what it did, with the hash of what it played, which recovers lost acks), interrupts
lower-priority playback for a more urgent command and resumes the interrupted item afterwards if it has not expired,
never plays expired content, and can drop offline and come back. `run_processes` spreads a fleet over several
processes (runtime/cli/dispatch.py); on a broker cluster (several URLs) a fleet spreads its devices over the nodes, each
falling over to the next node when its own goes away.

A speaker plays the command's audio file and reports its `audio.sha256` (a command without audio: it speaks the text
and reports the SHA-256 of the text). A board behaves as a real one: it takes the `board.variants` entry of its own
resolution, fetches the image over HTTP, checks the SHA-256 of the bytes, shows it and acknowledges `displayed` with
that hash; a text-only board, or one whose image cannot be fetched or does not match, shows the text and
acknowledges `displayed` with the text's SHA-256 (counted in `fallbacks`). It acknowledges `cleared` when a `clear`
takes the bulletin off, or at its expiry. An `ack-refused` notice from keng is logged and counted (`refusals`).

A device's memory is bounded by what is live: its de-duplication entries (and the dispatches a stop ended) are
forgotten `FORGET_AFTER` past their dispatch's expiry (a resend comes no later: keng sends nothing expired), its journal
keeps the last `JOURNAL_KEEP` entries, and `plays` is one count per dispatch, forgotten with its de-duplication entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import sys
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import structlog

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.broker import BrokerAddress
from keng.adapters.mqtt.topics import DEFAULT_ROOT, DEFAULT_TOPICS, Topics
from keng.adapters.mqtt.wire import WireLink, WireWill
from keng.domain.display import board_resolution
from keng.domain.values import AckState

log = structlog.get_logger(__name__)
Fetch = Callable[[str], Awaitable[bytes]]
FETCH_TIMEOUT_S = 10.0
JOURNAL_KEEP = 16  # a device's journal: its last entries (what tests and bench/faults.py read: a few dispatches')
# A dispatch's de-duplication entries outlive its expiry by this much (a copy that comes later is refused for its
# expiry anyway: the margin covers a clock a little behind keng's).
FORGET_AFTER = timedelta(minutes=1)
PRUNE_EVERY_S = 30.0  # how often (loop time) a device looks for dispatches to forget


def device_will(code: str, topics: Topics = DEFAULT_TOPICS) -> WireWill:
    """The retained last will of a device: `offline`, reason `last-will`."""
    return WireWill(topics.status(code), proto.encode(proto.status_message(code, "offline", reason="last-will")))


def device_client_id(code: str, topics: Topics) -> str:
    """A simulated device's client id: `keng-dev-<code>` under the default root; under another root the root's levels
    join it (`keng-dev-site-a.keng-<code>`), so that two installations' fleets with the same codes on one broker do not
    knock each other off."""
    if topics.root == DEFAULT_TOPICS.root:
        return f"keng-dev-{code}"
    return f"keng-dev-{topics.root.replace('/', '.')}-{code}"


@dataclass(frozen=True)
class DeviceSpec:
    """Who a simulated device is: endpoint code, class (speaker/board), its area codes, nearest first, and a board's
    resolution (None: a speaker, or a board that shows text only)."""

    code: str
    cls: str
    areas: tuple[str, ...]
    display: tuple[int, int] | None = None


@dataclass
class Command:
    dispatch: str
    seq: int
    rank: int
    sha256: str  # what it plays (a speaker) or shows (a board): the file's hash, or the text's
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
    spread: bool = True  # on a broker cluster, device i starts at node i mod n (else every device at the first)


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
        self.seen: dict[tuple[str, int], tuple[str, str, str]] = {}  # (state, reason, hash of what it played)
        self.current: Command | None = None
        self.play_timer: asyncio.TimerHandle | None = None  # a timer, not a task: 10,000 of them start at once
        self.waiting: list[Command] = []
        self.journal: deque[tuple[str, str, float]] = deque(maxlen=JOURNAL_KEEP)  # (what, dispatch, loop time)
        self.plays: Counter[str] = Counter()
        self.shown: dict[tuple[str, int], tuple[str, asyncio.TimerHandle | None]] = {}  # a board's: hash, clear timer
        self.stopped: set[str] = set()  # dispatches a stop or clear ended
        self.fallbacks = 0  # a board showed the text: its image could not be fetched or did not match
        self.refusals: Counter[str] = Counter()  # keng's `ack-refused` notices, by reason
        self.expiries: dict[str, datetime] = {}  # dispatch -> the latest expiry its commands carried
        self._pruned_at = float("-inf")
        self.fetch: Fetch | None = None  # set by the fleet: GET a URL, the body (raises on failure)
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def code(self) -> str:
        return self.spec.code

    async def connect(self) -> None:
        """Connect (own client id: `device_client_id`), subscribe, announce `online`."""
        self.link = WireLink(
            self.broker,
            client_id=device_client_id(self.code, self.topics),
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
        for _, timer in self.shown.values():
            if timer:
                timer.cancel()
        if self.link is not None:
            await self.link.close()
            self.link = None

    def _ack(self, cmd: Command, state: str, reason: str = "", at: datetime | None = None) -> None:
        sha = cmd.sha256 if state in (AckState.PLAYED, AckState.DISPLAYED, AckState.CLEARED) else None
        self.seen[(cmd.dispatch, cmd.seq)] = (state, reason, sha or "")
        if self.link is None:
            return
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
            op = msg["op"]
            if op == proto.ACK_REFUSED_OP:
                self._refused(msg)
                return
            # one string for a dispatch's id across the whole fleet, not one a device (interned)
            key = (sys.intern(str(msg["dispatch"])), int(msg["seq"]))
        except (proto.ProtocolError, KeyError, TypeError, ValueError):
            return
        now = asyncio.get_running_loop().time()
        self._note_expiry(key[0], msg.get("expires_at"), now)
        if op in ("stop", "clear"):
            if key not in self.seen:
                self.seen[key] = ("stopped", "", "")
                self.stopped.add(key[0])
                self._stop(key[0], now)
                self._clear(key[0])
            return
        if key in self.seen:  # a resend or a second topic: never play twice, re-acknowledge what we know
            state, reason, played = self.seen[key]  # the hash of what it played, whatever this copy says
            self._ack(Command(key[0], key[1], 9, played, 0, datetime.now(UTC)), state, reason)
            return
        audio = msg.get("audio")
        text = str(msg.get("text", ""))
        # A speaker plays the file; without one it speaks the text and reports the text's hash.
        played = sys.intern(
            str(audio["sha256"]) if isinstance(audio, dict) and audio.get("url") else proto.text_sha256(text)
        )
        seconds = float(audio.get("duration_s") or 1) if isinstance(audio, dict) else len(text) / 14.0
        cmd = Command(
            key[0],
            key[1],
            int(msg.get("rank", 2)),
            played,
            max(0.01, seconds * int(msg.get("repeats", 1)) * self.options.play_scale),
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
        if self.spec.cls == proto.BOARD:
            self._spawn(self._display(cmd, msg, text))
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

    def _note_expiry(self, dispatch: str, raw: object, now: float) -> None:
        """Now and then forget the dispatches long expired; remember until when this one can send."""
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            self.forget_expired(datetime.now(UTC))
        try:
            expires_at = datetime.fromisoformat(str(raw))
        except ValueError:
            expires_at = datetime.now(UTC)  # none given: kept FORGET_AFTER from now
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        known = self.expiries.get(dispatch)
        if known is None or expires_at > known:
            self.expiries[dispatch] = expires_at

    def forget_expired(self, wall: datetime) -> None:
        """Forget the de-duplication entries of dispatches that expired more than FORGET_AFTER before `wall` (one
        still playing, waiting or shown is kept)."""
        live = {c.dispatch for c in self.waiting} | {k[0] for k in self.shown}
        if self.current is not None:
            live.add(self.current.dispatch)
        gone = {d for d, at in self.expiries.items() if at + FORGET_AFTER <= wall and d not in live}
        if not gone:
            return
        self.seen = {k: v for k, v in self.seen.items() if k[0] not in gone}
        self.stopped -= gone
        for dispatch in gone:
            del self.expiries[dispatch]
            self.plays.pop(dispatch, None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _display(self, cmd: Command, msg: dict[str, Any], text: str) -> None:
        """Show a bulletin: the image of this board's resolution when it can be fetched and matches its hash, else the
        text; acknowledge `displayed` with the hash of what is shown, `cleared` at expiry (or on `clear`)."""
        shown = proto.text_sha256(text)
        variant = self._variant(msg)
        if variant is not None:
            image = variant.get("image") or {}
            try:
                if self.fetch is None:
                    raise RuntimeError("no HTTP client")
                body = await self.fetch(str(image["url"]))
                if hashlib.sha256(body).hexdigest() != image.get("sha256"):
                    raise ValueError("the image does not match its sha256")
                shown = str(image["sha256"])
            except Exception as e:  # a board that cannot get its image still shows the bulletin, as text
                self.fallbacks += 1
                log.info("simulator.board_text_fallback", endpoint=self.code, error=f"{type(e).__name__}: {e}"[:200])
        key = (cmd.dispatch, cmd.seq)
        if cmd.dispatch in self.stopped or self.link is None:
            return  # cleared while the image was on its way, or the board went offline
        cmd.sha256 = shown
        self.plays[cmd.dispatch] += 1
        self.journal.append(("displayed", cmd.dispatch, asyncio.get_running_loop().time()))
        self._ack(cmd, AckState.DISPLAYED)
        delay = max(0.0, (cmd.expires_at - datetime.now(UTC)).total_seconds())
        timer = asyncio.get_running_loop().call_later(delay, self._expire, cmd)
        self.shown[key] = (shown, timer)

    def _variant(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """The `board.variants` entry of this board's resolution (None: a text-only board, or none for it)."""
        board = msg.get("board")
        if self.spec.display is None or not isinstance(board, dict):
            return None
        width, height = self.spec.display
        for variant in board.get("variants") or []:
            if isinstance(variant, dict) and variant.get("width") == width and variant.get("height") == height:
                return variant
        return None

    def _expire(self, cmd: Command) -> None:
        self.shown.pop((cmd.dispatch, cmd.seq), None)
        self.journal.append(("cleared", cmd.dispatch, asyncio.get_running_loop().time()))
        self._ack(cmd, AckState.CLEARED)

    def _clear(self, dispatch: str) -> None:
        """A `clear` took a dispatch's bulletin off this board."""
        for key in [k for k in self.shown if k[0] == dispatch]:
            sha, timer = self.shown.pop(key)
            if timer:
                timer.cancel()
            self.journal.append(("cleared", dispatch, asyncio.get_running_loop().time()))
            self._ack(Command(key[0], key[1], 9, sha, 0, datetime.now(UTC)), AckState.CLEARED)

    def _refused(self, msg: dict[str, Any]) -> None:
        """keng refused one of this device's acks (or recorded it failed): log and count it."""
        reason = str(msg.get("reason", ""))[:60]
        self.refusals[reason] += 1
        self.journal.append(("ack-refused", str(msg.get("dispatch", "")), asyncio.get_running_loop().time()))
        log.info("simulator.ack_refused", endpoint=self.code, dispatch=msg.get("dispatch"), seq=msg.get("seq"),
                 state=msg.get("state"), reason=reason)  # fmt: skip

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
    http: aiohttp.ClientSession | None = None

    async def fetch(self, url: str) -> bytes:
        """GET a URL (a board's image): the body of a 200, else an error."""
        if self.http is None:
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        async with self.http.get(url) as response:
            response.raise_for_status()
            return await response.read()

    async def start(self) -> int:
        """Connect every device except those drawn offline (they come back later); returns how many connected."""
        rng = random.Random(self.options.seed)
        gate = asyncio.Semaphore(self.options.connect_concurrency)
        topics = Topics(self.options.topic_root)
        spread = self.options.spread
        self.devices = {
            s.code: SimDevice(
                s, self.broker.rotated(i) if spread else self.broker, self.options, random.Random(rng.random()), topics
            )
            for i, s in enumerate(self.specs)
        }
        for device in self.devices.values():
            device.fetch = self.fetch
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
        if self.http is not None:
            await self.http.close()
            self.http = None


def fleet_specs(app: Any, *, limit: int | None = None, wards: set[str] | None = None) -> list[DeviceSpec]:
    """Devices for every commandable MQTT endpoint in the store (optionally the first `limit`, or some wards)."""
    from keng.projections.catalog import Catalog

    catalog = Catalog().fold(app.read_events())
    parents = catalog.area_registry().in_force(app.clock()).parents  # the group topics of the tree in force now
    specs = []
    for e in catalog.endpoints():
        if e.kind not in proto.CLASS_OF_KIND or e.decommissioned or (wards and e.ward not in wards):
            continue
        chain: list[str] = []
        code: str | None = e.group or e.ward
        while code:
            chain.append(code)
            code = parents.get(code)
        cls = proto.CLASS_OF_KIND[e.kind]
        display = board_resolution(e.technology, e.capabilities) if cls == proto.BOARD else None
        specs.append(DeviceSpec(e.code, cls, tuple(chain), display))
    return specs[:limit] if limit else specs
