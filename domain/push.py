"""Pushes: signed webhooks keng sends to ward portals and to the citizen app (a bulletin, its withdrawal, a reply to
feedback). Each is POSTed signed (Standard Webhooks, the push id as `webhook-id`), retried with capped backoff until
the receiver answers 2xx or the push expires, and withdrawn when what it carries is cancelled. Every attempt is an
event, so the delivery truth per portal or app target is read from the log like a speaker's acks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from keng.domain.errors import IllegalTransition
from keng.domain.ids import KENG_NAMESPACE

BULLETIN = "bulletin.published"
WITHDRAWN = "bulletin.withdrawn"
REPLY = "feedback.replied"
PUSH_KINDS = (BULLETIN, WITHDRAWN, REPLY)


class PushStatus:
    PENDING = "pending"  # queued, or failed and waiting for its next attempt
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


def push_id(target: str, kind: str, subject: str, revision: int = 0) -> UUID:
    """One push per target, kind, subject (a broadcast or feedback id) and revision (or reply number)."""
    return uuid5(KENG_NAMESPACE, f"push\x1f{target}\x1f{kind}\x1f{subject}\x1f{revision}")


class Push(Aggregate):
    """A signed webhook owed to a portal or the app."""

    class Queued(Aggregate.Created):
        target: str
        target_kind: str
        url: str
        kind: str
        subject: str
        revision: int
        wards: list[str]
        body: dict[str, Any]
        expires_at: datetime | None

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
            aggregate.status = PushStatus.DELIVERED

    class Withdrawn(Aggregate.Event):
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = PushStatus.WITHDRAWN

    class Expired(Aggregate.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.status = PushStatus.EXPIRED

    def __init__(
        self,
        target: str,
        target_kind: str,
        url: str,
        kind: str,
        subject: str,
        revision: int,
        wards: list[str],
        body: dict[str, Any],
        expires_at: datetime | None,
    ) -> None:
        self.target = target
        self.target_kind = target_kind
        self.url = url
        self.kind = kind
        self.subject = subject
        self.revision = revision
        self.wards = list(wards)
        self.body = dict(body)
        self.expires_at = expires_at
        self.attempts = 0
        self.status = PushStatus.PENDING
        self.last_error: str | None = None

    @classmethod
    def queue(
        cls,
        *,
        target: str,
        target_kind: str,
        url: str,
        kind: str,
        subject: str,
        body: dict[str, Any],
        revision: int = 0,
        wards: list[str] | None = None,
        expires_at: datetime | None = None,
    ) -> Push:
        """A push to send to `url` of integration `target` (a portal or the app)."""
        if kind not in PUSH_KINDS:
            raise ValueError(f"unknown push kind {kind!r}")
        return cls._create(
            cls.Queued,
            id=push_id(target, kind, subject, revision),
            target=target,
            target_kind=target_kind,
            url=url,
            kind=kind,
            subject=subject,
            revision=revision,
            wards=sorted(set(wards or [])),
            body=body,
            expires_at=expires_at,
        )

    @property
    def open(self) -> bool:
        """Still to be delivered (neither delivered, withdrawn nor expired)."""
        return self.status == PushStatus.PENDING

    def attempt_failed(self, reason: str) -> None:
        """Record a failed attempt (network error, refusal by the outbound guard, or a non-2xx answer)."""
        self._require_open("record an attempt of")
        self.trigger_event(self.AttemptFailed, attempt=self.attempts + 1, reason=reason[:500])

    def mark_delivered(self, status: int) -> None:
        """Record the attempt the receiver acknowledged with a 2xx."""
        self._require_open("deliver")
        self.trigger_event(self.Delivered, attempt=self.attempts + 1, status=status)

    def withdraw(self, reason: str) -> None:
        """Stop trying: what it carries was cancelled before it was delivered."""
        self._require_open("withdraw")
        self.trigger_event(self.Withdrawn, reason=reason[:1000])

    def expire(self, now: datetime) -> bool:
        """Stop trying once past its expiry; True when that happened now."""
        if not self.open or self.expires_at is None or now < self.expires_at:
            return False
        self.trigger_event(self.Expired)
        return True

    def _require_open(self, action: str) -> None:
        if not self.open:
            raise IllegalTransition(f"rule lifecycle: cannot {action} a push that is {self.status}")


PUSH_EVENTS = (Push.Queued, Push.AttemptFailed, Push.Delivered, Push.Withdrawn, Push.Expired)
