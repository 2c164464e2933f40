"""What devices say, before it reaches the store: routing MQTT messages onto bounded queues, draining them in batches,
and sorting a batch of acks or statuses into what to record and what to refuse (counted, logged, never recorded).

Split from runtime/dispatcher.py: everything here runs on the dispatcher's loop and touches no store.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any

import structlog

from adapters.mqtt import protocol as proto
from domain.delivery import check_ack
from domain.device_status import check_status
from runtime.live import LiveDispatch

log = structlog.get_logger(__name__)
ACK_BATCH, ACK_WINDOW_S = 1000, 0.1
Message = tuple[str, bytes]


class Intake:
    """Bounded queues for acks and statuses, and the checks that sort them."""

    def __init__(self, metrics: Counter[str]) -> None:
        self.metrics = metrics
        self.acks: asyncio.Queue[Message] = asyncio.Queue(maxsize=200_000)
        self.statuses: asyncio.Queue[Message] = asyncio.Queue(maxsize=50_000)

    def route(self, topic: str, payload: bytes) -> None:
        """The MQTT callback: queue an ack or a status (never blocks; a full queue drops and counts)."""
        queue = None
        if proto.parse_ack_topic(topic) is not None:
            queue = self.acks
        elif proto.parse_status_topic(topic) is not None:
            queue = self.statuses
        if queue is None:
            self.metrics["messages_refused{reason=foreign-topic}"] += 1
            return
        try:
            queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            self.metrics["messages_dropped_queue_full"] += 1

    def refuse(self, kind: str, reason: str, topic: str) -> None:
        """Count and log a refused message."""
        self.metrics[f"{kind}_refused{{reason={reason}}}"] += 1
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

    def sort_acks(
        self, batch: list[Message], live: Mapping[str, LiveDispatch], known: Collection[str], closed: Collection[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """The acks of a batch that move an endpoint forward, by dispatch id; the rest are counted."""
        by_dispatch: dict[str, list[dict[str, Any]]] = {}
        targets = {d: x.plan.targets for d, x in live.items() if not x.closing}
        shas = {d: x.plan.sha256 for d, x in live.items()}
        seqs = {d: 1 for d in live}
        for topic, payload in batch:
            code = proto.parse_ack_topic(topic) or ""
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
            elif live[check.dispatch].advances(check.ack):
                by_dispatch.setdefault(check.dispatch, []).append(check.ack)
            else:
                self.metrics["acks_duplicate"] += 1
        return by_dispatch

    def sort_statuses(self, batch: list[Message], known: set[str]) -> dict[str, tuple[str, str]]:
        """The last valid status per endpoint in a batch: (state, detail)."""
        changes: dict[str, tuple[str, str]] = {}
        for topic, payload in batch:
            code = proto.parse_status_topic(topic) or ""
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
