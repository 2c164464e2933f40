"""Where a CAP area lands in keng: VN-DVHC geocodes, polygons and circles resolved against the registered areas and
endpoints, and checked against the sender's jurisdiction (refused, never clipped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keng.domain.cap import Area, Circle, Point
from keng.domain.errors import DomainError
from keng.domain.geo import in_circle, in_polygon

DVHC = "VN-DVHC"  # geocode valueName: Vietnam's administrative unit codes (ward 5 digits, district 3)
_DVHC_LEVEL = {5: "ward", 3: "district"}


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
    """Everything registered that a CAP area can point at."""

    places: Mapping[str, Place] = field(default_factory=dict)
    devices: Sequence[Device] = ()

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
    """What the areas of one alert resolve to, and every problem found (a refusal class and a message each)."""

    areas: set[str] = field(default_factory=set)
    endpoints: set[str] = field(default_factory=set)
    problems: list[tuple[type[CapRefused], str]] = field(default_factory=list)

    def refuse(self, kind: type[CapRefused], message: str) -> None:
        """Record one problem."""
        self.problems.append((kind, message))


def resolve_area(area: Area, path: str, juris: Jurisdiction, out: Resolution) -> None:
    """Add the targets of one CAP area to `out`, or record why they are refused."""
    g = juris.gazetteer
    located = False
    for k, code in enumerate(area.geocodes, start=1):
        if code.name != DVHC:
            continue
        located = True
        where = f"{path}/geocode[{k}]"
        level = _DVHC_LEVEL.get(len(code.value)) if re.fullmatch(r"\d+", code.value) else None
        place = g.places.get(code.value)
        if level is None or place is None or place.level != level:
            out.refuse(UnknownAreaCode, f"{where}: {code.value!r} is not a registered ward (5 digits) or district (3)")
        elif not juris.covers(code.value):
            outside = f"{place.name} ({code.value}) is outside the sender's jurisdiction ({juris.describe()})"
            out.refuse(OutsideJurisdiction, f"{where}: {outside}")
        else:
            out.areas.add(code.value)
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
