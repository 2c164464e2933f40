"""The area tree: city -> district -> ward -> residential group (tổ dân phố). One aggregate per node."""

from __future__ import annotations

import re

from eventsourcing.domain import Aggregate

from keng.domain.errors import InvalidValue
from keng.domain.ids import area_id
from keng.domain.values import AreaLevel, clean_text, parse_enum

_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")
_PARENT_LEVEL = {
    AreaLevel.CITY: None,
    AreaLevel.DISTRICT: AreaLevel.CITY,
    AreaLevel.WARD: AreaLevel.DISTRICT,
    AreaLevel.GROUP: AreaLevel.WARD,
}


def check_code(code: str, what: str = "area code") -> str:
    """Validate an area or inventory code: 1-32 characters of letters, digits, '.', '_' or '-'."""
    code = code.strip()
    if not _CODE.match(code):
        raise InvalidValue(f"{what} {code!r} must be 1-32 letters, digits, '.', '_' or '-'")
    return code


def check_coordinates(lat: float | None, lon: float | None) -> None:
    """Coordinates are optional, but both or neither, and in WGS84 range."""
    if (lat is None) != (lon is None):
        raise InvalidValue("give both latitude and longitude, or neither")
    if lat is not None and not -90.0 <= lat <= 90.0:
        raise InvalidValue(f"latitude {lat} is outside -90..90")
    if lon is not None and not -180.0 <= lon <= 180.0:
        raise InvalidValue(f"longitude {lon} is outside -180..180")


class Area(Aggregate):
    """A node of the area tree. Its id derives from its code: a code is registered once."""

    class Registered(Aggregate.Created):
        code: str
        name: str
        level: str
        parent: str | None
        lat: float | None
        lon: float | None
        generated: bool
        by: str

    def __init__(
        self,
        code: str,
        name: str,
        level: str,
        parent: str | None,
        lat: float | None,
        lon: float | None,
        generated: bool,
        by: str,
    ) -> None:
        self.code = code
        self.name = name
        self.level = level
        self.parent = parent
        self.lat = lat
        self.lon = lon
        self.generated = generated

    @classmethod
    def register(
        cls,
        *,
        code: str,
        name: str,
        level: str,
        parent: Area | None,
        lat: float | None = None,
        lon: float | None = None,
        generated: bool = False,
        by: str,
    ) -> Area:
        """Register a node under `parent` (None only for the root). `generated` marks sample data."""
        lvl = parse_enum(AreaLevel, level, "area level")
        expected = _PARENT_LEVEL[lvl]
        if expected is None and parent is not None:
            raise InvalidValue(f"a {lvl.value} has no parent area")
        if expected is not None:
            if parent is None and lvl is not AreaLevel.DISTRICT:
                raise InvalidValue(f"a {lvl.value} needs a parent {expected.value}")
            if parent is not None and parent.level != expected.value:
                raise InvalidValue(f"a {lvl.value} belongs to a {expected.value}, not to {parent.level} {parent.code}")
        check_coordinates(lat, lon)
        code = check_code(code)
        return cls._create(
            cls.Registered,
            id=area_id(code),
            code=code,
            name=clean_text(name, "area name", max_len=120),
            level=lvl.value,
            parent=parent.code if parent is not None else None,
            lat=lat,
            lon=lon,
            generated=generated,
            by=by,
        )
