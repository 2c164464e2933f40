"""Point-in-polygon and great-circle distance for CAP areas.

Hand-written rather than shapely: keng only ever asks "is this point (an endpoint's or an area centre's coordinates)
inside this CAP polygon or circle?", for a few thousand points and polygons of tens of vertices, within one district.
Ray casting and the haversine formula answer that in a few lines of pure Python, keep `domain/` free of a C extension,
and measure circles on the sphere (CAP radii are kilometres; a planar circle in degrees would be an ellipse).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

from keng.domain.cap import Circle, Point

EARTH_RADIUS_KM = 6371.0088


def in_polygon(p: Point, ring: Sequence[Point]) -> bool:
    """True if `p` lies inside the closed ring (even-odd rule; a point on an edge counts as inside). Coordinates are
    treated as planar, which is accurate for district-sized polygons away from the antimeridian and the poles."""
    inside = False
    for a, b in pairwise(ring):
        if _on_segment(p, a, b):
            return True
        if (a.lat > p.lat) != (b.lat > p.lat):
            cross_lon = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat)
            if p.lon < cross_lon:
                inside = not inside
    return inside


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    cross = (b.lon - a.lon) * (p.lat - a.lat) - (b.lat - a.lat) * (p.lon - a.lon)
    if abs(cross) > 1e-12:
        return False
    return min(a.lon, b.lon) <= p.lon <= max(a.lon, b.lon) and min(a.lat, b.lat) <= p.lat <= max(a.lat, b.lat)


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance by the haversine formula (mean Earth radius; error well under 0.5%)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi, dlmb = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def in_circle(p: Point, circle: Circle) -> bool:
    """True if `p` is within the circle's radius of its centre."""
    return distance_km(p, circle.centre) <= circle.radius_km
