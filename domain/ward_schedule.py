"""A ward's own programme settings: its slots, its quiet hours and the order of its waiting `priority` items.

One aggregate per ward (its id derives from the ward code); wards without one follow the installation's programme
(domain/programme.py: the sample's slots 05:30-06:30 and 17:00-18:00, quiet hours 22:00-05:00). Set by an admin whose
scope covers the ward; every change is an event, so the programme a dispatch followed can be replayed as of its time.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from keng.domain.actor import Actor
from keng.domain.area import check_code
from keng.domain.authority import require_authority
from keng.domain.errors import InvalidValue
from keng.domain.ids import ward_schedule_id
from keng.domain.programme import Programme, Slot, format_slots, parse_quiet, parse_slots
from keng.domain.values import Role

MAX_ORDER = 50


def _order(items: list[str]) -> list[str]:
    if len(items) > MAX_ORDER:
        raise InvalidValue(f"an order names at most {MAX_ORDER} broadcasts, not {len(items)}")
    out = []
    for item in items:
        try:
            out.append(str(UUID(item)))
        except ValueError:
            raise InvalidValue(f"{item!r} is not a broadcast id") from None
    if len(set(out)) != len(out):
        raise InvalidValue("an order names each broadcast once")
    return out


class WardSchedule(Aggregate):
    """Slots, quiet hours (as `HH:MM-HH:MM` texts) and the explicit order of `priority` items of one ward."""

    class Set(Aggregate.Created):
        ward: str
        slots: list[str]
        quiet: list[str]
        by: str

    class Changed(Aggregate.Event):
        slots: list[str]
        quiet: list[str]
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.slots, aggregate.quiet = list(self.slots), list(self.quiet)

    class Ordered(Aggregate.Event):
        order: list[str]
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.order = list(self.order)

    def __init__(self, ward: str, slots: list[str], quiet: list[str], by: str) -> None:
        self.ward = ward
        self.slots = list(slots)
        self.quiet = list(quiet)
        self.order: list[str] = []

    @classmethod
    def set_up(cls, *, ward: str, slots: str, quiet: str, by: Actor) -> WardSchedule:
        """A ward's first settings (texts as `parse_slots` and `parse_quiet` read them)."""
        ward = check_code(ward, "ward code")
        require_authority(by, Role.ADMIN, f"set the programme of ward {ward}", [ward])
        return cls._create(
            cls.Set,
            id=ward_schedule_id(ward),
            ward=ward,
            slots=format_slots(parse_slots(slots)),
            quiet=format_slots(parse_quiet(quiet)),
            by=by.handle,
        )

    @classmethod
    def loaded(cls, *, ward: str, slots: str, quiet: str, by: str) -> WardSchedule:
        """A ward's settings from a district file; the loader has checked that `by` is an admin (or the system)."""
        ward = check_code(ward, "ward code")
        return cls._create(
            cls.Set,
            id=ward_schedule_id(ward),
            ward=ward,
            slots=format_slots(parse_slots(slots)),
            quiet=format_slots(parse_quiet(quiet)),
            by=by,
        )

    def change(self, *, slots: str, quiet: str, by: Actor) -> None:
        """New slots and quiet hours."""
        require_authority(by, Role.ADMIN, f"set the programme of ward {self.ward}", [self.ward])
        self.trigger_event(
            self.Changed, slots=format_slots(parse_slots(slots)), quiet=format_slots(parse_quiet(quiet)), by=by.handle
        )

    def set_order(self, order: list[str], *, by: Actor) -> None:
        """The explicit order of the ward's `priority` items waiting for the same slot (broadcast ids)."""
        require_authority(by, Role.ADMIN, f"order the programme of ward {self.ward}", [self.ward])
        self.trigger_event(self.Ordered, order=_order(order), by=by.handle)

    def slot_values(self) -> tuple[tuple[Slot, ...], tuple[Slot, ...]]:
        """The slots and quiet hours as values."""
        return parse_slots(",".join(self.slots)), parse_quiet(",".join(self.quiet) or "none")

    def applied_to(self, programme: Programme) -> Programme:
        """`programme` with this ward's settings."""
        slots, quiet = self.slot_values()
        return programme.with_ward(self.ward, slots=slots, quiet=quiet, order=tuple(self.order))
