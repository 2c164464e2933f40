"""What the projections read: one stored event as a `Fact` (position, class name, originator id, time and a flat dict
of its attributes), whether it was decoded from a domain event object or straight from the stored bytes.

"Flat" means JSON values only: UUIDs as their canonical string, datetimes and dates as ISO strings, Decimals as
strings, tuples as lists. Both ways of making a Fact produce the same values (tests compare them), so the fast raw
reader used for rebuilds and the domain-event path used by tests and small catch-ups cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

_SKIP = frozenset(("originator_id", "originator_version", "timestamp"))


class Fact:
    """One event as the projections see it."""

    __slots__ = ("aggregate", "at", "data", "name", "oid", "position")

    def __init__(self, position: int, name: str, oid: str, at: str, data: dict[str, Any], aggregate: str = "") -> None:
        self.position = position
        self.name = name  # the event class's qualified name, e.g. "Broadcast.Approved"
        self.oid = oid  # originator id, canonical UUID string
        self.at = at  # event time, ISO 8601 as stored
        self.data = data  # every other attribute, flat
        self.aggregate = aggregate or name.partition(".")[0]  # "Broadcast" for "Broadcast.Approved"

    @classmethod
    def of_event(cls, position: int, event: Any) -> Fact:
        """A Fact from a decoded domain event."""
        data = {k: flat(v) for k, v in vars(event).items() if k not in _SKIP}
        name = type(event).__qualname__
        return cls(position, name, str(event.originator_id), event.timestamp.isoformat(), data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fact):
            return NotImplemented
        return (self.position, self.name, self.oid, self.at, self.data) == (
            other.position, other.name, other.oid, other.at, other.data,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"Fact({self.position}, {self.name!r}, {self.oid!r}, {self.at!r}, {self.data!r})"

    __hash__ = None  # type: ignore[assignment]


def flat(value: Any) -> Any:
    """The JSON form of an event attribute value (see the module docstring)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: flat(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [flat(v) for v in value]
    return value


def facts_of(events: Iterable[tuple[int, Any]]) -> Iterator[Fact]:
    """Facts from (position, domain event) pairs, e.g. `Keng.read_events`."""
    for position, event in events:
        yield Fact.of_event(position, event)


def facts_until(facts: Iterable[Fact], as_of: datetime) -> Iterator[Fact]:
    """The prefix of the log recorded at or before `as_of` (stops at the first later event)."""
    for fact in facts:
        if datetime.fromisoformat(fact.at) > as_of:
            return
        yield fact
