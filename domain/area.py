"""The area tree: city (province) -> [district] -> ward or commune -> residential group (tổ dân phố), as dated facts.

One aggregate per administrative unit. A unit is established on a date (or, for nodes registered before units were
dated, has always existed), may be renamed, recoded or moved under another parent on later dates, and ends on a date by
being merged into another unit, divided among successors or dissolved. Every change carries its `effective` day
(Vietnam time; it takes effect at 00:00 that day), which may lie in the future. Codes are reused with new meanings
(VN-DVHC 00613 was Phường Minh Khai until 2025-07-01 and is Phường Tây Tựu from then), so a code names a unit only as
of an instant: `domain/area_registry.py` answers those lookups. The id of a registered node derives from its code; the
id of an established unit derives from its code and its first day, so a reused code gets an identity of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from eventsourcing.domain import Aggregate

from keng.domain.errors import InvalidValue
from keng.domain.ids import area_id, dated_area_id
from keng.domain.programme import VIETNAM_TZ
from keng.domain.values import AreaLevel, clean_text, parse_enum

_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")
# Since 2025-07-01 local government has two tiers: a ward or commune belongs directly to its province (level city).
_PARENT_LEVELS = {
    AreaLevel.CITY: (),
    AreaLevel.DISTRICT: (AreaLevel.CITY.value,),
    AreaLevel.WARD: (AreaLevel.DISTRICT.value, AreaLevel.CITY.value),
    AreaLevel.GROUP: (AreaLevel.WARD.value,),
}
ENDINGS = ("merged", "divided", "dissolved")


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


def check_effective(value: str | date, what: str = "effective date") -> str:
    """A calendar day as ISO text (YYYY-MM-DD), the day a change takes effect."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise InvalidValue(f"{what} {value!r} is not a calendar day (YYYY-MM-DD)") from None


@lru_cache(maxsize=4096)
def day_start(day: str) -> datetime:
    """The instant a change dated `day` takes effect: 00:00 Vietnam time."""
    return datetime.combine(date.fromisoformat(day), time(0), VIETNAM_TZ)


@dataclass(frozen=True)
class Period:
    """One stretch of a unit's life with the same code, name, level and parent. `start`/`end` are effective days
    (None: since always / still valid); the period holds for instants in [start 00:00, end 00:00) Vietnam time."""

    start: str | None
    end: str | None
    code: str
    name: str
    level: str
    parent: str | None

    def holds_at(self, at: datetime) -> bool:
        """True when the period is in force at the instant `at` (timezone-aware)."""
        return (self.start is None or day_start(self.start) <= at) and (self.end is None or at < day_start(self.end))


@dataclass(frozen=True)
class Ending:
    """How and when a unit ended: merged into one unit, divided among several, or dissolved (successors named by
    their codes as of the day it ended)."""

    how: str
    effective: str
    successors: tuple[str, ...]
    note: str


class Area(Aggregate):
    """An administrative unit (or a residential group) with its dated history. `code`, `name`, `level` and `parent`
    are those of its latest period; ask `period_at(instant)` (or the registry) for the unit as of a moment."""

    class Registered(Aggregate.Created):
        """A node registered before units were dated: in force since always."""

        code: str
        name: str
        level: str
        parent: str | None
        lat: float | None
        lon: float | None
        generated: bool
        by: str

    class Established(Aggregate.Created):
        """A unit that comes into being on `effective` (formed from `predecessors`, codes as of the day before)."""

        code: str
        name: str
        level: str
        parent: str | None
        lat: float | None
        lon: float | None
        generated: bool
        effective: str
        predecessors: list[str]
        basis: str
        by: str

    class Renamed(Aggregate.Event):
        name: str
        effective: str
        basis: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate._change(self.effective, name=self.name)

    class Recoded(Aggregate.Event):
        code: str
        effective: str
        basis: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate._change(self.effective, code=self.code)

    class Moved(Aggregate.Event):
        """The unit (a residential group into another ward, a ward directly under its province) has a new parent."""

        parent: str | None
        level: str
        effective: str
        basis: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate._change(self.effective, parent=self.parent, level=self.level)

    class Ended(Aggregate.Event):
        """The unit ends on `effective`: merged into one successor, divided among several, or dissolved."""

        how: str
        successors: list[str]
        effective: str
        basis: str
        note: str
        by: str

        def apply(self, aggregate: Any) -> None:
            last = aggregate.periods[-1]
            aggregate.periods[-1] = Period(last.start, self.effective, last.code, last.name, last.level, last.parent)
            aggregate.ending = Ending(self.how, self.effective, tuple(self.successors), self.note)

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
        effective: str | None = None,
        predecessors: list[str] | None = None,
        basis: str = "",
    ) -> None:
        self.lat = lat
        self.lon = lon
        self.generated = generated
        self.predecessors = list(predecessors or [])
        self.basis = basis
        self.periods: list[Period] = [Period(effective, None, code, name, level, parent)]
        self.ending: Ending | None = None

    # -- the latest period's values, for callers that do not ask about time -----------------------------------------

    @property
    def code(self) -> str:
        return self.periods[-1].code

    @property
    def name(self) -> str:
        return self.periods[-1].name

    @property
    def level(self) -> str:
        return self.periods[-1].level

    @property
    def parent(self) -> str | None:
        return self.periods[-1].parent

    @property
    def valid_from(self) -> str | None:
        return self.periods[0].start

    @property
    def valid_to(self) -> str | None:
        return self.periods[-1].end

    def period_at(self, at: datetime) -> Period | None:
        """The unit as it was at the instant `at`, or None when it did not exist then."""
        for period in self.periods:
            if period.holds_at(at):
                return period
        return None

    def _change(self, effective: str, **changes: Any) -> None:
        last = self.periods[-1]
        values = {"code": last.code, "name": last.name, "level": last.level, "parent": last.parent, **changes}
        if last.start == effective:  # two changes on one day make one period
            self.periods[-1] = Period(last.start, None, **values)
        else:
            self.periods[-1] = Period(last.start, effective, last.code, last.name, last.level, last.parent)
            self.periods.append(Period(effective, None, **values))

    # -- commands --------------------------------------------------------------------------------------------------

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
        lvl = _check_place(level, parent)
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

    @classmethod
    def establish(
        cls,
        *,
        code: str,
        name: str,
        level: str,
        parent: Area | None,
        effective: str | date,
        predecessors: list[str] | None = None,
        lat: float | None = None,
        lon: float | None = None,
        generated: bool = False,
        basis: str = "",
        by: str,
    ) -> Area:
        """Establish a unit from its first day `effective` under `parent` (a unit in force that day). Its id derives
        from its code and that day, so a code that another unit held before gets a new identity."""
        lvl = _check_place(level, parent)
        check_coordinates(lat, lon)
        code = check_code(code)
        day = check_effective(effective)
        if parent is not None and parent.period_at(day_start(day)) is None:
            raise InvalidValue(f"parent {parent.code} is not in force on {day}")
        return cls._create(
            cls.Established,
            id=dated_area_id(code, day),
            code=code,
            name=clean_text(name, "area name", max_len=120),
            level=lvl.value,
            parent=parent.period_at(day_start(day)).code if parent is not None else None,  # type: ignore[union-attr]
            lat=lat,
            lon=lon,
            generated=generated,
            effective=day,
            predecessors=sorted({check_code(c) for c in predecessors or []}),
            basis=clean_text(basis, "basis", max_len=300, required=False),
            by=by,
        )

    def _require_change_on(self, effective: str | date, action: str) -> str:
        day = check_effective(effective)
        if self.ending is not None:
            raise InvalidValue(f"{self.code} ({self.name}) ended on {self.ending.effective}; it cannot be {action}")
        start = self.periods[-1].start
        if start is not None and day < start:
            raise InvalidValue(
                f"{self.code} cannot be {action} on {day}: its latest change already took effect on {start}"
            )
        first = self.periods[0].start
        if first is not None and day <= first:
            raise InvalidValue(f"{self.code} cannot be {action} on {day}: it was established on {first}")
        return day

    def rename(self, name: str, *, effective: str | date, basis: str = "", by: str) -> None:
        day = self._require_change_on(effective, "renamed")
        new = clean_text(name, "area name", max_len=120)
        if new != self.name:
            self.trigger_event(self.Renamed, name=new, effective=day, basis=_basis(basis), by=by)

    def recode(self, code: str, *, effective: str | date, basis: str = "", by: str) -> None:
        day = self._require_change_on(effective, "recoded")
        new = check_code(code)
        if new != self.code:
            self.trigger_event(self.Recoded, code=new, effective=day, basis=_basis(basis), by=by)

    def move(self, parent: Area | None, *, level: str | None = None, effective: str | date, basis: str = "",
             by: str) -> None:  # fmt: skip
        """Put the unit under another parent (a unit in force on `effective`), keeping or changing its level.
        Recorded even when the parent's code reads the same: a reused code (00613 Minh Khai -> 00613 Tây Tựu) names
        a new unit, and the event says the unit now belongs to it."""
        day = self._require_change_on(effective, "moved")
        lvl = _check_place(level or self.level, parent)
        if parent is not None:
            where = parent.period_at(day_start(day))
            if where is None:
                raise InvalidValue(f"{self.code} cannot move under {parent.code}: it is not in force on {day}")
            parent_code: str | None = where.code
        else:
            parent_code = None
        self.trigger_event(self.Moved, parent=parent_code, level=lvl.value, effective=day, basis=_basis(basis), by=by)

    def end(self, how: str, *, successors: list[str], effective: str | date, basis: str = "", note: str = "",
            by: str) -> None:  # fmt: skip
        """End the unit: `merged` into one successor, `divided` among two or more, or `dissolved` (its territory
        goes to `successors`, which may be empty only when nothing remains to govern)."""
        day = self._require_change_on(effective, how if how in ENDINGS else "ended")
        if how not in ENDINGS:
            raise InvalidValue(f"an area ends by one of {', '.join(ENDINGS)}, not {how!r}")
        codes = sorted({check_code(c, "successor code") for c in successors})
        if how == "merged" and len(codes) != 1:
            raise InvalidValue(f"{self.code} merged needs exactly one successor, not {len(codes)}")
        if how == "divided" and len(codes) < 2:
            raise InvalidValue(f"{self.code} divided needs at least two successors")
        self.trigger_event(self.Ended, how=how, successors=codes, effective=day, basis=_basis(basis),
                           note=clean_text(note, "note", max_len=500, required=False), by=by)  # fmt: skip


def _basis(text: str) -> str:
    return clean_text(text, "basis", max_len=300, required=False)


def _check_place(level: str, parent: Area | None) -> AreaLevel:
    lvl = parse_enum(AreaLevel, level, "area level")
    allowed = _PARENT_LEVELS[lvl]
    if not allowed and parent is not None:
        raise InvalidValue(f"a {lvl.value} has no parent area")
    if allowed:
        if parent is None and lvl is not AreaLevel.DISTRICT:
            raise InvalidValue(f"a {lvl.value} needs a parent {' or '.join(allowed)}")
        if parent is not None and parent.level not in allowed:
            raise InvalidValue(
                f"a {lvl.value} belongs to a {' or '.join(allowed)}, not to {parent.level} {parent.code}"
            )
    return lvl


AREA_EVENTS = (Area.Registered, Area.Established, Area.Renamed, Area.Recoded, Area.Moved, Area.Ended)
