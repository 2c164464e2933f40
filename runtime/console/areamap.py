"""The target picker of the compose form: the area tree a drafter may choose from (district -> ward -> residential
group; a ward-scoped person sees only their own wards' subtrees) and a map of it drawn on the server as SVG.

The map is a plain equirectangular projection of the registered coordinates (areas' centres, endpoints' positions)
into a viewBox: at the scale of a district (a few kilometres) the distortion is nothing a reader sees, and no tile
server or map library is needed (nothing leaves the origin; the page's Content-Security-Policy stays strict). Each
ward is a labelled circle over the dots of its residential groups and endpoints; whatever the form has selected is
highlighted, and console.js keeps the highlight in step with the checkboxes, which stay the accessible way to choose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keng.domain.area_registry import AreaView
from keng.domain.endpoint import Endpoint
from keng.domain.staff import Staff
from keng.domain.values import AreaLevel

WIDTH = 640.0
PAD = 36.0
MIN_HEIGHT = 240.0
MAX_HEIGHT = 720.0


@dataclass(frozen=True)
class TreeNode:
    """An area a drafter may target, with the areas below it."""

    code: str
    name: str
    level: str
    children: tuple[TreeNode, ...] = ()

    def codes(self) -> Iterable[str]:
        yield self.code
        for child in self.children:
            yield from child.codes()


def choosable_tree(areas: Sequence[AreaView], staff: Staff) -> list[TreeNode]:
    """The areas `staff` may target (`areas`: the units in force now), as trees: every root of the tree for
    district-wide staff; their own wards (with their groups) for ward-scoped staff."""
    index = {a.code: a for a in areas}
    children: dict[str, list[AreaView]] = {}
    for a in areas:
        if a.parent is not None and a.parent in index:
            children.setdefault(a.parent, []).append(a)

    def build(a: AreaView, depth: int = 0) -> TreeNode:
        below = sorted(children.get(a.code, []), key=lambda c: c.code) if depth < 8 else []
        return TreeNode(a.code, a.name, a.level, tuple(build(c, depth + 1) for c in below))

    if staff.district_wide:
        roots = [a for a in areas if a.parent is None or a.parent not in index]
        # A city with one district: start at the district, the level a console user works at.
        while len(roots) == 1 and roots[0].level == AreaLevel.CITY and children.get(roots[0].code):
            roots = children[roots[0].code]
    else:
        roots = [index[w] for w in staff.wards if w in index]
    return [build(a) for a in sorted(roots, key=lambda a: a.code)]


def ancestors(code: str, parents: Mapping[str, str | None]) -> tuple[str, ...]:
    """The codes above an area (given each area's parent), nearest first."""
    found: list[str] = []
    node = parents.get(code)
    while node is not None and node not in found and len(found) < 16:
        found.append(node)
        node = parents.get(node)
    return tuple(found)


@dataclass(frozen=True)
class MapDot:
    """A point on the map: a ward (labelled), a residential group or an endpoint."""

    x: float
    y: float
    code: str
    label: str
    kind: str
    parents: tuple[str, ...]
    selected: bool


@dataclass
class AreaMap:
    """The SVG's geometry: its viewBox and the points to draw (wards last, so they are on top)."""

    width: float
    height: float
    wards: list[MapDot] = field(default_factory=list)
    dots: list[MapDot] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.wards and not self.dots

    @property
    def close_up(self) -> bool:
        """One or two wards fill the map: their groups are drawn larger and labelled."""
        return len(self.wards) <= 2

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width:.0f} {self.height:.0f}"


def _selected(code: str, parents: tuple[str, ...], chosen: set[str]) -> bool:
    return code in chosen or any(p in chosen for p in parents)


def area_map(tree: Sequence[TreeNode], areas: Sequence[AreaView], endpoints: Sequence[Endpoint],
             selected: Iterable[str]) -> AreaMap:  # fmt: skip
    """The map of the choosable areas (`tree`) and the endpoints in them, `selected` areas highlighted."""
    shown = {code for node in tree for code in node.codes()}
    index = {a.code: a for a in areas}
    parents = {a.code: a.parent for a in areas}
    chosen = set(selected)
    points: list[tuple[float, float, str, str, str, tuple[str, ...]]] = []  # lat, lon, code, label, kind, parents
    ward_positions: dict[str, list[tuple[float, float]]] = {}
    for code in sorted(shown):
        a = index.get(code)
        if a is None or a.lat is None or a.lon is None or a.level != AreaLevel.GROUP:
            continue
        points.append((a.lat, a.lon, a.code, a.name, "group", ancestors(a.code, parents)))
        if a.parent:
            ward_positions.setdefault(a.parent, []).append((a.lat, a.lon))
    for e in endpoints:
        home = e.group or e.ward
        if e.lat is None or e.lon is None or home not in shown:
            continue
        above = ((e.group,) if e.group else ()) + (e.ward,) + ancestors(e.ward, parents)
        points.append((e.lat, e.lon, e.code, e.code, "endpoint", tuple(dict.fromkeys(above))))
    wards: list[tuple[float, float, str, str, str, tuple[str, ...]]] = []
    for code in sorted(shown):
        a = index.get(code)
        if a is None or a.level != AreaLevel.WARD:
            continue
        if a.lat is not None and a.lon is not None:
            lat, lon = a.lat, a.lon
        elif ward_positions.get(code):
            spots = ward_positions[code]
            lat, lon = sum(p[0] for p in spots) / len(spots), sum(p[1] for p in spots) / len(spots)
        else:
            continue
        wards.append((lat, lon, a.code, a.name, "ward", ancestors(a.code, parents)))
    everything = points + wards
    if not everything:
        return AreaMap(WIDTH, MIN_HEIGHT)
    lats, lons = [p[0] for p in everything], [p[1] for p in everything]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = max((max(lons) - min(lons)) * squeeze, 1e-6)
    span_y = max(max(lats) - min(lats), 1e-6)
    scale = min((WIDTH - 2 * PAD) / span_x, (MAX_HEIGHT - 2 * PAD) / span_y)
    height = max(MIN_HEIGHT, span_y * scale + 2 * PAD)
    left = (WIDTH - span_x * scale) / 2  # centred both ways
    top = (height - span_y * scale) / 2

    def place(item: tuple[float, float, str, str, str, tuple[str, ...]]) -> MapDot:
        lat, lon, code, label, kind, parents = item
        x = left + (lon - min(lons)) * squeeze * scale
        y = top + (max(lats) - lat) * scale
        return MapDot(round(x, 1), round(y, 1), code, label, kind, parents, _selected(code, parents, chosen))

    return AreaMap(WIDTH, round(height), wards=[place(w) for w in wards], dots=[place(p) for p in points])
