"""Citizen feedback (phản ánh, kiến nghị) from the app: received, triaged to a ward, replied to, closed.

The app's backend (a signed integration of kind `app`) sends each item; keng records it with a due date set by its
category, ward staff triage it (assign it to a ward), reply (the reply goes back to the app as a signed webhook) and
close it. A photo is kept outside the event log (only its SHA-256 is recorded), and so is the sender's contact (the
log records only that there is one): an append-only log cannot forget a resident's personal data.

Authority: a ward's staff act only on feedback assigned to one of their wards (and may assign only to their wards);
feedback not yet assigned is district-wide staff's. Drafters and approvers act on feedback; auditors only read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from keng.domain.actor import Actor
from keng.domain.area import check_code, check_coordinates
from keng.domain.errors import IllegalTransition, InvalidValue, NotAuthorised, OutOfScope
from keng.domain.ids import KENG_NAMESPACE
from keng.domain.values import Role, clean_text, parse_digits

MAX_TEXT = 4000
MAX_REPLY = 2000
# Days until a reply is due, per category (Vietnamese label for staff). `parse_due_days` overrides them.
CATEGORIES: dict[str, tuple[str, int]] = {
    "environment": ("Môi trường, vệ sinh", 5),
    "infrastructure": ("Hạ tầng, giao thông, điện chiếu sáng", 7),
    "security": ("An ninh, trật tự", 2),
    "health": ("Y tế, dịch bệnh", 2),
    "administration": ("Thủ tục hành chính", 10),
    "broadcast": ("Loa truyền thanh, bản tin", 5),
    "other": ("Khác", 10),
}
DEFAULT_DUE_DAYS: dict[str, int] = {k: v[1] for k, v in CATEGORIES.items()}


class FeedbackState:
    RECEIVED = "received"
    TRIAGED = "triaged"
    REPLIED = "replied"
    CLOSED = "closed"


STATES = (FeedbackState.RECEIVED, FeedbackState.TRIAGED, FeedbackState.REPLIED, FeedbackState.CLOSED)


def feedback_id(integration: str, message_id: str) -> UUID:
    """One feedback item per app message (the app's webhook id, scoped to the integration)."""
    return uuid5(KENG_NAMESPACE, f"feedback\x1f{integration}\x1f{message_id}")


def parse_due_days(text: str) -> dict[str, int]:
    """`security=1,other=14`: days until a reply is due, for some categories (the rest keep their defaults)."""
    due = dict(DEFAULT_DUE_DAYS)
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, days = item.partition("=")
        name = name.strip()
        if name not in CATEGORIES:
            raise InvalidValue(f"unknown feedback category {name!r}: expected one of {', '.join(CATEGORIES)}")
        due[name] = parse_digits(days.strip(), f"due days of {name}", lo=1, hi=365)
    return due


def _require_handler(by: Actor, action: str) -> None:
    if not (by.has_role(Role.DRAFTER) or by.has_role(Role.APPROVER)):
        raise NotAuthorised(
            f"rule {NotAuthorised.rule}: {by.handle} cannot {action}: a drafter or approver is required"
        )


def _require_ward(by: Actor, ward: str | None, action: str) -> None:
    """A ward's staff act on their wards' feedback; unassigned feedback belongs to district-wide staff."""
    if ward is None:
        if getattr(by, "wards", None):
            raise OutOfScope(f"rule {OutOfScope.rule}: {by.handle} cannot {action}: it is not assigned to a ward yet")
        return
    by.require_scope([ward], action)


class Feedback(Aggregate):
    """One item of citizen feedback."""

    class Received(Aggregate.Created):
        integration: str
        message_id: str
        category: str
        text: str
        ward: str | None
        group: str | None
        lat: float | None
        lon: float | None
        photo_sha256: str | None
        has_contact: bool
        due_at: datetime

    class Triaged(Aggregate.Event):
        ward: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.ward = self.ward
            aggregate.state = FeedbackState.TRIAGED

    class Replied(Aggregate.Event):
        text: str
        by: str
        reply: int

        def apply(self, aggregate: Any) -> None:
            aggregate.replies.append({"text": self.text, "by": self.by, "at": self.timestamp})
            aggregate.state = FeedbackState.REPLIED
            aggregate.replied_at = aggregate.replied_at or self.timestamp

    class Closed(Aggregate.Event):
        by: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.state = FeedbackState.CLOSED
            aggregate.close_reason = self.reason

    def __init__(
        self,
        integration: str,
        message_id: str,
        category: str,
        text: str,
        ward: str | None,
        group: str | None,
        lat: float | None,
        lon: float | None,
        photo_sha256: str | None,
        has_contact: bool,
        due_at: datetime,
    ) -> None:
        self.integration = integration
        self.message_id = message_id
        self.category = category
        self.text = text
        self.ward = ward
        self.group = group
        self.lat = lat
        self.lon = lon
        self.photo_sha256 = photo_sha256
        self.has_contact = has_contact
        self.due_at = due_at
        self.state = FeedbackState.RECEIVED
        self.replies: list[dict[str, Any]] = []
        self.replied_at: datetime | None = None
        self.close_reason: str | None = None

    @classmethod
    def receive(
        cls,
        *,
        integration: str,
        message_id: str,
        category: str,
        text: str,
        now: datetime,
        ward: str | None = None,
        group: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        photo_sha256: str | None = None,
        has_contact: bool = False,
        due_days: Mapping[str, int] = DEFAULT_DUE_DAYS,
    ) -> Feedback:
        """Record feedback from the app; due `due_days[category]` days after it was received."""
        if category not in CATEGORIES:
            raise InvalidValue(f"unknown feedback category {category!r}: expected one of {', '.join(CATEGORIES)}")
        check_coordinates(lat, lon)
        if photo_sha256 is not None and (len(photo_sha256) != 64 or not set(photo_sha256) <= set("0123456789abcdef")):
            raise InvalidValue("a photo is recorded by its SHA-256 in hex")
        return cls._create(
            cls.Received,
            id=feedback_id(integration, message_id),
            integration=integration,
            message_id=message_id,
            category=category,
            text=clean_text(text, "feedback text", max_len=MAX_TEXT),
            ward=check_code(ward, "ward code") if ward else None,
            group=check_code(group, "group code") if group else None,
            lat=lat,
            lon=lon,
            photo_sha256=photo_sha256,
            has_contact=has_contact,
            due_at=now + timedelta(days=due_days.get(category, DEFAULT_DUE_DAYS[category])),
        )

    def triage(self, *, ward: str, by: Actor) -> None:
        """Assign to a ward (again, to move it): the actor's scope must cover the current ward and the new one."""
        _require_handler(by, "triage feedback")
        self._require_open("triage")
        _require_ward(by, self.ward, "triage this feedback")
        ward = check_code(ward, "ward code")
        by.require_scope([ward], "assign feedback to this ward")
        if ward == self.ward and self.state != FeedbackState.RECEIVED:
            raise IllegalTransition(f"rule lifecycle: the feedback is already assigned to ward {ward}")
        self.trigger_event(self.Triaged, ward=ward, by=by.handle)

    def reply(self, text: str, *, by: Actor) -> int:
        """Reply to the resident (through the app); only once it is assigned to a ward. Returns the reply's number."""
        _require_handler(by, "reply to feedback")
        self._require_open("reply to")
        if self.state == FeedbackState.RECEIVED:
            raise IllegalTransition("rule lifecycle: triage the feedback (assign it to a ward) before replying")
        _require_ward(by, self.ward, "reply to this feedback")
        number = len(self.replies) + 1
        self.trigger_event(self.Replied, text=clean_text(text, "reply", max_len=MAX_REPLY), by=by.handle, reply=number)
        return number

    def close(self, *, by: Actor, reason: str = "") -> None:
        """Close (final)."""
        _require_handler(by, "close feedback")
        self._require_open("close")
        _require_ward(by, self.ward, "close this feedback")
        self.trigger_event(self.Closed, by=by.handle, reason=clean_text(reason, "reason", max_len=1000, required=False))

    def overdue(self, now: datetime) -> bool:
        """Not answered and past its due date (closed feedback is never overdue)."""
        return self.state in (FeedbackState.RECEIVED, FeedbackState.TRIAGED) and now > self.due_at

    def _require_open(self, action: str) -> None:
        if self.state == FeedbackState.CLOSED:
            raise IllegalTransition(f"rule lifecycle: cannot {action} feedback that is closed")
