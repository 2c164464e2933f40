"""When a broadcast may go out, and how loud: programme slots per ward and the class policies.

- `emergency` goes out at once, whatever the hour.
- `priority` goes out at once when the ward's programme slot is open, else at the next slot's start, ahead of
  `normal` items in that slot.
- `normal` goes out in the ward's programme slots (the sample district: 05:30-06:30 and 17:00-18:00 at +07:00, the
  practice under Decree 49/2024/NĐ-CP); an explicit scheduled time moves it to the first slot at or after that time.
- Every scheduled time of a broadcast is a wave of its own (`wave_time`); an emergency's first wave goes at once and
  its later times repeat it at those times exactly.
- Nothing but an emergency sounds in a ward's quiet hours (the sample: 22:00-05:00): a release that would fall in
  them waits for their end, or the next slot after it.
- `priority` items waiting for the same slot of a ward go out in the ward's explicit order (`order_gap`): the n-th
  named item `ORDER_GAP` x n after the slot opens, items the order does not name after those, by approval.
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
SAMPLE_QUIET = (Slot(time(22, 0), time(0)), Slot(time(0), time(5, 0)))  # 22:00-05:00, written as two daily windows
ORDER_GAP = timedelta(seconds=2)
MAX_SLOTS = 12


def parse_quiet(text: str) -> tuple[Slot, ...]:
    """Parse quiet hours: comma-separated `HH:MM-HH:MM` windows; one that runs past midnight (22:00-05:00) is split in
    two; `none` (or an empty text) means no quiet hours."""
    out: list[Slot] = []
    for part in text.split(","):
        part = part.strip()
        if not part or part.lower() == "none":
            continue
        slot = Slot.parse(part) if _ends_after(part) else None
        if slot is not None:
            out.append(slot)
        else:  # runs past midnight
            late, early = Slot.parse(part.split("-")[0] + "-24:00"), Slot.parse("00:00-" + part.split("-")[1])
            out += [late, early]
    if len(out) > MAX_SLOTS:
        raise InvalidValue(f"at most {MAX_SLOTS} quiet windows")
    return tuple(out)


def _ends_after(text: str) -> bool:
    """True unless a `HH:MM-HH:MM` window ends before it starts (it runs past midnight); malformed text is left to
    `Slot.parse` to refuse."""
    try:
        a, b = (x.strip() for x in text.split("-"))
        return b == "24:00" or time.fromisoformat(b) == time(0) or time.fromisoformat(b) > time.fromisoformat(a)
    except ValueError:
        return True


def format_slots(slots: Iterable[Slot]) -> list[str]:
    """Slots as `HH:MM-HH:MM` texts (the form events store and `parse_slots` reads)."""
    return [f"{s.start:%H:%M}-{'24:00' if s.end == time(0) else f'{s.end:%H:%M}'}" for s in slots]


def parse_slots(text: str) -> tuple[Slot, ...]:
    """Parse a comma-separated list of slots, e.g. `05:30-06:30,17:00-18:00`."""
    slots = tuple(Slot.parse(part) for part in text.split(",") if part.strip())
    if not slots:
        raise InvalidValue("a programme needs at least one slot")
    if len(slots) > MAX_SLOTS:
        raise InvalidValue(f"at most {MAX_SLOTS} slots a day")
    return slots


def _open_in(slots: Iterable[Slot], local: datetime) -> datetime | None:
    """The end of the window of `slots` open at `local`, else None."""
    for offset in (-1, 0):
        day = local + timedelta(days=offset)
        for slot in slots:
            start, end = slot.bounds(day)
            if start <= local < end:
                return end
    return None


@dataclass(frozen=True)
class Programme:
    """Programme slots per ward (`by_ward`), with `default` for wards that have none of their own."""

    default: tuple[Slot, ...] = SAMPLE_SLOTS
    by_ward: Mapping[str, tuple[Slot, ...]] = field(default_factory=dict)
    tz: tzinfo = VIETNAM_TZ
    default_quiet: tuple[Slot, ...] = SAMPLE_QUIET
    quiet_by_ward: Mapping[str, tuple[Slot, ...]] = field(default_factory=dict)
    order_by_ward: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def slots(self, ward: str) -> tuple[Slot, ...]:
        """The slots of one ward."""
        return self.by_ward.get(ward, self.default)

    def quiet(self, ward: str) -> tuple[Slot, ...]:
        """The quiet hours of one ward."""
        return self.quiet_by_ward.get(ward, self.default_quiet)

    def with_ward(
        self, ward: str, *, slots: tuple[Slot, ...], quiet: tuple[Slot, ...], order: tuple[str, ...]
    ) -> Programme:
        """This programme with one ward's own slots, quiet hours and order of priority items."""
        return Programme(
            default=self.default,
            by_ward={**self.by_ward, ward: slots},
            tz=self.tz,
            default_quiet=self.default_quiet,
            quiet_by_ward={**self.quiet_by_ward, ward: quiet},
            order_by_ward={**self.order_by_ward, ward: order},
        )

    def next_release(self, ward: str, at: datetime) -> datetime:
        """The first time at or after `at` when a slot of the ward is open outside its quiet hours."""
        start = at
        for _ in range(8):  # a slot wholly inside quiet hours moves on to the next one; a week of them is absurd
            start = self.next_open(ward, start)
            quiet_end = _open_in(self.quiet(ward), start.astimezone(self.tz))
            if quiet_end is None:
                return start
            start = quiet_end
        return start

    def order_gap(self, wards: Iterable[str], item: str) -> timedelta:
        """How long after its slot opens a `priority` item waits for the items its wards' order puts first."""
        places = [order.index(item) for w in wards if item in (order := self.order_by_ward.get(w, ()))]
        return ORDER_GAP * min(places) if places else timedelta(0)

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
        start = max(now, scheduled[0]) if scheduled else now
        wards = list(wards) or [""]
        try:
            return min(self.next_release(w, start) for w in wards)
        except OverflowError:  # a time at the end of the calendar (stored before times were bounded): never reached
            return start

    def wave_time(
        self, *, priority: str, wards: Iterable[str], now: datetime, times: Sequence[datetime], wave: int
    ) -> datetime | None:
        """When wave `wave` (1-based) of a broadcast with these scheduled times goes out; None when it has no such
        wave (a broadcast without times has one wave). An emergency's first wave goes at once and its later times
        repeat it exactly then; the other classes go in the first open slot at or after each time."""
        if wave > max(1, len(times)):
            return None
        if priority == Priority.EMERGENCY:
            return now if wave == 1 else max(now, times[wave - 1])
        return self.release_at(priority=priority, wards=wards, now=now, scheduled=times[wave - 1 : wave])
