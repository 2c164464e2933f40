"""The gazetteer CAP areas are resolved against: the area units (every one ever recorded, with its dated history) and
the endpoints in service with their wards and coordinates.

Built by folding the Area and Endpoint events of the global log, incrementally: `PlaceIndex` remembers the last
position it read (in the store it read it from), so a long-running service pays for new events only. Its places are
the units in force at the app clock's now, read again when an area event arrives or the day changes (a
reorganisation takes effect at 00:00 Vietnam time). (A tracked projection can replace it later; the mapping only
needs a `Gazetteer` value.)
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace
from typing import Any
from uuid import UUID

from keng.adapters.store.app import Keng
from keng.domain.area import AREA_EVENTS, Area
from keng.domain.area_registry import AreaRegistry, Structure
from keng.domain.cap import Point
from keng.domain.cap_places import Device, Gazetteer, Place
from keng.domain.endpoint import Endpoint


def _point(lat: float | None, lon: float | None) -> Point | None:
    return Point(lat, lon) if lat is not None and lon is not None else None


class PlaceIndex:
    """Areas and endpoints as of the newest event read; `current(app)` reads what is new and returns a snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: weakref.ref[Keng] | None = None
        self._clear()

    def _clear(self) -> None:
        self._position = 0
        self._areas: dict[UUID, Area] = {}
        self._registry: AreaRegistry | None = None
        self._places: tuple[Structure, dict[str, Place]] | None = None
        self._devices: dict[UUID, Device] = {}

    def _apply(self, event: Any) -> None:
        if isinstance(event, AREA_EVENTS):
            area = event.mutate(self._areas.get(event.originator_id))
            if area is not None:
                self._areas[event.originator_id] = area
            self._registry = None
        elif isinstance(event, Endpoint.Registered):
            self._devices[event.originator_id] = Device(event.code, event.ward, _point(event.lat, event.lon))
        elif isinstance(event, Endpoint.Reassigned):
            found = self._devices.get(event.originator_id)
            if found is not None:
                self._devices[event.originator_id] = replace(found, ward=event.ward)
        elif isinstance(event, Endpoint.Decommissioned):
            self._devices.pop(event.originator_id, None)

    def _reset_for(self, app: Keng) -> None:
        """Start again when asked about another store than the one read so far (positions are per store)."""
        if self._store is None or self._store() is not app:
            self._clear()
            self._store = weakref.ref(app)

    def current(self, app: Keng) -> Gazetteer:
        """The gazetteer including every event stored so far, its places those in force at the app clock's now."""
        with self._lock:
            self._reset_for(app)
            for position, event in app.read_events(self._position):
                self._apply(event)
                self._position = position
            if self._registry is None:
                self._registry = AreaRegistry(self._areas.values())
            now = app.clock()
            tree = self._registry.in_force(now)
            if self._places is None or self._places[0] is not tree:
                places = {a.code: Place(a.code, a.level, a.parent, a.name, _point(a.lat, a.lon)) for a in tree}
                self._places = (tree, places)
            return Gazetteer(
                places=self._places[1], devices=tuple(self._devices.values()), registry=self._registry, at=now
            )


def load_gazetteer(app: Keng) -> Gazetteer:
    """A fresh gazetteer read from the whole log (for one-off use; a service keeps a `PlaceIndex`)."""
    return PlaceIndex().current(app)
