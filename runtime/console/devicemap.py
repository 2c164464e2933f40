"""The devices map of the console: an SVG drawn on the server from the endpoints' registered coordinates.

Hand-written, because it is small: an equirectangular projection of a district (a few kilometres across, where the
distortion is nil) into a viewBox, one mark per device, ward names at the wards' centres. No tile server, no script,
nothing from another origin (the console's Content-Security-Policy allows none). Each status has its own colour AND
its own shape (circle, square, triangle, cross, hollow diamond), so that colour is never the only cue; every mark has
a <title> (a tooltip), and the whole is one image (role="img") with a summary; the table beside it is the accessible
view of the same devices.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 1000.0
PAD = 40.0
MIN_SPAN_DEG = 0.004  # about 400 m: one device, or devices on one street, still get a readable frame
SIZE = 10.0  # half the width of a mark, in viewBox units
DRAW_ORDER = ("unknown", "online", "offline", "fault", "decommissioned")  # problems drawn last, on top


@dataclass(frozen=True)
class Mark:
    """One device on the map."""

    code: str
    lat: float
    lon: float
    status: str
    title: str


@dataclass(frozen=True)
class Place:
    """A named place (a ward's centre) written on the map."""

    name: str
    lat: float
    lon: float


def shape(status: str, x: float, y: float, size: float = SIZE) -> tuple[str, dict[str, str]]:
    """The SVG element name and geometry attributes of a mark of `status` centred on (x, y)."""
    s = size
    if status == "online":
        return "circle", {"cx": _n(x), "cy": _n(y), "r": _n(s * 0.9)}
    if status == "offline":
        return "rect", {"x": _n(x - s * 0.8), "y": _n(y - s * 0.8), "width": _n(s * 1.6), "height": _n(s * 1.6)}
    if status == "fault":
        d = f"M{_n(x)} {_n(y - s)}L{_n(x + s)} {_n(y + s * 0.8)}L{_n(x - s)} {_n(y + s * 0.8)}Z"
        return "path", {"d": d}
    if status == "decommissioned":
        a = s * 0.75
        d = f"M{_n(x - a)} {_n(y - a)}L{_n(x + a)} {_n(y + a)}M{_n(x + a)} {_n(y - a)}L{_n(x - a)} {_n(y + a)}"
        return "path", {"d": d}
    d = f"M{_n(x)} {_n(y - s)}L{_n(x + s)} {_n(y)}L{_n(x)} {_n(y + s)}L{_n(x - s)} {_n(y)}Z"
    return "path", {"d": d}


def icon(status: str) -> Markup:
    """A small stand-alone SVG of a status's mark, for the legend (decorative: the text beside it says it)."""
    name, attrs = shape(status, 10, 10, 8)
    return Markup(
        '<svg class="legend-icon" viewBox="0 0 20 20" width="20" height="20" aria-hidden="true" focusable="false">'
        f'<{name} class="dev-{escape(status)}"{_attrs(attrs)}/></svg>'
    )


def draw(marks: Sequence[Mark], places: Sequence[Place], *, label: str, empty: str) -> Markup:
    """The map of `marks` with `places` named on it; `label` is its accessible summary."""
    points = [(m.lat, m.lon) for m in marks] + [(p.lat, p.lon) for p in places]
    if not points:
        return Markup(f'<p class="muted">{escape(empty)}</p>')
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    lat_mid = (min(lats) + max(lats)) / 2
    k = math.cos(math.radians(lat_mid))  # equirectangular: x = lon * cos(mid latitude), y = lat
    lat_span = max(max(lats) - min(lats), MIN_SPAN_DEG)
    lon_span = max((max(lons) - min(lons)) * k, MIN_SPAN_DEG)
    scale = (WIDTH - 2 * PAD) / lon_span
    height = lat_span * scale + 2 * PAD
    lat_top = (min(lats) + max(lats)) / 2 + lat_span / 2
    lon_left = (min(lons) + max(lons)) / 2 - lon_span / (2 * k)

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return PAD + (lon - lon_left) * k * scale, PAD + (lat_top - lat) * scale

    parts = [
        f'<svg class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(WIDTH)} {_n(height)}" '
        f'role="img" aria-label="{escape(label)}" data-marks="{len(marks)}">',
        f'<rect class="map-bg" x="0" y="0" width="{_n(WIDTH)}" height="{_n(height)}"/>',
        '<g class="marks">',
    ]
    rank = {s: i for i, s in enumerate(DRAW_ORDER)}
    for m in sorted(marks, key=lambda m: (rank.get(m.status, 0), m.code)):
        name, attrs = shape(m.status, *xy(m.lat, m.lon))
        parts.append(
            f'<{name} class="dev dev-{escape(m.status)}" data-code="{escape(m.code)}"{_attrs(attrs)}>'
            f"<title>{escape(m.title)}</title></{name}>"
        )
    parts.append('</g><g class="places">')
    for p in places:
        x, y = xy(p.lat, p.lon)
        parts.append(f'<text class="place" x="{_n(x)}" y="{_n(y)}" text-anchor="middle">{escape(p.name)}</text>')
    parts.append("</g></svg>")
    return Markup("".join(parts))


def summary(counts: Counter[str], labels: dict[str, str], total: int, unplaced: int) -> str:
    """The map's accessible summary: how many devices, by status, and how many could not be placed."""
    by_status = ", ".join(f"{counts[s]} {labels[s].lower()}" for s in DRAW_ORDER[::-1] if counts.get(s))
    text = f"Bản đồ {total} thiết bị" + (f": {by_status}" if by_status else "")
    if unplaced:
        text += f"; {unplaced} thiết bị không có tọa độ nên không hiện trên bản đồ"
    return text + ". Danh sách đầy đủ ở bảng bên dưới."


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k}="{escape(v)}"' for k, v in attrs.items())
