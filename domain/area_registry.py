"""The area registry: which unit a code names at an instant, the tree as of an instant, and what became of a unit.

Built from the `Area` aggregates (domain/area.py), it is the one place that answers "as of" questions: a code is
reused with new meanings (00613: Phường Minh Khai until 2025-07-01, Phường Tây Tựu since), so every lookup names its
instant. `resolve` turns a code read from a message (a CAP geocode, a webhook target, a district file) into the codes
that mean the same ground today: itself; its new code; or, for a unit that ended after the message was written, the
parts of its territory as they are now (its residential groups where known, its successors otherwise), with a note
saying so. A code whose unit had already ended when the message was written is refused, naming its successors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from keng.domain.area import Area, Period, day_start
from keng.domain.errors import AreaEnded, UnknownArea
from keng.domain.programme import VIETNAM_TZ


@dataclass(frozen=True)
class AreaView:
    """A unit as of one instant: its code, name, level and parent then, and the whole span of its life."""

    id: UUID
    code: str
    name: str
    level: str
    parent: str | None
    lat: float | None
    lon: float | None
    generated: bool
    valid_from: str | None  # first day (None: since always)
    valid_to: str | None  # the day it ended (None: still in force, or no end recorded yet)
    ending: str | None  # merged, divided or dissolved, when it has ended
    successors: tuple[str, ...]  # codes as of the day it ended


def view(area: Area, period: Period) -> AreaView:
    """`area` as it was during `period`."""
    end = area.ending
    return AreaView(
        id=area.id,
        code=period.code,
        name=period.name,
        level=period.level,
        parent=period.parent,
        lat=area.lat,
        lon=area.lon,
        generated=area.generated,
        valid_from=area.valid_from,
        valid_to=area.valid_to,
        ending=end.how if end else None,
        successors=end.successors if end else (),
    )


@dataclass
class Structure:
    """The area tree in force at one instant, by code."""

    at: datetime
    nodes: dict[str, AreaView] = field(default_factory=dict)
    _children: dict[str | None, list[AreaView]] | None = None

    def get(self, code: str) -> AreaView | None:
        return self.nodes.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self.nodes

    def __iter__(self) -> Iterator[AreaView]:
        return iter(sorted(self.nodes.values(), key=lambda a: a.code))

    def __len__(self) -> int:
        return len(self.nodes)

    def of_level(self, level: str) -> list[AreaView]:
        return [a for a in self if a.level == level]

    @property
    def parents(self) -> dict[str, str | None]:
        return {code: a.parent for code, a in self.nodes.items()}

    def children(self, code: str | None) -> list[AreaView]:
        if self._children is None:
            index: dict[str | None, list[AreaView]] = {}
            for a in self:
                index.setdefault(a.parent, []).append(a)
            self._children = index
        return list(self._children.get(code, ()))

    def chain(self, code: str) -> list[str]:
        """The code and those of every area above it (the tree is shallow; a cycle cannot hang this)."""
        out: list[str] = []
        node: str | None = code
        while node is not None and node in self.nodes and node not in out and len(out) < 16:
            out.append(node)
            node = self.nodes[node].parent
        return out

    def ward_of(self, code: str) -> str | None:
        """The ward (or commune) that contains the area `code` (itself when it is one)."""
        for c in self.chain(code):
            if self.nodes[c].level == "ward":
                return c
        return None


@dataclass(frozen=True)
class Resolution:
    """What a code read from a message means today: the codes to target and, when they differ, why."""

    code: str
    codes: tuple[str, ...]
    note: str = ""


class AreaRegistry:
    """Every unit ever recorded, answering by instant."""

    def __init__(self, areas: Iterable[Area]) -> None:
        self.areas: list[Area] = list(areas)
        self._by_id = {a.id: a for a in self.areas}
        self._by_code: dict[str, list[tuple[Area, Period]]] = {}
        for a in self.areas:
            for p in a.periods:
                self._by_code.setdefault(p.code, []).append((a, p))
        for entries in self._by_code.values():
            entries.sort(key=lambda ap: ap[1].start or "")
        self._structures: dict[datetime, Structure] = {}

    def __len__(self) -> int:
        return len(self.areas)

    def at(self, at: datetime) -> Structure:
        """The tree in force at the instant `at`."""
        found = self._structures.get(at)
        if found is None:
            found = Structure(at)
            for a in self.areas:
                p = a.period_at(at)
                if p is not None:
                    found.nodes[p.code] = view(a, p)
            if len(self._structures) > 64:
                self._structures.clear()
            self._structures[at] = found
        return found

    def in_force(self, now: datetime) -> Structure:
        """The tree in force at `now`. Every change takes effect at 00:00 Vietnam time, so the tree of that day's
        first instant serves the whole day (and is cached): callers that ask "now" many times pay once a day."""
        return self.at(day_start(now.astimezone(VIETNAM_TZ).date().isoformat()))

    def unit_at(self, code: str, at: datetime) -> Area | None:
        """The unit that held `code` at the instant `at`."""
        for a, p in self._by_code.get(code, ()):
            if p.holds_at(at):
                return a
        return None

    def history(self, code: str) -> list[AreaView]:
        """Every unit that ever held `code`, oldest first, each as it was while it held the code."""
        return [view(a, p) for a, p in self._by_code.get(code, ())]

    def holder_free(self, code: str, day: str) -> Area | None:
        """The unit that holds `code` on or after `day` (a new unit may take the code only when this is None)."""
        start = day_start(day)
        for a, p in self._by_code.get(code, ()):
            if p.end is None or day_start(p.end) > start:
                return a
        return None

    def current_codes(self, area: Area, now: datetime, said_at: datetime, depth: int = 0) -> tuple[list[str], bool]:
        """The codes in force at `now` covering the ground `area` covered at `said_at`; True when it had to follow
        a unit's children or successors to find them."""
        p = area.period_at(now)
        if p is not None:
            return [p.code], False
        if depth > 8:
            return [], True
        then = self.at(said_at)
        old = area.period_at(said_at)
        parts: list[str] = []
        if old is not None:
            for child in then.children(old.code):
                unit = self._by_id.get(child.id)
                if unit is not None:
                    parts.extend(self.current_codes(unit, now, said_at, depth + 1)[0])
        if not parts and area.ending is not None:
            on = day_start(area.ending.effective)
            for code in area.ending.successors:
                unit = self.unit_at(code, on)
                if unit is not None:
                    parts.extend(self.current_codes(unit, now, on, depth + 1)[0])
        return sorted(set(parts)), True

    def resolve(self, code: str, *, said_at: datetime, now: datetime) -> Resolution:
        """What `code`, written at `said_at`, means at `now` (see the module's docstring). Raises UnknownArea when no
        unit held the code then, AreaEnded when its unit had already ended (naming the successors)."""
        area = self.unit_at(code, said_at)
        if area is None:
            raise self._not_in_force(code, said_at, now)
        codes, followed = self.current_codes(area, now, said_at)
        old = area.period_at(said_at)
        name = old.name if old else code
        if not codes:
            raise AreaEnded(
                f"rule {AreaEnded.rule}: {code} ({name}) has ended and nothing in force now covers it",
                successors=(),
            )
        if not followed:
            if codes == [code]:
                return Resolution(code, (code,))
            return Resolution(code, tuple(codes), f"{code} ({name}) has been recoded {codes[0]}")
        assert area.ending is not None or old is not None
        how = area.ending.how if area.ending else "changed"
        when = area.ending.effective if area.ending else ""
        now_structure = self.at(now)
        parts = ", ".join(f"{c} ({now_structure.nodes[c].name})" if c in now_structure else c for c in codes)
        wards = sorted({w for c in codes if (w := now_structure.ward_of(c))})
        where = f"; now in {', '.join(wards)}" if wards and wards != codes else ""
        return Resolution(
            code,
            tuple(codes),
            f"{code} ({name}) was {how} on {when}: targeting the parts of its area as they are now: {parts}{where}",
        )

    def _not_in_force(self, code: str, said_at: datetime, now: datetime) -> UnknownArea:
        earlier = [(a, p) for a, p in self._by_code.get(code, ()) if p.end is not None and day_start(p.end) <= said_at]
        if not earlier:
            later = [p for _, p in self._by_code.get(code, ()) if p.start is not None and day_start(p.start) > said_at]
            if later:
                return UnknownArea(
                    f"rule {UnknownArea.rule}: {code} ({later[0].name}) is in force only from {later[0].start}, "
                    f"after {said_at.isoformat()}"
                )
            return UnknownArea(f"rule {UnknownArea.rule}: no area with code {code!r} is registered")
        area, period = earlier[-1]
        if area.ending is not None and area.ending.effective == period.end:
            on = day_start(area.ending.effective)
            successors = []
            for c in area.ending.successors:
                unit = self.unit_at(c, on)
                if unit is not None:
                    successors.extend(self.current_codes(unit, now, on)[0])
            names = self.at(now)
            named = ", ".join(f"{c} ({names.nodes[c].name})" if c in names else c for c in sorted(set(successors)))
            return AreaEnded(
                f"rule {AreaEnded.rule}: {code} ({period.name}) was {area.ending.how} on {area.ending.effective}"
                + (f"; use its successors: {named}" if named else "; it has no successor"),
                successors=tuple(sorted(set(successors))),
            )
        now_period = area.period_at(now)
        new = now_period.code if now_period else "another code"
        return AreaEnded(
            f"rule {AreaEnded.rule}: {code} ({period.name}) has been recoded {new} since {period.end}; use {new}",
            successors=(new,) if now_period else (),
        )
