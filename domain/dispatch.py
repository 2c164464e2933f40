"""The Dispatch aggregate: one wave of commands for one broadcast, and what every endpoint reported back.

Acknowledgements arrive in batches (`AcksRecorded`): 10,000 endpoints must not mean 10,000 aggregates or 10,000
transactions. The device's ack is the source of truth: MQTT is at-least-once per hop and brokers may drop messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import IllegalTransition, InvalidValue
from domain.ids import KENG_NAMESPACE

ACK_STATES = ("received", "playing", "played", "failed")
_ACK_RANK = {"received": 1, "playing": 2, "played": 3, "failed": 3}


def dispatch_id(broadcast_id: UUID, wave: int) -> UUID:
    """Deterministic: a dispatcher that crashes and re-opens the same wave collides in the store instead of
    opening a second dispatch."""
    return uuid5(KENG_NAMESPACE, f"dispatch\x1f{broadcast_id}\x1f{wave}")


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
        acks: list[dict[str, Any]]

        def apply(self, aggregate: Any) -> None:
            for ack in self.acks:
                aggregate.progress(ack)

    class RetriesSent(Aggregate.Event):
        endpoints: list[str]
        attempt: int

        def apply(self, aggregate: Any) -> None:
            aggregate.retries += 1

    class Closed(Aggregate.Event):
        summary: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.closed = True
            aggregate.summary = dict(self.summary)

    def __init__(
        self, broadcast_id: UUID, wave: int, priority: str, targets: list[str], expires_at: datetime, drill: bool
    ) -> None:
        self.broadcast_id = broadcast_id
        self.wave = wave
        self.priority = priority
        self.targets = list(targets)
        self.expires_at = expires_at
        self.drill = drill
        self.states: dict[str, dict[str, Any]] = {}
        self.retries = 0
        self.closed = False
        self.summary: dict[str, Any] = {}

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

    def progress(self, ack: dict[str, Any]) -> None:
        """Fold one ack into the per-endpoint state (used by `apply`; an ack never moves an endpoint backwards)."""
        current = self.states.get(ack["endpoint"])
        if current is None or _ACK_RANK[ack["state"]] > _ACK_RANK[current["state"]]:
            self.states[ack["endpoint"]] = ack

    def record_acks(self, acks: list[dict[str, Any]]) -> list[dict[str, Any]]:
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

    def record_retries(self, endpoints: list[str]) -> None:
        """Record that commands were sent again to endpoints that had not acknowledged."""
        if self.closed:
            raise IllegalTransition(f"rule lifecycle: dispatch {self.id} is closed")
        if not endpoints:
            raise InvalidValue("a retry needs at least one endpoint")
        self.trigger_event(self.RetriesSent, endpoints=sorted(endpoints), attempt=self.retries + 1)

    def close(self, summary: dict[str, Any]) -> None:
        """Close the wave with its summary (targeted, received, played, failed, unreachable, latencies)."""
        if self.closed:
            raise IllegalTransition(f"rule lifecycle: dispatch {self.id} is already closed")
        self.trigger_event(self.Closed, summary=summary)

    def pending(self) -> list[str]:
        """Targets that have not yet reported `played` or `failed`."""
        return [t for t in self.targets if self.states.get(t, {}).get("state") not in ("played", "failed")]
