"""What devices say, before it reaches the store: routing MQTT messages onto bounded queues, draining them in batches,
and sorting a batch of acks or statuses into what to record and what to refuse (counted, logged, never recorded).

Split from runtime/dispatch/dispatcher.py: everything here runs on the dispatcher's loop and touches no store.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Collection, Container, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.link import CommandLink, LinkClosed
from keng.domain.delivery import check_ack
from keng.domain.device_status import check_status
from keng.domain.dispatch import ACK_STATES
from keng.domain.records import Ack
from keng.runtime.dispatch.live import LiveDispatch

log = structlog.get_logger(__name__)
ACK_BATCH, ACK_WINDOW_S = 1000, 0.1
BARRIER_TIMEOUT_S = 10.0
Message = tuple[str, bytes]
NOTICES_PER_ENDPOINT = 8  # refusal notices per endpoint and dispatch, whatever sequence numbers it makes up


@dataclass(frozen=True, slots=True)
class Notice:
    """An ack keng refused (or recorded as failed) about a live dispatch, to tell its endpoint about."""

    code: str
    dispatch: str
    seq: int | None
    state: str | None
    reason: str


def _echo(message: Any) -> tuple[int | None, str | None]:
    """The `seq` and `state` of a refused ack, as far as they are fit to send back."""
    if not isinstance(message, dict):
        return None, None
    seq, state = message.get("seq"), message.get("state")
    fit_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**31 else None
    return fit_seq, state if state in ACK_STATES else None


class Intake:
    """Bounded queues for acks and statuses, and the checks that sort them."""

    def __init__(
        self, metrics: Counter[str], barrier_topic: str = "", topics: proto.Topics = proto.DEFAULT_TOPICS
    ) -> None:
        self.metrics = metrics
        self.topics = topics
        # Refused messages by (kind, reason), e.g. ("acks", "bad-json"): the labels of a metric, kept as a tuple.
        self.refused: Counter[tuple[str, str]] = Counter()
        self.barrier_topic = barrier_topic
        self.acks: asyncio.Queue[Message] = asyncio.Queue(maxsize=200_000)
        self.statuses: asyncio.Queue[Message] = asyncio.Queue(maxsize=50_000)
        self._notices: list[Notice] = []
        self._noticed: dict[str, dict[str, set[tuple[int | None, str]]]] = {}  # dispatch -> endpoint -> (seq, reason)

    def notice(self, code: str, dispatch: str, message: Any, reason: str) -> None:
        """Queue a refusal notice for an endpoint, at most one per endpoint, dispatch, seq and reason (and at most
        NOTICES_PER_ENDPOINT per endpoint and dispatch); `take_notices` hands them over."""
        seq, state = _echo(message)
        seen = self._noticed.setdefault(dispatch, {}).setdefault(code, set())
        if (seq, reason) in seen or len(seen) >= NOTICES_PER_ENDPOINT:
            self.metrics["ack_refusals_not_notified"] += 1
            return
        seen.add((seq, reason))
        self._notices.append(Notice(code, dispatch, seq, state, reason))

    def take_notices(self) -> list[Notice]:
        """The notices queued since the last call."""
        notices, self._notices = self._notices, []
        return notices

    def forget(self, dispatch: str) -> None:
        """A dispatch closed: its notices' rate limit goes with it."""
        self._noticed.pop(dispatch, None)

    def route(self, topic: str, payload: bytes) -> None:
        """The MQTT callback: queue an ack or a status (never blocks; a full queue drops and counts)."""
        queue = None
        code = self.topics.parse_ack(topic)
        if code is not None:
            if proto.is_barrier_code(code) and topic != self.barrier_topic:
                return  # another dispatcher's ack barrier marker
            queue = self.acks  # this dispatcher's marker too: behind the acks read before it
        elif self.topics.parse_status(topic) is not None:
            queue = self.statuses
        if queue is None:
            self.refused["messages", "foreign-topic"] += 1
            return
        try:
            queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            self.metrics["messages_dropped_queue_full"] += 1

    def refuse(self, kind: str, reason: str, topic: str) -> None:
        """Count and log a refused message."""
        self.refused[kind, reason or "unspecified"] += 1
        log.warning(f"{kind}.refused", reason=reason, topic=topic[:120])

    @staticmethod
    async def drain(queue: asyncio.Queue[Message]) -> list[Message]:
        """Wait for one message, then take what comes within ACK_WINDOW_S, up to ACK_BATCH."""
        batch = [await queue.get()]
        deadline = time.monotonic() + ACK_WINDOW_S
        while len(batch) < ACK_BATCH:
            while len(batch) < ACK_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            if len(batch) >= ACK_BATCH or time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        return batch

    def split_barriers(self, batch: list[Message]) -> tuple[list[Message], list[str]]:
        """The acks of a batch, and the tokens of the barrier markers in it."""
        tokens = [payload.decode(errors="replace") for topic, payload in batch if topic == self.barrier_topic]
        if not tokens:
            return batch, []
        return [m for m in batch if m[0] != self.barrier_topic], tokens

    def sort_acks(
        self, batch: list[Message], live: Mapping[str, LiveDispatch], known: Collection[str], closed: Container[str]
    ) -> dict[str, list[Ack]]:
        """The acks of a batch that move an endpoint forward, by dispatch id; the rest are counted."""
        by_dispatch: dict[str, list[Ack]] = {}
        targets = {d: x.plan.targets for d, x in live.items() if not x.closing}
        shas = {d: x.plan.accepted for d, x in live.items()}
        seqs = {d: max(x.plan.seq, x.stop_seq) for d, x in live.items()}
        for topic, payload in batch:
            code = self.topics.parse_ack(topic) or ""
            try:
                message = proto.decode(payload)
            except proto.ProtocolError:
                self.refuse("acks", "bad-json", topic)
                continue
            check = check_ack(code, message, known_endpoints=known, targets_of=targets, sha256_of=shas, max_seq_of=seqs)
            if check.refused == "unknown-dispatch" and isinstance(message, dict) and message.get("dispatch") in closed:
                self.metrics["acks_late"] += 1  # a re-ack after the dispatch closed: expected, not hostile
            elif check.ack is None or check.dispatch is None:
                self.refuse("acks", check.refused or "malformed", topic)
                if check.dispatch is not None:  # a known endpoint, a live dispatch: tell the device
                    self.notice(code, check.dispatch, message, check.refused or "malformed")
            else:
                if check.ack["state"] != message["state"]:  # a `played` recorded failed/sha256-mismatch: say so
                    self.notice(code, check.dispatch, message, "sha256-mismatch")
                if live[check.dispatch].advances(check.ack):
                    by_dispatch.setdefault(check.dispatch, []).append(check.ack)
                else:
                    self.metrics["acks_duplicate"] += 1
        return by_dispatch

    def sort_statuses(self, batch: list[Message], known: set[str]) -> dict[str, tuple[str, str]]:
        """The last valid status per endpoint in a batch: (state, detail)."""
        changes: dict[str, tuple[str, str]] = {}
        for topic, payload in batch:
            code = self.topics.parse_status(topic) or ""
            try:
                message = proto.decode(payload) if payload else None
            except proto.ProtocolError:
                self.refuse("status", "bad-json", topic)
                continue
            if message is None:
                continue  # a cleared retained status
            state, detail = check_status(code, message, known_endpoints=known)
            if state == "refused":
                self.refuse("status", detail, topic)
                continue
            changes[code] = (state, detail)
        return changes


class AckBarrier:
    """Tells the retry loop how far the ack intake has read: a marker published to the dispatcher's own ack topic comes
    back behind every ack the broker held for it when the marker was sent; once the record loop has applied the batch
    that holds it, every ack sent before `read_at` (monotonic) is in the live state. Resends wait for that (so a
    backlog of acks is not mistaken for silent endpoints). A marker that does not come back within `timeout_s` (a
    broker ACL that refuses the topic, say) lets resends go anyway, logged and counted."""

    def __init__(
        self, link: CommandLink, topic: str, metrics: Counter[str], timeout_s: float = BARRIER_TIMEOUT_S
    ) -> None:
        self.link, self.topic, self.metrics, self.timeout_s = link, topic, metrics, timeout_s
        self.read_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Future[None]] = {}

    def request(self) -> None:
        """Send a marker unless one is on its way."""
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._round(), name="ack-barrier")

    def passed(self, tokens: list[str]) -> None:
        """The record loop has applied everything up to these markers."""
        for token in tokens:
            waiter = self._waiters.get(token)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _round(self) -> None:
        token, sent = uuid.uuid4().hex, time.monotonic()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[token] = waiter
        try:
            async with asyncio.timeout(self.timeout_s):  # the publish too: a refused or stuck one must not hold resends
                await self.link.publish(self.topic, token.encode())
                await waiter
            self.metrics["ack_barriers"] += 1
            waited = time.monotonic() - sent
            if waited > 1.0:
                log.info("dispatch.ack_backlog", read_behind_s=round(waited, 2))
        except LinkClosed:
            return  # the dispatcher is stopping
        except TimeoutError:
            self.metrics["ack_barriers_timed_out"] += 1
            log.warning("dispatch.ack_barrier_timeout", topic=self.topic, waited_s=self.timeout_s)
        finally:
            self._waiters.pop(token, None)
        self.read_at = max(self.read_at, sent)
