"""The gazetteer CAP areas are resolved against: registered areas and live endpoints with their coordinates.

Built by folding only the Area and Endpoint registration events of the global log, incrementally: `PlaceIndex`
remembers the last position it read, so a long-running service pays for new events only. (A tracked projection can
replace it later; the mapping only needs a `Gazetteer` value.)
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from keng.adapters.store.app import Keng
from keng.domain.area import Area
from keng.domain.cap import Point
from keng.domain.cap_places import Device, Gazetteer, Place
from keng.domain.endpoint import Endpoint


def _point(lat: float | None, lon: float | None) -> Point | None:
    return Point(lat, lon) if lat is not None and lon is not None else None


class PlaceIndex:
    """Areas and endpoints as of the newest event read; `current(app)` reads what is new and returns a snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._position = 0
        self._places: dict[str, Place] = {}
        self._devices: dict[UUID, Device] = {}

    def _apply(self, event: Any) -> None:
        if isinstance(event, Area.Registered):
            at = _point(event.lat, event.lon)
            self._places[event.code] = Place(event.code, event.level, event.parent, event.name, at)
        elif isinstance(event, Endpoint.Registered):
            self._devices[event.originator_id] = Device(event.code, event.ward, _point(event.lat, event.lon))
        elif isinstance(event, Endpoint.Decommissioned):
            self._devices.pop(event.originator_id, None)

    def current(self, app: Keng) -> Gazetteer:
        """The gazetteer including every event stored so far."""
        with self._lock:
            for position, event in app.read_events(self._position):
                self._apply(event)
                self._position = position
            return Gazetteer(places=dict(self._places), devices=tuple(self._devices.values()))


def load_gazetteer(app: Keng) -> Gazetteer:
    """A fresh gazetteer read from the whole log (for one-off use; a service keeps a `PlaceIndex`)."""
    return PlaceIndex().current(app)
