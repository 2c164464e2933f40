"""Inbound messages: every accepted external message is an event, so each broadcast can be tied to what asked for it.

The aggregate id derives from the integration that sent the message, the source and the message's own id (a webhook id,
a CAP `sender,identifier,sent`), so the store's uniqueness constraint is the idempotency check: a replay finds the
earlier record and its result, and one integration's key never collides with another's. Records stored before keys
were scoped to the integration have the unscoped id (`legacy_inbound_id`); they are still found, for their own
integration only.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from keng.domain.ids import KENG_NAMESPACE


def inbound_id(source: str, message_id: str, integration: str) -> UUID:
    """Aggregate id of the inbound message `message_id` from `source`, sent by `integration`."""
    return uuid5(KENG_NAMESPACE, f"integration-inbound\x1f{integration}\x1f{source}\x1f{message_id}")


def legacy_inbound_id(source: str, message_id: str) -> UUID:
    """The unscoped id that records stored before keys were scoped to their integration have."""
    return uuid5(KENG_NAMESPACE, f"inbound\x1f{source}\x1f{message_id}")


class Inbound(Aggregate):
    """One accepted external message: who sent it, how it was verified, what its bytes hashed to, what it did."""

    class Accepted(Aggregate.Created):
        source: str
        message_id: str
        integration: str
        signature: str
        payload_sha256: str
        outcome: dict[str, Any]

    def __init__(
        self,
        source: str,
        message_id: str,
        integration: str,
        signature: str,
        payload_sha256: str,
        outcome: dict[str, Any],
    ) -> None:
        self.source = source
        self.message_id = message_id
        self.integration = integration
        self.signature = signature
        self.payload_sha256 = payload_sha256
        self.outcome = dict(outcome)

    @classmethod
    def accept(
        cls,
        *,
        source: str,
        message_id: str,
        integration: str,
        signature: str,
        payload_sha256: str,
        outcome: dict[str, Any],
    ) -> Inbound:
        """Record an accepted message and its outcome (e.g. the broadcast it created)."""
        return cls._create(
            cls.Accepted,
            id=inbound_id(source, message_id, integration),
            source=source,
            message_id=message_id,
            integration=integration,
            signature=signature,
            payload_sha256=payload_sha256,
            outcome=outcome,
        )
