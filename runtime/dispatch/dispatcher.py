"""The dispatcher: follows the log, fans commands out over MQTT, records acks in batches, resends, closes.

Threads: the eventsourcing library is synchronous, so every store call (pulling the log, recording acks and
transitions, opening and closing dispatches) runs on one dedicated store thread, in order; the asyncio loop owns the
MQTT link, the outbox and the live delivery state. Acks are recorded as one `Dispatch.AcksRecorded` per dispatch per
batch (100 ms or 1,000 acks, whichever comes first), all dispatches of a batch in one transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from keng.adapters.aio import cancel_and_wait
from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.link import CommandLink
from keng.adapters.mqtt.wire import MessageSource
from keng.adapters.store.app import Clock, Keng, utc_now
from keng.domain.programme import Programme
from keng.domain.records import DispatchSummary
from keng.domain.values import DispatchOutcome
from keng.runtime.dispatch.content import ItemContent
from keng.runtime.dispatch.intake import AckBarrier, Intake, Notice
from keng.runtime.dispatch.live import LiveDispatch, RetryPolicy
from keng.runtime.dispatch.model import Arm, Cancel, Deliver, DispatchModel, Known, Plan
from keng.runtime.dispatch.outbox import Outbox, Outgoing, Rates
from keng.runtime.dispatch.partitions import Partitions
from keng.runtime.process import freeze_long_lived

log = structlog.get_logger(__name__)
T = TypeVar("T")
OnProgress = Callable[[LiveDispatch], None]
OnClosed = Callable[[LiveDispatch, DispatchSummary], None]


class Dispatcher:
    """Wire it with `run()` inside a task; `stop()` cancels and awaits everything it started.

    Its two links are collaborators (runtime/bootstrap.py `mqtt_links` builds the real ones): `link` carries commands
    out, `inbound` brings acks and statuses in and is handed this dispatcher's intake as its callback. Two connections
    because commands go out through aiomqtt on MQTT 5 (message expiry), while what devices say (30,000 acks within a
    second or two for 10,000 devices) comes in on the lean reader (adapters/mqtt/wire.py says why), at QoS 0 on this
    one hop: on a clean session QoS 1 would keep nothing across a reconnect either, a broker over its queue limit
    drops both alike, and the device's ack is recovered end to end (resend -> re-ack); QoS 0 spares the broker 30,000
    PUBACKs while the fleet is being served (docs/dispatch.md). `client_id` names the ack-barrier topic; pass the
    outbound link's. `topics` are the installation's (KENG_TOPIC_ROOT): everything it publishes and reads lies under
    their root. On a broker cluster (`offline_stops_resends=False`, which `build_dispatcher` sets for an address with
    several nodes) an endpoint whose status says offline is still sent resends: docs/broker.md, Broker clusters.

    What the commands carry is made by `content` (runtime/dispatch/content.py; built on `assets_dir`, where the HTTP
    service finds the files, when not given): the audio for speakers and the board pages, before the first publish.
    Board pages are served at `board_base` (default: beside `audio_base`). With `prepare_ahead` (the default) a
    submitted broadcast's files are made before its approval; `keng serve` turns that off, its render processes make
    the audio at a lower OS priority (runtime/workers/render_pool.py)."""

    def __init__(
        self,
        app: Keng,
        *,
        link: CommandLink,
        inbound: MessageSource,
        programme: Programme | None = None,
        clock: Clock = utc_now,
        poll_s: float = 0.02,
        settle_s: float | None = None,
        retry: RetryPolicy | None = None,
        rates: Rates | None = None,
        audio_base: str = "http://127.0.0.1:8080/audio",
        sign_audio: Callable[[str, datetime], str] | None = None,
        client_id: str = "keng-dispatcher",
        topics: proto.Topics = proto.DEFAULT_TOPICS,
        assets_dir: Path | None = None,
        content: ItemContent | None = None,
        board_base: str | None = None,
        on_progress: OnProgress | None = None,
        on_closed: OnClosed | None = None,
        freeze_gc: bool = False,
        budgets: Mapping[str, int] | None = None,
        prepare_ahead: bool = True,
        partitions: Partitions | None = None,
        offline_stops_resends: bool = True,
    ) -> None:
        self.clock = clock
        self.poll_s = poll_s
        self.settle_s = settle_s
        self.retry = retry or RetryPolicy()
        self.client_id = client_id
        self.topics = topics
        if content is None and assets_dir is not None:
            content = ItemContent(assets_dir)
        self.model = DispatchModel(
            app,
            programme=programme or Programme(),
            clock=clock,
            audio_base=audio_base,
            sign_audio=sign_audio,
            topics=topics,
            content=content,
            board_base=board_base,
            prepare_ahead=prepare_ahead,
        )
        # Several workers on one store share the work by leased slots (runtime/dispatch/partitions.py); alone, one
        # owns everything.
        self.partitions = partitions or Partitions()
        self.model.owns = self.partitions.owns
        self.model.leads = lambda: self.partitions.leader
        self.caught_up = asyncio.Event()
        self.metrics: Counter[str] = Counter()
        self.budgets = dict(budgets or {})
        self.verdicts: Counter[tuple[str, str]] = Counter()  # (priority, met | breached)
        self.intake = Intake(self.metrics, topics.barrier(client_id), topics)
        self.link = link
        self.intake_link = inbound
        inbound.on_message = self.intake.route
        self.outbox = Outbox(self.link, clock=clock, metrics=self.metrics, rates=rates)
        self.barrier = AckBarrier(self.link, self.intake.barrier_topic, self.metrics)
        self.live: dict[str, LiveDispatch] = {}
        self.known: set[str] = set()
        self.classes: dict[str, str] = {}  # endpoint code -> speaker | board (where a notice to it goes)
        self.closed: deque[str] = deque(maxlen=1000)
        self.online: dict[str, bool | None] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.on_progress, self.on_closed = on_progress, on_closed
        self.freeze_gc = freeze_gc  # a process of its own (dispatch run, serve): see _follow
        # False on a broker cluster: a node that was slow or cut off can publish a device's last will after the device
        # announced itself online through another node, so there an offline status does not hold resends back (they
        # go on at the capped backoff; a device truly away just misses them, and is caught up when it comes back).
        self.offline_stops_resends = offline_stops_resends
        self.ready = asyncio.Event()
        self._store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keng-store")
        self._tasks: list[asyncio.Task[Any]] = []

    async def _store(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store_thread, fn, *args)

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, catch up with the log, then follow it until cancelled."""
        self.link.start()
        self.intake_link.start()
        await self.link.connected.wait()
        await self.intake_link.connected.wait()
        await self._store(self.model.content.warm)  # the voice and the board font, before the first emergency
        self.outbox.start()
        for coro in (
            self._follow(),
            self._record_acks(),
            self._record_statuses(),
            self._retry_loop(),
            self._hold_leases(),
        ):
            self._tasks.append(asyncio.create_task(coro))
        try:
            # A worker that fails stops the dispatcher (a swallowed failure is an alert that never sounded);
            # the supervisor restarts it and the log tells it where to resume.
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            await self.stop()

    async def content_ready(self, timeout: float = 60.0) -> bool:
        """Wait until the render stack is loaded (runtime/dispatch/content.py `warm`): from then on an item that needs
        audio rendered on the dispatch path waits only for the rendering. False when it failed or timed out."""
        warmed = self.model.content.warmed
        if warmed is None:
            return True
        try:
            await asyncio.wait_for(asyncio.wrap_future(warmed), timeout)
        except Exception as e:
            log.warning("dispatch.content_not_ready", error=f"{type(e).__name__}: {e}")
            return False
        return True

    async def stop(self) -> None:
        """Cancel every task, close the link and the store thread."""
        for handle in self.timers.values():
            handle.cancel()
        await cancel_and_wait([*self._tasks, *([self.barrier.task] if self.barrier.task else [])])
        self._tasks.clear()
        await self.outbox.stop()
        await self.intake_link.close()
        await self.link.close()
        self._store_thread.shutdown(wait=True)
        self.model.content.close()

    async def _follow(self) -> None:
        while True:
            reactions = await self._store(self.model.step)
            for reaction in reactions:
                self._apply(reaction)
            if self.model.caught_up:
                self.caught_up.set()
            if self.model.caught_up and self.partitions.first_tick.is_set() and not self.ready.is_set():
                if self.freeze_gc:
                    freeze_long_lived()  # the folded log: every endpoint, area and open dispatch
                self.ready.set()
                log.info(
                    "dispatcher.ready",
                    position=self.model.position,
                    live=len(self.live),
                    worker=self.partitions.worker,
                    slots=len(self.partitions.owned),
                )
            if not reactions:
                await asyncio.sleep(self.poll_s)

    async def _hold_leases(self) -> None:
        """Once the log is caught up: hold this worker's slots (nothing without leases)."""
        await self.caught_up.wait()
        await self.partitions.run(self._repartitioned)

    async def _repartitioned(self, gained: frozenset[int], dropped: frozenset[int]) -> None:
        """Let go of the dispatches of dropped slots at once (their new owner resumes them from the log), then take
        over the broadcasts of gained ones from the log, and record the statuses of their endpoints as last heard."""
        for live in list(self.live.values()):
            if self.partitions.slot(live.plan.partition) in dropped and not live.closing:
                self.outbox.drop(live.plan.broadcast_id)
                self.live.pop(live.plan.dispatch_id, None)
                self.outbox.forget(live.plan.dispatch_id)
                self.intake.forget(live.plan.dispatch_id)
                self.metrics["dispatches_handed_over"] += 1
                log.info("dispatch.handed_over", dispatch_id=live.plan.dispatch_id, worker=self.partitions.worker)
        if not gained:
            return
        reactions = await self._store(self.model.reconcile, lambda key: self.partitions.slot(key) in gained)
        for reaction in reactions:
            self._apply(reaction)
        heard = {c: ("online" if on else "offline", "") for c, on in self.online.items() if on is not None}
        if heard:
            await self._store(self.model.record_statuses, heard)
        taken = sum(isinstance(r, Deliver) for r in reactions)
        if taken:
            self.metrics["dispatches_taken_over"] += taken
            log.info("dispatch.taken_over", dispatches=taken, slots=len(gained), worker=self.partitions.worker)

    def _apply(self, reaction: Known | Deliver | Arm | Cancel) -> None:
        if isinstance(reaction, Known):
            self.known.add(reaction.code)
            self.online.setdefault(reaction.code, reaction.online)
            if reaction.cls:
                self.classes[reaction.code] = reaction.cls
        elif isinstance(reaction, Deliver):
            self._deliver(reaction.plan)
        elif isinstance(reaction, Arm):
            self._arm(str(reaction.broadcast_id), reaction.at)
        else:
            asyncio.get_running_loop().create_task(self._cancel(reaction))

    def _arm(self, broadcast_id: str, at: Any) -> None:
        if broadcast_id in self.timers:
            self.timers[broadcast_id].cancel()
        delay = max(0.0, (at - self.clock()).total_seconds())
        loop = asyncio.get_running_loop()
        self.timers[broadcast_id] = loop.call_later(delay, lambda: loop.create_task(self._release(broadcast_id)))
        log.info("dispatch.armed", broadcast_id=broadcast_id, at=at.isoformat(), in_s=round(delay, 1))

    async def _release(self, broadcast_id: str) -> None:
        from uuid import UUID

        self.timers.pop(broadcast_id, None)
        for reaction in await self._store(self.model.release, UUID(broadcast_id)):
            self._apply(reaction)

    # -- delivery --------------------------------------------------------------------------------------------------

    def _deliver(self, plan: Plan) -> None:
        if plan.dispatch_id in self.live or not self.partitions.owns(plan.partition):
            return
        live = LiveDispatch(plan, self.retry, time.monotonic())
        self.live[plan.dispatch_id] = live
        for topic in plan.group_topics:
            cls = topic.split("/")[3]
            self._send(live, topic, cls, cellular=cls == proto.BOARD)  # a group command: every board variant
        for code in plan.direct:
            self._send_to(live, code)
        log.info(
            "dispatch.delivering",
            dispatch_id=plan.dispatch_id,
            priority=plan.priority,
            targets=len(plan.targets),
            group_topics=len(plan.group_topics),
            direct=len(plan.direct),
            resumed=plan.resumed,
        )
        self._maybe_close(live)

    def _send(self, live: LiveDispatch, topic: str, key: str, *, cellular: bool) -> None:
        """Queue the plan's command `key` (Plan.commands) to a topic."""
        plan = live.plan
        item = Outgoing(
            topic,
            plan.commands[key],
            plan.expires_at,
            plan.rank,
            cellular,
            plan.broadcast_id,
            plan.dispatch_id,
        )
        self.outbox.put("speaker" if key == proto.SPEAKER else "board", item)

    def _send_to(self, live: LiveDispatch, code: str) -> None:
        target = live.plan.targets[code]
        self._send(live, self.topics.endpoint(target.cls, code), target.key, cellular=target.cellular)

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now, mono = self.clock(), time.monotonic()
            for live in list(self.live.values()):
                if now >= live.plan.expires_at:
                    await self._close(live, DispatchOutcome.EXPIRED)
                    continue
                due = live.due_retries(mono, self._reachable, self.barrier.read_at)
                if live.held_back:
                    self.barrier.request()
                for code in due:
                    self._send_to(live, code)
                if due:
                    self.metrics["commands_resent"] += len(due)
                    live.plan.retries += 1
                    await self._store(self.model.record_retries, live.plan.dispatch_id, due)
                self._maybe_close(live)

    def _reachable(self, code: str) -> bool:
        """Whether a resend to this endpoint can reach it: not while its status says offline (on a single broker;
        see `offline_stops_resends`)."""
        return self.online.get(code) is not False or not self.offline_stops_resends

    def _maybe_close(self, live: LiveDispatch) -> None:
        did = live.plan.dispatch_id
        outcome = live.outcome(
            time.monotonic(), self.settle_s, self.outbox.queued[did], self.outbox.last_out.get(did, 0.0)
        )
        if outcome and not live.closing:
            live.closing = True
            asyncio.get_running_loop().create_task(self._close(live, outcome))

    async def _close(self, live: LiveDispatch, outcome: str) -> None:
        live.closing = True
        online = {c for c in live.plan.targets if self.online.get(c)}
        summary = live.summary(outcome, online)
        verdict = live.verdict(online, self.budgets) if outcome != DispatchOutcome.CANCELLED else None
        await self._store(self.model.close, live.plan.dispatch_id, summary, verdict)
        if verdict is not None:
            self.verdicts[(verdict["priority"], verdict["verdict"])] += 1
            if verdict["verdict"] == "breached":
                log.warning("dispatch.budget_breached", dispatch_id=live.plan.dispatch_id, **verdict)
        self.live.pop(live.plan.dispatch_id, None)
        self.outbox.forget(live.plan.dispatch_id)
        self.intake.forget(live.plan.dispatch_id)
        self.closed.append(live.plan.dispatch_id)
        log.info("dispatch.closed", dispatch_id=live.plan.dispatch_id, **{k: v for k, v in summary.items()})
        if self.on_closed:
            self.on_closed(live, summary)

    async def _cancel(self, reaction: Cancel) -> None:
        bid = str(reaction.broadcast_id)
        if bid in self.timers:
            self.timers.pop(bid).cancel()
        dropped = self.outbox.drop(bid)
        for plan in reaction.plans:
            live = self.live.get(plan.dispatch_id) or LiveDispatch(plan, self.retry, time.monotonic())
            self.live.setdefault(plan.dispatch_id, live)
            live.stop_seq = plan.seq + 1  # after the item on air, so that a device that played it stops
            for cls in sorted(plan.classes):
                stop = proto.encode(
                    proto.stop_command(
                        cls=cls,
                        broadcast_id=bid,
                        dispatch_id=plan.dispatch_id,
                        seq=live.stop_seq,
                        expires_at=plan.expires_at,
                    )
                )
                topics = [t for t in plan.group_topics if t.split("/")[3] == cls]
                topics += [
                    self.topics.endpoint(cls, c)
                    for c in plan.targets
                    if plan.targets[c].cls == cls and (c in plan.direct or live.resent(c))
                ]
                for topic in topics:
                    item = Outgoing(topic, stop, plan.expires_at, 0, cls == proto.BOARD, "", plan.dispatch_id)
                    self.outbox.put("speaker" if cls == proto.SPEAKER else "board", item)
            await self._close(live, DispatchOutcome.CANCELLED)
        log.info("dispatch.cancelled", broadcast_id=bid, dropped_queued=dropped, dispatches=len(reaction.plans))

    # -- what devices say ------------------------------------------------------------------------------------------

    async def _record_acks(self) -> None:
        await self.ready.wait()  # messages wait in the bounded queue until the log is caught up
        while True:
            batch, barriers = self.intake.split_barriers(await self.intake.drain(self.intake.acks))
            by_dispatch = self.intake.sort_acks(batch, self.live, self.known, _NotLiveHere(self))
            unrecorded: set[str] = set()
            if by_dispatch:
                refused, unrecorded = await self._store(self.model.record_acks, by_dispatch)
                self.metrics["acks_recorded"] += sum(len(a) for a in by_dispatch.values()) - refused
                self.metrics["ack_batches_recorded"] += 1
            for did, acks in by_dispatch.items():
                live = self.live.get(did)
                if live is None or did in unrecorded:  # (not written: its summary must not claim them)
                    continue
                live.apply(acks)
                if self.on_progress:
                    self.on_progress(live)
                self._maybe_close(live)
            self._notify_refused(self.intake.take_notices())
            self.barrier.passed(barriers)

    def _notify_refused(self, notices: list[Notice]) -> None:
        """Tell each device whose ack about a live dispatch was refused, on its own command topic (the intake keeps it
        to one notice per endpoint, dispatch, seq and reason)."""
        for notice in notices:
            live, cls = self.live.get(notice.dispatch), self.classes.get(notice.code)
            if live is None or not cls:
                continue
            payload = proto.encode(
                proto.ack_refused(dispatch_id=notice.dispatch, seq=notice.seq, state=notice.state, reason=notice.reason)
            )
            target = live.plan.targets.get(notice.code)
            item = Outgoing(
                self.topics.endpoint(cls, notice.code),
                payload,
                live.plan.expires_at,
                2,  # behind every command of any priority
                target.cellular if target else False,
                "",
                "",  # not the dispatch's own: a notice never holds its closing back
            )
            if self.outbox.put("speaker" if cls == proto.SPEAKER else "board", item):
                self.metrics["ack_refusals_notified"] += 1

    async def _record_statuses(self) -> None:
        await self.ready.wait()  # retained statuses arrive at once; the endpoints are known after catch-up
        while True:
            batch = await self.intake.drain(self.intake.statuses)
            changes = self.intake.sort_statuses(batch, self.known)
            if not changes:
                continue
            await self._store(self.model.record_statuses, changes)
            for code, (state, _) in changes.items():
                was_online = self.online.get(code)
                self.online[code] = state == "online"
                if state == "online" and was_online is not True:
                    self._resend_live(code)

    def _resend_live(self, code: str) -> None:
        """An endpoint came (back) online: send what is still live for it and not acknowledged."""
        now = self.clock()
        for live in self.live.values():
            pending = code in live.plan.targets and code not in live.plan.states
            fresh = time.monotonic() - live.opened_mono < 1.0  # the group publish is still on its way
            if pending and not fresh and live.plan.expires_at > now and not live.closing:
                live.mark_resent(code, time.monotonic())
                self._send_to(live, code)
                self.metrics["commands_sent_on_reconnect"] += 1


class _NotLiveHere:
    """Dispatches an ack may name that are not live here without anything being wrong: closed ones (a late re-ack),
    and, with several workers, those another worker delivers (every worker hears every ack)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.closed = dispatcher.closed
        self.model = dispatcher.model
        self.shared = dispatcher.partitions.leases is not None

    def __contains__(self, dispatch_id: object) -> bool:
        return dispatch_id in self.closed or (self.shared and self.model.knows_dispatch(dispatch_id))
