"""Recurring programmes: a broadcast template with daily or weekly times for some wards.

A drafter sets one up, another person (an approver, never its author) approves it, and from then on each of its times
produces an occurrence: a broadcast drafted in the author's name from the template, approved under the programme
(`Broadcast.AutoApproved`, rule `programme <id>`), scheduled at that time, and an `Occurred` event here naming it. The
broadcast then takes the ordinary path (the ward's slots and quiet hours, dispatch, acks, latency budget), so each
occurrence is audited like any other. Times are local (+07:00); weekdays 0 = Monday ... 6 = Sunday, all seven = daily.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from keng.domain.actor import Actor
from keng.domain.authority import require_authority
from keng.domain.errors import IllegalTransition, InvalidValue, SelfApprovalRefused
from keng.domain.programme import VIETNAM_TZ
from keng.domain.values import Channel, Priority, Role, clean_text, parse_enum, parse_enums

MAX_TIMES = 12
DAILY = [0, 1, 2, 3, 4, 5, 6]
DAY_NAMES = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
OCCURRENCE_LIFETIME = timedelta(hours=12)  # an occurrence not heard within this long is dropped (expired)


def parse_times(texts: list[str]) -> list[str]:
    """`HH:MM` times of day, sorted and distinct."""
    if not texts or len(texts) > MAX_TIMES:
        raise InvalidValue(f"a programme needs 1 to {MAX_TIMES} times of day")
    try:
        parsed = sorted({time.fromisoformat(t.strip()).replace(second=0, microsecond=0) for t in texts})
    except ValueError:
        raise InvalidValue(f"times of day must be HH:MM: {', '.join(texts)}") from None
    return [f"{t:%H:%M}" for t in parsed]


def parse_days(text: str | None) -> list[int]:
    """`daily` (or None), or comma-separated day names (mon,tue,...,sun)."""
    if text is None or text.strip().lower() in ("", "daily"):
        return list(DAILY)
    try:
        days = sorted({DAY_NAMES[d.strip().lower()[:3]] for d in text.split(",") if d.strip()})
    except KeyError:
        raise InvalidValue(f"days must be 'daily' or names among {', '.join(DAY_NAMES)}: {text!r}") from None
    if not days:
        raise InvalidValue("a weekly programme needs at least one day")
    return days


class RecurringProgramme(Aggregate):
    """A template and its times; approved once, then each time is an occurrence."""

    class Created(Aggregate.Created):
        title: str
        text: str
        priority: str
        wards: list[str]
        channels: list[str]
        times: list[str]
        weekdays: list[int]
        starts_at: datetime
        by: str

    class Approved(Aggregate.Event):
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.approved_by = self.by

    class Occurred(Aggregate.Event):
        at: datetime
        broadcast_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.last_at = self.at
            aggregate.occurrences += 1

    class Ended(Aggregate.Event):
        by: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.ended = True

    def __init__(
        self,
        title: str,
        text: str,
        priority: str,
        wards: list[str],
        channels: list[str],
        times: list[str],
        weekdays: list[int],
        starts_at: datetime,
        by: str,
    ) -> None:
        self.title, self.text, self.priority = title, text, priority
        self.wards, self.channels = list(wards), list(channels)
        self.times, self.weekdays = list(times), list(weekdays)
        self.starts_at = starts_at
        self.created_by = by
        self.approved_by: str | None = None
        self.last_at: datetime | None = None
        self.occurrences = 0
        self.ended = False

    @classmethod
    def create(
        cls,
        *,
        title: str,
        text: str,
        priority: str,
        wards: list[str],
        channels: list[str],
        times: list[str],
        weekdays: list[int],
        starts_at: datetime,
        by: Actor,
    ) -> RecurringProgramme:
        """Set up a programme (a drafter within the wards' scope); it produces nothing until approved."""
        if not wards:
            raise InvalidValue("a programme needs at least one ward")
        require_authority(by, Role.DRAFTER, "set up a recurring programme for these wards", wards)
        prio = parse_enum(Priority, priority, "priority class")
        if prio is Priority.EMERGENCY:
            raise InvalidValue("an emergency is never a recurring programme")
        if not weekdays or any(d not in DAILY for d in weekdays):
            raise InvalidValue("weekdays are 0 (Monday) to 6 (Sunday)")
        return cls._create(
            cls.Created,
            id=uuid4(),
            title=clean_text(title, "title", max_len=200),
            text=clean_text(text, "text", max_len=5000),
            priority=prio.value,
            wards=sorted(set(wards)),
            channels=[c.value for c in parse_enums(Channel, channels, "channel")] or ["speaker"],
            times=parse_times(times),
            weekdays=sorted(set(weekdays)),
            starts_at=starts_at,
            by=by.handle,
        )

    def approve(self, *, by: Actor) -> None:
        """Approve the template (an approver within scope, not its author)."""
        require_authority(by, Role.APPROVER, "approve this recurring programme", self.wards)
        if by.handle == self.created_by:
            raise SelfApprovalRefused(
                f"rule {SelfApprovalRefused.rule}: {by.handle} set up this programme and cannot approve it"
            )
        if self.ended or self.approved_by is not None:
            raise IllegalTransition("rule lifecycle: the programme is approved already or has ended")
        self.trigger_event(self.Approved, by=by.handle)

    def end(self, *, by: Actor, reason: str) -> None:
        """Stop producing occurrences (a drafter or approver within scope); broadcasts already made go on."""
        role = Role.APPROVER if by.has_role(Role.APPROVER) else Role.DRAFTER
        require_authority(by, role, "end this recurring programme", self.wards)
        if self.ended:
            raise IllegalTransition("rule lifecycle: the programme has ended already")
        self.trigger_event(self.Ended, by=by.handle, reason=clean_text(reason, "reason", max_len=1000))

    @property
    def active(self) -> bool:
        """Approved and not ended."""
        return self.approved_by is not None and not self.ended

    def next_after(self, after: datetime, tz: tzinfo = VIETNAM_TZ) -> datetime | None:
        """The first of its times strictly after `after` (and not before it starts); None when it has ended."""
        if self.ended:
            return None
        start = max(after, self.starts_at - timedelta(microseconds=1))
        local = start.astimezone(tz)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            if day.weekday() not in self.weekdays:
                continue
            for text in self.times:
                at = datetime.combine(day, time.fromisoformat(text), tzinfo=tz)
                if at > start:
                    return at
        return None

    def occur(self, *, at: datetime, broadcast_id: UUID) -> None:
        """Record the occurrence at `at` (one of its times, after the last one) and the broadcast made for it."""
        if not self.active:
            raise IllegalTransition("rule lifecycle: only an approved programme that has not ended has occurrences")
        if self.last_at is not None and at <= self.last_at:
            raise IllegalTransition(f"rule lifecycle: the occurrence at {at.isoformat()} is not after the last one")
        self.trigger_event(self.Occurred, at=at, broadcast_id=broadcast_id)
