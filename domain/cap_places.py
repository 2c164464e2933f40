"""Where a CAP area lands in keng: VN-DVHC geocodes, polygons and circles resolved against the registered areas and
endpoints, and checked against the sender's jurisdiction (refused, never clipped).

A VN-DVHC code means the unit that held it when the alert was written (its `sent`): codes are reused (00613 was
Phường Minh Khai until 2025-07-01 and is Phường Tây Tựu since). The area registry reads it as of `sent` and answers
with the codes in force now that cover the same ground: the code itself, its new code, or for a unit divided since,
the parts of its area as they are now (the plan carries a note saying so). A code whose unit had already ended at
`sent` is refused naming its successors (AreaEnded). Shapes, jurisdiction and targets are on the tree of now.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from keng.domain.area_registry import AreaRegistry, Structure
from keng.domain.area_registry import Resolution as AreaResolution
from keng.domain.cap import Area, Circle, Point
from keng.domain.errors import AreaEnded, DomainError, UnknownArea
from keng.domain.geo import in_circle, in_polygon

DVHC = "VN-DVHC"  # geocode valueName: Vietnam's administrative unit codes (ward 5 digits, district 3, province 2)
_DVHC_LEVEL = {5: "ward", 3: "district", 2: "city"}


class CapRefused(DomainError):
    """A valid CAP alert that keng cannot act on; the message names the element and the reason."""

    rule = "cap-refused"


class UnknownAreaCode(CapRefused):
    """A VN-DVHC geocode that is not a registered ward or district."""

    rule = "cap-unknown-area-code"


class OutsideJurisdiction(CapRefused):
    """An area (or a referenced broadcast) outside what the sender is authorised for."""

    rule = "cap-outside-jurisdiction"


class NotLocatable(CapRefused):
    """An area with nothing keng can place (no VN-DVHC geocode, polygon or circle), or an info without any area."""

    rule = "cap-area-not-locatable"


@dataclass(frozen=True)
class Place:
    """A registered area node (ward, district, group) with its centre when known."""

    code: str
    level: str
    parent: str | None
    name: str
    at: Point | None = None


@dataclass(frozen=True)
class Device:
    """A registered, not decommissioned endpoint with its ward and coordinates when known."""

    code: str
    ward: str
    at: Point | None = None


@dataclass(frozen=True)
class Gazetteer:
    """Everything registered that a CAP area can point at: the units in force at `at` (`places`), the endpoints in
    service, and every unit ever recorded (`registry`), for codes written at another time."""

    places: Mapping[str, Place] = field(default_factory=dict)
    devices: Sequence[Device] = ()
    registry: AreaRegistry = field(default_factory=lambda: AreaRegistry(()))
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def tree(self) -> Structure:
        """The units in force at `at`."""
        return self.registry.in_force(self.at)

    def read(self, code: str, level: str, *, said_at: datetime) -> AreaResolution:
        """What the `level` code `code`, written at `said_at`, targets now (at `at`). Raises AreaEnded (naming the
        successors) when its unit had already ended then, UnknownArea when no unit of that level held it then."""
        unit = self.registry.unit_at(code, said_at)
        if unit is None:
            self.registry.resolve(code, said_at=said_at, now=self.at)  # raises the precise refusal
            raise UnknownArea(f"rule {UnknownArea.rule}: no area held {code!r} at {said_at.isoformat()}")
        then = unit.period_at(said_at)
        if then is None or then.level != level:
            held = f"{then.name} ({then.level})" if then else "nothing"
            raise UnknownArea(f"rule {UnknownArea.rule}: {code!r} named {held} at {said_at.isoformat()}, not a {level}")
        return self.registry.resolve(code, said_at=said_at, now=self.at)

    def codes_now(self, code: str, *, said_at: datetime) -> tuple[str, ...]:
        """The codes in force now that cover what `code` named at `said_at` (itself when it cannot be read)."""
        try:
            return self.registry.resolve(code, said_at=min(said_at, self.at), now=self.at).codes
        except UnknownArea:
            return (code,)

    def ancestry(self, code: str) -> list[str]:
        """`code` and every parent up to the root."""
        chain, seen = [], set()
        current: str | None = code
        while current is not None and current not in seen:
            seen.add(current)
            chain.append(current)
            place = self.places.get(current)
            current = place.parent if place else None
        return chain

    def ward_of(self, code: str) -> str:
        """The ward (or the highest known node) that contains `code`."""
        for node in self.ancestry(code):
            place = self.places.get(node)
            if place and place.level == "ward":
                return node
        return code


@dataclass(frozen=True)
class Jurisdiction:
    """The area codes (wards, a district) a sender is authorised for; a node is covered if it or a parent is listed."""

    codes: frozenset[str]
    gazetteer: Gazetteer

    def covers(self, code: str) -> bool:
        """True if `code` lies within the jurisdiction."""
        return any(node in self.codes for node in self.gazetteer.ancestry(code))

    def describe(self) -> str:
        """The jurisdiction as a list for messages."""
        return ", ".join(sorted(self.codes)) or "nothing"


@dataclass
class Resolution:
    """What the areas of one alert resolve to, every problem found (a refusal class and a message each), the
    successors of codes whose units had ended, and notes on codes read as other codes today."""

    areas: set[str] = field(default_factory=set)
    endpoints: set[str] = field(default_factory=set)
    problems: list[tuple[type[DomainError], str]] = field(default_factory=list)
    successors: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def refuse(self, kind: type[DomainError], message: str) -> None:
        """Record one problem."""
        self.problems.append((kind, message))

    def raise_problems(self) -> None:
        """Raise every problem recorded, as one error: AreaEnded (naming the successors) when a code's unit had
        ended, else the first problem's class."""
        if not self.problems:
            return
        message = "; ".join(message for _, message in self.problems)
        if any(kind is AreaEnded for kind, _ in self.problems):
            raise AreaEnded(message, successors=tuple(sorted(self.successors)))
        raise self.problems[0][0](message)


def resolve_area(
    area: Area, path: str, juris: Jurisdiction, out: Resolution, *, said_at: datetime | None = None
) -> None:
    """Add the targets of one CAP area to `out`, or record why they are refused. Geocodes are read as of
    `said_at` (the alert's `sent`; default: the gazetteer's now)."""
    g = juris.gazetteer
    when = min(said_at, g.at) if said_at is not None else g.at  # written no later than received
    located = False
    for k, code in enumerate(area.geocodes, start=1):
        if code.name != DVHC:
            continue
        located = True
        where = f"{path}/geocode[{k}]"
        level = _DVHC_LEVEL.get(len(code.value)) if re.fullmatch(r"\d+", code.value) else None
        if level is None:
            kinds = "a ward (5 digits), district (3) or province (2) code"
            out.refuse(UnknownAreaCode, f"{where}: {code.value!r} is not {kinds}")
            continue
        try:
            read = g.read(code.value, level, said_at=when)
        except AreaEnded as e:
            out.refuse(AreaEnded, f"{where}: {e.message}")
            out.successors.update(e.successors)
            continue
        except UnknownArea:
            out.refuse(
                UnknownAreaCode,
                f"{where}: {code.value!r} is not a registered {level} (as of {when.isoformat()}, the alert's sent)",
            )
            continue
        outside = [c for c in read.codes if not juris.covers(c)]
        if outside:
            named = _names(g, outside)
            also = f" (what {code.value} named when sent)" if read.codes != (code.value,) else ""
            out.refuse(
                OutsideJurisdiction, f"{where}: {named}{also} is outside the sender's jurisdiction ({juris.describe()})"
            )
            continue
        out.areas.update(read.codes)
        if read.note:
            out.notes.append(f"{where}: {read.note}")
    shapes: list[tuple[str, tuple[Point, ...] | Circle]]
    shapes = [(f"{path}/polygon[{k}]", ring) for k, ring in enumerate(area.polygons, start=1)]
    shapes += [(f"{path}/circle[{k}]", c) for k, c in enumerate(area.circles, start=1)]
    for where, shape in shapes:
        located = True
        _resolve_shape(where, shape, juris, out)
    if not located:
        out.refuse(NotLocatable, f"{path}: no {DVHC} geocode, polygon or circle to place {area.desc[:80]!r}")


def _contains(shape: tuple[Point, ...] | Circle, p: Point | None) -> bool:
    if p is None:
        return False
    return in_circle(p, shape) if isinstance(shape, Circle) else in_polygon(p, shape)


def _resolve_shape(where: str, shape: tuple[Point, ...] | Circle, juris: Jurisdiction, out: Resolution) -> None:
    g = juris.gazetteer
    devices = [d for d in g.devices if _contains(shape, d.at)]
    places = [p for p in g.places.values() if _contains(shape, p.at)]
    foreign = {d.ward for d in devices if not juris.covers(d.ward)}
    foreign |= {g.ward_of(p.code) for p in places if not juris.covers(p.code)}
    if foreign:
        names = _names(g, sorted(foreign))
        out.refuse(
            OutsideJurisdiction,
            f"{where}: covers {names} outside the sender's jurisdiction ({juris.describe()}); keng does not clip areas",
        )
    elif not devices:
        out.refuse(
            OutsideJurisdiction,
            f"{where}: contains no registered endpoint of the sender's jurisdiction ({juris.describe()})",
        )
    else:
        out.endpoints.update(d.code for d in devices)


def _names(g: Gazetteer, codes: Iterable[str]) -> str:
    return ", ".join(f"{g.places[c].name} ({c})" if c in g.places else c for c in codes)
