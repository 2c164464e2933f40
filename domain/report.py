"""Delivery reports to the city source system: what became of each message it sent, POSTed back, signed, and
retried with capped backoff. Every attempt is an event, so an auditor can see when the city was told what."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from keng.domain.errors import IllegalTransition
from keng.domain.ids import KENG_NAMESPACE

MAX_BACKOFF_S = 300.0


def report_id(broadcast_id: UUID, outcome: str) -> UUID:
    """One report per broadcast and outcome (a re-run of the reporter finds the same report)."""
    return uuid5(KENG_NAMESPACE, f"report\x1f{broadcast_id}\x1f{outcome}")


def backoff_s(attempt: int, base_s: float = 2.0) -> float:
    """Seconds to wait after failed attempt `attempt` (1, 2, ...): doubling, capped at five minutes."""
    return float(min(MAX_BACKOFF_S, base_s * 2 ** max(0, attempt - 1)))


class DeliveryReport(Aggregate):
    """A report owed to an integration about one of its messages."""

    class Queued(Aggregate.Created):
        integration: str
        url: str
        broadcast_id: UUID
        message_id: str
        outcome: str
        body: dict[str, Any]

    class AttemptFailed(Aggregate.Event):
        attempt: int
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.attempts = self.attempt
            aggregate.last_error = self.reason

    class Delivered(Aggregate.Event):
        attempt: int
        status: int

        def apply(self, aggregate: Any) -> None:
            aggregate.attempts = self.attempt
            aggregate.delivered = True

    def __init__(
        self, integration: str, url: str, broadcast_id: UUID, message_id: str, outcome: str, body: dict[str, Any]
    ) -> None:
        self.integration = integration
        self.url = url
        self.broadcast_id = broadcast_id
        self.message_id = message_id
        self.outcome = outcome
        self.body = dict(body)
        self.attempts = 0
        self.delivered = False
        self.last_error: str | None = None

    @classmethod
    def queue(
        cls, *, integration: str, url: str, broadcast_id: UUID, message_id: str, outcome: str, body: dict[str, Any]
    ) -> DeliveryReport:
        """A report to send about a broadcast's outcome (completed, cancelled, rejected, expired)."""
        return cls._create(
            cls.Queued,
            id=report_id(broadcast_id, outcome),
            integration=integration,
            url=url,
            broadcast_id=broadcast_id,
            message_id=message_id,
            outcome=outcome,
            body=body,
        )

    def attempt_failed(self, reason: str) -> None:
        """Record a failed attempt (network error or a non-2xx answer)."""
        if self.delivered:
            raise IllegalTransition("rule lifecycle: the report was already delivered")
        self.trigger_event(self.AttemptFailed, attempt=self.attempts + 1, reason=reason[:500])

    def mark_delivered(self, status: int) -> None:
        """Record the attempt the receiver acknowledged with a 2xx."""
        if self.delivered:
            raise IllegalTransition("rule lifecycle: the report was already delivered")
        self.trigger_event(self.Delivered, attempt=self.attempts + 1, status=status)
