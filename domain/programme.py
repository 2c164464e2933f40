"""When a broadcast may go out, and how loud: programme slots per ward and the class policies.

- `emergency` goes out at once, whatever the hour.
- `priority` goes out at once when the ward's programme slot is open, else at the next slot's start, ahead of
  `normal` items in that slot.
- `normal` goes out in the ward's programme slots (the sample district: 05:30-06:30 and 17:00-18:00 at +07:00, the
  practice under Decree 49/2024/NĐ-CP); an explicit scheduled time moves it to the first slot at or after that time.
Repeats travel in the command (an emergency three times, J-ALERT's practice); the volume level depends on the class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone, tzinfo

from keng.domain.errors import InvalidValue
from keng.domain.values import Priority

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")
VOLUME = {Priority.EMERGENCY: 100, Priority.PRIORITY: 85, Priority.NORMAL: 70}


def volume_for(priority: str) -> int:
    """Volume level (percent) for a priority class: routine lower, emergency full."""
    return VOLUME[Priority(priority)]


@dataclass(frozen=True)
class Slot:
    """A daily window of the ward's programme, in local time; `end` may be 24:00 written as 00:00."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.end != time(0) and self.end <= self.start:
            raise InvalidValue(f"slot {self} ends before it starts")

    @classmethod
    def parse(cls, text: str) -> Slot:
        """Parse `HH:MM-HH:MM` (24:00 allowed as the end)."""
        try:
            a, b = text.strip().split("-")
            end = time(0) if b.strip() == "24:00" else time.fromisoformat(b.strip())
            return cls(time.fromisoformat(a.strip()), end)
        except ValueError:
            raise InvalidValue(f"slot {text!r} is not HH:MM-HH:MM") from None

    def bounds(self, day: datetime) -> tuple[datetime, datetime]:
        """The slot's start and end on the local day of `day` (an aware datetime in the programme's zone)."""
        start = day.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        end = day.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return start, end if self.end != time(0) else end + timedelta(days=1)


SAMPLE_SLOTS = (Slot(time(5, 30), time(6, 30)), Slot(time(17, 0), time(18, 0)))


def parse_slots(text: str) -> tuple[Slot, ...]:
    """Parse a comma-separated list of slots, e.g. `05:30-06:30,17:00-18:00`."""
    slots = tuple(Slot.parse(part) for part in text.split(",") if part.strip())
    if not slots:
        raise InvalidValue("a programme needs at least one slot")
    return slots


@dataclass(frozen=True)
class Programme:
    """Programme slots per ward (`by_ward`), with `default` for wards that have none of their own."""

    default: tuple[Slot, ...] = SAMPLE_SLOTS
    by_ward: Mapping[str, tuple[Slot, ...]] = field(default_factory=dict)
    tz: tzinfo = VIETNAM_TZ

    def slots(self, ward: str) -> tuple[Slot, ...]:
        """The slots of one ward."""
        return self.by_ward.get(ward, self.default)

    def next_open(self, ward: str, at: datetime) -> datetime:
        """`at` itself if a slot of the ward is open then, else the start of the next slot."""
        local = at.astimezone(self.tz)
        candidates = []
        for offset in (-1, 0, 1):
            day = local + timedelta(days=offset)
            for slot in self.slots(ward):
                start, end = slot.bounds(day)
                if start <= local < end:
                    return at
                if start > local:
                    candidates.append(start)
        return min(candidates)

    def release_at(
        self, *, priority: str, wards: Iterable[str], now: datetime, scheduled: Sequence[datetime] = ()
    ) -> datetime:
        """When a broadcast to these wards is released. One wave serves all its wards, so it goes out at the
        earliest time any target ward's programme is open (wards are listed by the broadcast's scope)."""
        prio = Priority(priority)
        if prio is Priority.EMERGENCY:
            return now
        start = max(now, scheduled[0]) if scheduled and prio is Priority.NORMAL else now
        wards = list(wards) or [""]
        try:
            return min(self.next_open(w, start) for w in wards)
        except OverflowError:  # a time at the end of the calendar (stored before times were bounded): never reached
            return start
