"""Areas in the read models as dated facts: the periods of a unit's life as plain documents, the tree in force on one
day, and which unit a code named on a day.

A unit's periods are `{start, end, code, name, level, parent}` documents, folded from the `Area` events exactly as the
domain's `Area` builds its `Period`s (domain/area.py), so the read models and the registry cannot disagree. A period
holds on the Vietnam-time days in [start, end); since every change takes effect at 00:00 Vietnam time, "the structure
at an instant" is the structure of that instant's Vietnam day. Codes are reused (00613: Phường Minh Khai until
2025-07-01, Phường Tây Tựu since), so every index here is keyed by a unit's id, or by code and day.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from keng.domain.errors import InvalidValue
from keng.domain.programme import VIETNAM_TZ

Period = dict[str, Any]
Periods = list[Period]


def day_of(at: str) -> str:
    """The Vietnam-time calendar day (ISO) of an ISO instant with an offset."""
    return datetime.fromisoformat(at).astimezone(VIETNAM_TZ).date().isoformat()


def check_day(value: str, what: str = "structure") -> str:
    """A calendar day given as YYYY-MM-DD (the structure in force on it), or InvalidValue."""
    text = value.strip()
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InvalidValue(f"{what} {value[:40]!r} must be a calendar day, YYYY-MM-DD") from None


def holds(period: Period, day: str) -> bool:
    """True when the period is in force on `day` (ISO, Vietnam time)."""
    start, end = period["start"], period["end"]
    return (start is None or start <= day) and (end is None or day < end)


def period_on(periods: Periods, day: str) -> Period | None:
    """The period in force on `day`, or None when the unit did not exist then."""
    for p in periods:
        if holds(p, day):
            return p
    return None


def changed(periods: Periods, effective: str, **changes: Any) -> Periods:
    """The periods after a rename, recoding or move taking effect on `effective` (as `Area._change`)."""
    last = periods[-1]
    values = {"code": last["code"], "name": last["name"], "level": last["level"], "parent": last["parent"], **changes}
    if last["start"] == effective:  # two changes on one day make one period
        return [*periods[:-1], {"start": last["start"], "end": None, **values}]
    return [*periods[:-1], {**last, "end": effective}, {"start": effective, "end": None, **values}]


def ended(periods: Periods, effective: str) -> Periods:
    """The periods after the unit ended on `effective` (as `Area.Ended`)."""
    return [*periods[:-1], {**periods[-1], "end": effective}]


def held_by(entries: list[list[Any]], day: str) -> str | None:
    """Of a code's holders `[[start, end, unit id], ...]` (oldest first), the one holding it on `day`: of two (a unit
    established with a reused code before the old holder's end is recorded), the later established. A code no unit
    held that day (a reference stamped on another clock than the registry's) names the unit that held it most recently
    before, else the first to hold it later."""
    holder, before = None, None
    for start, end, unit in entries:
        if start is None or start <= day:
            before = str(unit)
            if end is None or day < end:
                holder = str(unit)
    if holder is not None:
        return holder
    if before is not None:
        return before
    return str(entries[0][2]) if entries else None


@dataclass(frozen=True)
class Unit:
    """A unit as it was on one day."""

    id: str
    code: str
    name: str
    level: str
    parent: str | None


@dataclass
class Tree:
    """The units in force on one day: by code (unique on a day) and by id."""

    day: str
    nodes: dict[str, Unit] = field(default_factory=dict)
    by_id: dict[str, Unit] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Unit]:
        return iter(sorted(self.nodes.values(), key=lambda u: u.code))

    def of_level(self, level: str) -> list[Unit]:
        return [u for u in self if u.level == level]

    def ward_of(self, unit: Unit | None) -> Unit | None:
        """The ward (or commune) containing `unit` on this day (itself when it is one)."""
        seen = 0
        while unit is not None and seen < 16:
            if unit.level == "ward":
                return unit
            unit = self.nodes.get(unit.parent) if unit.parent is not None else None
            seen += 1
        return None

    def label(self, level: str) -> str:
        """E.g. "13 wards of 2025-06-30": how many units of a level this tree has, and of which day."""
        n = len(self.of_level(level))
        return f"{n} {level}{'' if n == 1 else 's'} of {self.day}"


def tree_on(units: Mapping[str, Periods], day: str) -> Tree:
    """The tree in force on `day` from every unit's periods (by unit id)."""
    tree = Tree(day)
    for uid, periods in units.items():
        p = period_on(periods, day)
        if p is not None:
            unit = Unit(uid, p["code"], p["name"], p["level"], p["parent"])
            tree.nodes[unit.code] = unit
            tree.by_id[uid] = unit
    return tree


def assigned_on(assignments: list[dict[str, Any]], day: str) -> dict[str, Any] | None:
    """An endpoint's ward and group assignment in force on `day` (assignments oldest first, `from` None for the one
    it was registered with); before its first dated change, the one it was registered with."""
    found = assignments[0] if assignments else None
    for a in assignments:
        if a["from"] is None or a["from"] <= day:
            found = a
    return found
