"""The Dispatch aggregate: one wave of commands for one broadcast, and what every endpoint reported back.

Acknowledgements arrive in batches (`AcksRecorded`): 10,000 endpoints must not mean 10,000 aggregates or 10,000
transactions. The device's ack is the source of truth: MQTT is at-least-once per hop and brokers may drop messages.

What a dispatch sends is numbered in items (`seq`). An item's content (the text's hash, the audio file, the board
pages) is fixed when it is first sent, by one `ItemSent` event recorded before its first publish: resends and a
dispatch resumed after a restart send that item unchanged, and an ack is checked against the item of its `seq`.
Different content is a new item (the next `seq`), never the same number.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from keng.domain.errors import IllegalTransition, InvalidValue
from keng.domain.ids import KENG_NAMESPACE
from keng.domain.records import Ack, BudgetVerdict, DispatchItem, DispatchSummary
from keng.domain.values import ACK_RANK, FINAL_ACK_STATES, AckState

ACK_STATES = tuple(AckState)
T = TypeVar("T", str, datetime)


def dispatch_id(broadcast_id: UUID, wave: int) -> UUID:
    """Deterministic: a dispatcher that crashes and re-opens the same wave collides in the store instead of
    opening a second dispatch."""
    return uuid5(KENG_NAMESPACE, f"dispatch\x1f{broadcast_id}\x1f{wave}")


def first_ack_at(known: T | None, at: T) -> T:
    """When an endpoint first acknowledged, given the earliest time known so far and another ack's time. Any ack
    implies the command was received, and acks may arrive out of order, so the earliest of them all counts (the
    dispatcher folds datetimes, the read models ISO strings of one device's clock)."""
    return at if known is None or at < known else known


def note_first_acks(firsts: MutableMapping[str, datetime], acks: Iterable[Ack]) -> None:
    """Fold a batch of acks into each endpoint's first-ack time."""
    for ack in acks:
        code = ack["endpoint"]
        firsts[code] = first_ack_at(firsts.get(code), datetime.fromisoformat(ack["at"]))


_HEX = frozenset("0123456789abcdef")


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def item_hashes(item: DispatchItem) -> frozenset[str]:
    """What a `played` or `displayed` ack of this item may report: the audio file's hash or a board image's (the device
    played or showed the file), or the text's (it spoke or showed the text itself)."""
    hashes = {item["text_sha256"], *(b["image_sha256"] for b in item["boards"])}
    if item["audio"] is not None:
        hashes.add(item["audio"]["sha256"])
    return frozenset(hashes)


class Dispatch(Aggregate):
    """Targets of one wave and each endpoint's furthest acknowledged state."""

    class Opened(Aggregate.Created):
        broadcast_id: UUID
        wave: int
        priority: str
        targets: list[str]
        expires_at: datetime
        drill: bool

    class AcksRecorded(Aggregate.Event):
        acks: list[Ack]

        def apply(self, aggregate: Any) -> None:
            for ack in self.acks:
                aggregate.progress(ack)

    class ItemSent(Aggregate.Event):
        """The content of item `item["seq"]`, fixed before its first publish (one event per item, not per device)."""

        item: DispatchItem

        def apply(self, aggregate: Any) -> None:
            aggregate.items[self.item["seq"]] = self.item

    class RetriesSent(Aggregate.Event):
        endpoints: list[str]
        attempt: int

        def apply(self, aggregate: Any) -> None:
            aggregate.retries += 1

    class Closed(Aggregate.Event):
        summary: DispatchSummary

        def apply(self, aggregate: Any) -> None:
            aggregate.closed = True
            aggregate.summary = dict(self.summary)

    class Judged(Aggregate.Event):
        """The closed dispatch against its latency budget (domain/budgets.py `judge`)."""

        verdict: BudgetVerdict

        def apply(self, aggregate: Any) -> None:
            aggregate.verdict = dict(self.verdict)

    def __init__(
        self, broadcast_id: UUID, wave: int, priority: str, targets: list[str], expires_at: datetime, drill: bool
    ) -> None:
        self.broadcast_id = broadcast_id
        self.wave = wave
        self.priority = priority
        self.targets = list(targets)
        self.expires_at = expires_at
        self.drill = drill
        self.states: dict[str, Ack] = {}
        self.items: dict[int, DispatchItem] = {}
        self.retries = 0
        self.closed = False
        self.summary: DispatchSummary | dict[str, Any] = {}
        self.verdict: BudgetVerdict | dict[str, Any] = {}

    @classmethod
    def open(
        cls,
        *,
        broadcast_id: UUID,
        wave: int,
        priority: str,
        targets: list[str],
        expires_at: datetime,
        drill: bool,
    ) -> Dispatch:
        """Open a wave to the given endpoint codes (resolved from the broadcast's target areas)."""
        return cls._create(
            cls.Opened,
            id=dispatch_id(broadcast_id, wave),
            broadcast_id=broadcast_id,
            wave=wave,
            priority=priority,
            targets=sorted(set(targets)),
            expires_at=expires_at,
            drill=drill,
        )

    def progress(self, ack: Ack) -> None:
        """Fold one ack into the per-endpoint state (used by `apply`; an ack never moves an endpoint backwards)."""
        current = self.states.get(ack["endpoint"])
        # `ack_advances`, inlined: every replay of a dispatch runs this once per ack.
        if current is None or ACK_RANK[ack["state"]] > ACK_RANK[current["state"]]:
            self.states[ack["endpoint"]] = ack

    def record_acks(self, acks: list[Ack]) -> list[Ack]:
        """Record a batch of acks: each {endpoint, state, at (ISO time), sha256?, reason?}. Acks from endpoints
        outside the targets, or with unknown states, are not recorded and are returned for the caller to count."""
        if self.closed:
            raise IllegalTransition(f"rule lifecycle: dispatch {self.id} is closed and records no more acks")
        targets = set(self.targets)
        accepted, refused = [], []
        for ack in acks:
            if ack.get("endpoint") in targets and ack.get("state") in ACK_STATES and isinstance(ack.get("at"), str):
                accepted.append(ack)
            else:
                refused.append(ack)
        if accepted:
            self.trigger_event(self.AcksRecorded, acks=accepted)
        return refused

    @property
    def next_seq(self) -> int:
        """The sequence number the next item (or a `stop`) takes."""
        return max(self.items, default=0) + 1

    @property
    def current_item(self) -> DispatchItem | None:
        """The latest item sent (None before the first)."""
        return self.items[max(self.items)] if self.items else None

    def send_item(self, item: DispatchItem) -> None:
        """Fix the content of the next item before it is first published. The item's `seq` must be the next one: an
        item once sent is never sent with other content under its number."""
        if self.closed:
            raise IllegalTransition(f"rule lifecycle: dispatch {self.id} is closed and sends no more items")
        seq = item["seq"]
        if seq in self.items:
            raise IllegalTransition(
                f"rule item-content-fixed: item {seq} of dispatch {self.id} was sent with its content; "
                f"other content is a new item ({self.next_seq})"
            )
        if seq != self.next_seq:
            raise InvalidValue(f"the next item of dispatch {self.id} is {self.next_seq}, not {seq}")
        hashes = [item["text_sha256"], *(b[k] for b in item["boards"] for k in ("image_sha256", "layout_sha256"))]
        if item["audio"] is not None:
            hashes.append(item["audio"]["sha256"])
        if not all(_is_sha256(h) for h in hashes):
            raise InvalidValue("an item's content hashes are SHA-256 in lower-case hex")
        self.trigger_event(self.ItemSent, item=item)

    def record_retries(self, endpoints: list[str]) -> None:
        """Record that commands were sent again to endpoints that had not acknowledged."""
        if self.closed:
            raise IllegalTransition(f"rule lifecycle: dispatch {self.id} is closed")
        if not endpoints:
            raise InvalidValue("a retry needs at least one endpoint")
        self.trigger_event(self.RetriesSent, endpoints=sorted(endpoints), attempt=self.retries + 1)

    def close(self, summary: DispatchSummary) -> None:
        """Close the wave with its summary (targeted, received, played, failed, unreachable, latencies)."""
        if self.closed:
            raise IllegalTransition(f"rule lifecycle: dispatch {self.id} is already closed")
        self.trigger_event(self.Closed, summary=summary)

    def record_verdict(self, verdict: BudgetVerdict) -> None:
        """Record how the closed dispatch met its latency budget (once)."""
        if not self.closed or self.verdict:
            raise IllegalTransition(f"rule lifecycle: dispatch {self.id} is judged once, after it closed")
        self.trigger_event(self.Judged, verdict=verdict)

    def pending(self) -> list[str]:
        """Targets that have not yet reported `played` or `failed`."""
        states = self.states
        return [t for t in self.targets if t not in states or states[t]["state"] not in FINAL_ACK_STATES]
