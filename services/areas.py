"""Areas as dated facts, the use cases: the structure as of an instant, a code's history, and the reorganisation of
keng's registry after the official list (adapters/official_units.py).

`plan_reorganisation` compares the registry with the official data and works out, in memory, every event a
reorganisation needs: each old ward that the official conversion table knows is ended on the effective day (merged
into its one successor or divided among several), the successors keng lacks are established under their province,
a district all of whose wards ended is dissolved, residential groups and endpoints of an ended ward move to a
successor (an explicit assignment, else the successor whose centre is nearest their coordinates, else the default
successor), staff scopes and integration jurisdictions are carried over, and units whose official name changed are
renamed. Every command is run on the aggregates before anything is saved, so a plan that would break a rule fails
whole, naming every problem; planning saves nothing. `apply_reorganisation` saves the plan in one transaction. A
second plan after it is empty: a ward that already ended is not ended again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import structlog
from eventsourcing.domain import Aggregate

from keng.adapters.official_units import OfficialData, Succession, SuccessorPart
from keng.adapters.store.app import Keng
from keng.domain.access import Integration, integration_events
from keng.domain.area import Area, check_effective, day_start
from keng.domain.area_registry import AreaRegistry, AreaView
from keng.domain.cap import Point
from keng.domain.endpoint import Endpoint
from keng.domain.errors import DomainError, InvalidValue
from keng.domain.geo import distance_km
from keng.domain.ids import area_id
from keng.domain.programme import VIETNAM_TZ
from keng.domain.staff import Staff
from keng.services.access import SYSTEM, require_admin

log = structlog.get_logger(__name__)

DISTRICT_STAFF = ("province", "wards")
_TYPE_PREFIXES = ("phường ", "xã ", "thị trấn ", "thành phố ", "tỉnh ", "quận ", "huyện ", "thị xã ", "đặc khu ")
T = TypeVar("T", bound=Aggregate)


# -- the report -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewUnit:
    """A unit the reorganisation establishes (or, for a province keng lacked, registers)."""

    code: str
    name: str
    level: str
    parent: str | None
    predecessors: tuple[str, ...]


@dataclass(frozen=True)
class RenamedUnit:
    code: str
    level: str
    before: str
    after: str


@dataclass(frozen=True)
class Successor:
    code: str
    name: str
    default: bool


@dataclass(frozen=True)
class EndedUnit:
    """A unit that ends: merged (one successor), divided (several) or dissolved (a district, into the wards that
    took its wards)."""

    code: str
    name: str
    level: str
    how: str
    successors: tuple[Successor, ...]


@dataclass(frozen=True)
class Move:
    """A residential group or an endpoint of an ended unit going to a successor; `how`: merged (the one successor),
    assigned (an explicit assignment), coordinates (the nearest successor centre), default (the default successor),
    group (an endpoint following its residential group). A move is recorded even when the codes read the same (a
    successor that took the old ward's code names a new unit)."""

    code: str
    from_code: str
    from_name: str
    to_code: str
    to_name: str
    how: str
    group: str | None = None


@dataclass(frozen=True)
class ScopeChange:
    handle: str
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass(frozen=True)
class JurisdictionChange:
    integration: str
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass
class ReorgPlan:
    """What a reorganisation would record: the aggregates to save (new and changed, their events pending) and the
    report of every change. Nothing in it is saved until `apply_reorganisation`."""

    effective: str
    source: str
    by: str
    today: str
    aggregates: list[Aggregate] = field(default_factory=list)
    new: list[NewUnit] = field(default_factory=list)
    renamed: list[RenamedUnit] = field(default_factory=list)
    merged: list[EndedUnit] = field(default_factory=list)
    divided: list[EndedUnit] = field(default_factory=list)
    dissolved: list[EndedUnit] = field(default_factory=list)
    groups: list[Move] = field(default_factory=list)
    endpoints: list[Move] = field(default_factory=list)
    scopes: list[ScopeChange] = field(default_factory=list)
    jurisdictions: list[JurisdictionChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: int = 0  # the events the plan would record
    applied: bool = False

    @property
    def empty(self) -> bool:
        """True when there is nothing to record."""
        return self.events == 0

    @property
    def touched(self) -> set[str]:
        """Every area code the plan changes or names: units established, renamed or ended (with their successors),
        the wards groups and endpoints leave and join, and the scopes and jurisdictions before and after."""
        codes: set[str] = set()
        for n in self.new:
            codes.update((n.code, *n.predecessors, *((n.parent,) if n.parent else ())))
        codes.update(r.code for r in self.renamed)
        for e in (*self.merged, *self.divided, *self.dissolved):
            codes.update((e.code, *(s.code for s in e.successors)))
        for m in (*self.groups, *self.endpoints):
            codes.update((m.from_code, m.to_code))
        for s in self.scopes:
            codes.update((*s.before, *s.after))
        for j in self.jurisdictions:
            codes.update((*j.before, *j.after))
        return codes

    @property
    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "renamed": len(self.renamed),
            "merged": len(self.merged),
            "divided": len(self.divided),
            "dissolved": len(self.dissolved),
            "groups_moved": len(self.groups),
            "endpoints_moved": len(self.endpoints),
            "scopes_changed": len(self.scopes),
            "jurisdictions_changed": len(self.jurisdictions),
            "events": self.events,
        }

    def as_json(self) -> dict[str, Any]:
        """The report as an orjson-ready dict."""

        def move(m: Move) -> dict[str, Any]:
            d = asdict(m)
            d["from"], d["to"] = d.pop("from_code"), d.pop("to_code")
            return d

        return {
            "effective": self.effective,
            "source": self.source,
            "by": self.by,
            "today": self.today,
            "empty": self.empty,
            "counts": self.counts,
            "new": [asdict(u) for u in self.new],
            "renamed": [asdict(u) for u in self.renamed],
            "merged": [asdict(u) for u in self.merged],
            "divided": [asdict(u) for u in self.divided],
            "dissolved": [asdict(u) for u in self.dissolved],
            "groups": [move(m) for m in self.groups],
            "endpoints": [move(m) for m in self.endpoints],
            "scopes": [asdict(s) for s in self.scopes],
            "jurisdictions": [asdict(j) for j in self.jurisdictions],
            "notes": list(self.notes),
        }

    def as_text(self) -> str:
        """A readable preview: one line per change, grouped, then a summary line."""
        lines = [
            f"Sắp xếp đơn vị hành chính có hiệu lực từ {self.effective} (reorganisation effective {self.effective}); "
            f"nguồn (source): {self.source}"
        ]

        def section(title: str, items: Iterable[str]) -> None:
            rows = list(items)
            if rows:
                lines.append(f"{title} ({len(rows)}):")
                lines.extend(f"  {r}" for r in rows)

        def successors(u: EndedUnit) -> str:
            return ", ".join(f"{s.code} {s.name}" + (" (default)" if s.default and len(u.successors) > 1 else "")
                             for s in u.successors) or "—"  # fmt: skip

        section(
            "Đơn vị mới (new units)",
            (
                f"+ {u.code} {u.name} [{u.level}"
                + (f", thuộc {u.parent}" if u.parent else "")
                + "]"
                + (f" từ (from) {', '.join(u.predecessors)}" if u.predecessors else "")
                for u in self.new
            ),
        )
        section("Đổi tên (renamed)", (f"~ {u.code} {u.before} -> {u.after}" for u in self.renamed))
        section("Sáp nhập (merged)", (f"- {u.code} {u.name} -> {successors(u)}" for u in self.merged))
        section("Chia tách (divided)", (f"- {u.code} {u.name} -> {successors(u)}" for u in self.divided))
        section("Giải thể (dissolved)", (f"- {u.code} {u.name} -> {successors(u)}" for u in self.dissolved))

        def moved(m: Move) -> str:
            same = ", same code" if m.from_code == m.to_code else ""
            group = f", tổ {m.group}" if m.group else ""
            return f"{m.code}: {m.from_code} {m.from_name} -> {m.to_code} {m.to_name}{group} ({m.how}{same})"

        section("Tổ dân phố chuyển (residential groups moved)", (moved(m) for m in self.groups))
        section("Thiết bị chuyển (endpoints moved)", (moved(m) for m in self.endpoints))

        def codes(c: tuple[str, ...], wide: str) -> str:
            return ", ".join(c) if c else wide

        section(
            "Phạm vi cán bộ (staff scopes)",
            (f"{s.handle}: {codes(s.before, 'toàn địa bàn')} -> {codes(s.after, 'toàn địa bàn')}" for s in self.scopes),
        )
        section(
            "Địa bàn bên tích hợp (integration jurisdictions)",
            (f"{j.integration}: {', '.join(j.before)} -> {', '.join(j.after)}" for j in self.jurisdictions),
        )
        section("Ghi chú (notes)", self.notes)
        c = self.counts
        if self.empty:
            lines.append("Không có thay đổi (nothing to do): no unit in the registry differs from the official data")
        else:
            lines.append(
                f"Tổng (summary): {c['new']} new, {c['renamed']} renamed, {c['merged']} merged, {c['divided']} "
                f"divided, {c['dissolved']} dissolved, {c['groups_moved']} groups and {c['endpoints_moved']} "
                f"endpoints moved, {c['scopes_changed']} staff scopes and {c['jurisdictions_changed']} "
                f"jurisdictions carried over; {c['events']} events"
            )
        return "\n".join(lines)


# -- planning -------------------------------------------------------------------------------------------------------


def _event_classes(kind: type[Aggregate]) -> list[type]:
    """Every event class of an aggregate type (for a topic-filtered fold of that type alone)."""
    bases = (Aggregate.Event, Aggregate.Created, kind.Event, kind.Created)
    return [v for v in vars(kind).values() if isinstance(v, type) and issubclass(v, Aggregate.Event) and v not in bases]


def _all(app: Keng, kind: type[T]) -> list[T]:
    return [a for a in app.aggregates_of(*_event_classes(kind)).values() if isinstance(a, kind)]


def _plain_name(name: str) -> str:
    text = " ".join(unicodedata.normalize("NFC", name).split()).casefold()
    for prefix in _TYPE_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


@dataclass(frozen=True)
class _Target:
    """Where a part of an ended unit may go: a successor's code, name and centre."""

    code: str
    name: str
    lat: float | None
    lon: float | None
    default: bool


def _choose(
    candidates: list[_Target], *, keys: Iterable[str], lat: float | None, lon: float | None,
    assignments: Mapping[str, str], used: set[str],
) -> tuple[_Target, str]:  # fmt: skip
    """The successor for a group or endpoint: an explicit assignment (by any of `keys`), else the nearest centre to
    its coordinates, else the default; and how it was chosen."""
    by_code = {t.code: t for t in candidates}
    for key in keys:
        if key in assignments:
            used.add(key)
            chosen = by_code.get(assignments[key])
            if chosen is None:
                raise InvalidValue(
                    f"{key} is assigned to {assignments[key]}, which is not one of its successors "
                    f"({', '.join(sorted(by_code))})"
                )
            return chosen, "assigned"
    if len(candidates) == 1:
        return candidates[0], "merged"
    located = [t for t in candidates if t.lat is not None and t.lon is not None]
    if lat is not None and lon is not None and located:
        here = Point(lat, lon)
        nearest = min(located, key=lambda t: (distance_km(here, Point(t.lat, t.lon)), t.code))  # type: ignore[arg-type]
        return nearest, "coordinates"
    defaults = [t for t in candidates if t.default] or candidates
    return defaults[0], "default"


class _Planner:
    """One reorganisation worked out on in-memory aggregates; problems are collected, not raised one by one."""

    def __init__(
        self,
        app: Keng,
        official: OfficialData,
        *,
        by: str,
        assignments: Mapping[str, str],
        district_staff: str,
        today: date,
    ) -> None:
        self.app = app
        self.official = official
        self.by = by
        self.assignments = dict(assignments)
        self.district_staff = district_staff
        self.today = today
        self.day = check_effective(official.effective)
        self.on = day_start(self.day)
        self.eve = day_start((official.effective - timedelta(days=1)).isoformat())
        self.basis = f"official list: {official.source}"[:300]
        self.areas = app.areas()
        self.by_id = {a.id: a for a in self.areas}
        self.registry = AreaRegistry(self.areas)
        self.then = self.registry.at(self.eve)
        self.plan = ReorgPlan(effective=self.day, source=official.source, by=by, today=today.isoformat())
        self.errors: list[str] = []
        self.changed: dict[UUID, Aggregate] = {}
        self.used_assignments: set[str] = set()
        self.ending: dict[str, Succession] = {}  # old ward code -> what became of it
        self.successors_of: dict[str, list[_Target]] = {}  # ended unit's code -> where its parts may go
        self.ward_at_on: dict[str, Area] = {}  # successor code -> the unit holding it on the effective day
        self.dissolved: dict[str, list[str]] = {}  # district code -> successor ward codes
        self.province_of: dict[str, str] = {}  # successor ward code -> province code

    def touch(self, aggregate: Aggregate) -> None:
        self.changed[aggregate.id] = aggregate

    def run(self) -> ReorgPlan:
        self.end_wards()
        self.establish_successors()
        self.dissolve_districts()
        self.move_groups_and_endpoints()
        self.carry_staff_over()
        self.carry_jurisdictions_over()
        self.rename()
        unknown = sorted(set(self.assignments) - self.used_assignments)
        if unknown:
            self.errors.append(
                "assignments name no residential group or endpoint of an ended unit: " + ", ".join(unknown)
            )
        if self.errors:
            shown = self.errors[:50]
            more = f"\n  ... and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
            raise InvalidValue(
                f"the reorganisation of {self.day} cannot be recorded ({len(self.errors)} problem(s)); nothing was "
                "recorded:\n  " + "\n  ".join(shown) + more
            )
        aggregates = [a for a in self.changed.values() if a.pending_events]
        self.plan.aggregates = aggregates
        self.plan.events = sum(len(a.pending_events) for a in aggregates)
        return self.plan

    # -- wards and their successors ---------------------------------------------------------------------------------

    def end_wards(self) -> None:
        for view in self.then.of_level("ward"):
            succession = self.official.succession(view.code)
            if succession is None:
                continue
            unit = self.registry.unit_at(view.code, self.eve)
            if unit is None or unit.ending is not None or unit.period_at(self.on) is None:
                continue  # ended already (an earlier sync), or changed on the day by some other record
            parent = self.then.get(view.parent) if view.parent else None
            if parent is not None and parent.level == "city":
                self.plan.notes.append(
                    f"{view.code} {view.name} is already under its province {parent.code}; left as it is"
                )
                continue
            if _plain_name(view.name) != _plain_name(succession.old.name):
                self.plan.notes.append(
                    f"{view.code} is {view.name!r} in keng and {succession.old.name!r} in the official data; "
                    "matched by its code"
                )
            parts = succession.successors
            how = "divided" if succession.divided else "merged"
            try:
                unit.end(
                    how,
                    successors=[p.code for p in parts],
                    effective=self.day,
                    basis=self.basis,
                    note="; ".join(f"{p.code} {self._official_name(p)}" for p in parts),
                    by=self.by,
                )
            except DomainError as e:
                self.errors.append(f"ending {view.code}: {e}")
                continue
            self.touch(unit)
            self.ending[view.code] = succession
            self.successors_of[view.code] = [_Target(p.code, self._official_name(p), p.lat, p.lon, p.default)
                                             for p in parts]  # fmt: skip
            entry = EndedUnit(view.code, view.name, view.level, how,
                              tuple(Successor(p.code, self._official_name(p), p.default) for p in parts))  # fmt: skip
            (self.plan.divided if succession.divided else self.plan.merged).append(entry)

    def _official_name(self, part: SuccessorPart) -> str:
        unit = self.official.unit(part.code)
        return unit.name if unit is not None else part.name

    def establish_successors(self) -> None:
        predecessors: dict[str, list[str]] = {}
        parts: dict[str, SuccessorPart] = {}
        for old, succession in self.ending.items():
            for p in succession.successors:
                predecessors.setdefault(p.code, []).append(old)
                parts.setdefault(p.code, p)
        registry = AreaRegistry([*self.areas, *self._new_areas()])  # with the endings just planned
        for code in sorted(parts):
            part = parts[code]
            official = self.official.unit(code)
            if official is not None and official.parent is not None:
                self.province_of[code] = official.parent
            holder = registry.unit_at(code, self.on)
            if holder is not None:
                period = holder.period_at(self.on)
                if period is None or period.level != "ward":
                    self.errors.append(f"{code} is a {period.level if period else 'unit'} in keng on {self.day}, "
                                       "not the ward the official list names")  # fmt: skip
                    continue
                self.ward_at_on[code] = holder
                continue
            blocking = registry.holder_free(code, self.day)
            if blocking is not None:
                self.errors.append(
                    f"{code} ({self._official_name(part)}) cannot be established on {self.day}: "
                    f"{blocking.code} ({blocking.name}, from {blocking.valid_from or 'always'}) holds that code"
                )
                continue
            if official is None or official.parent is None:
                self.errors.append(f"{code} is a successor in the conversion data but not in the official list")
                continue
            parent = self._province(official.parent, registry)
            if parent is None:
                continue
            try:
                unit = Area.establish(
                    code=code,
                    name=official.name,
                    level="ward",
                    parent=parent,
                    effective=self.day,
                    predecessors=predecessors[code],
                    lat=part.lat,
                    lon=part.lon,
                    basis=self.basis,
                    by=self.by,
                )
            except DomainError as e:
                self.errors.append(f"establishing {code}: {e}")
                continue
            self.touch(unit)
            self.ward_at_on[code] = unit
            self.plan.new.append(
                NewUnit(code, official.name, "ward", official.parent, tuple(sorted(predecessors[code])))
            )

    def _new_areas(self) -> list[Area]:
        return [a for a in self.changed.values() if isinstance(a, Area) and a.id not in self.by_id]

    def _province(self, code: str, registry: AreaRegistry) -> Area | None:
        """The province node in force on the effective day, registered now when keng has none."""
        for a in self._new_areas():
            if a.code == code and a.level == "city":
                return a
        holder = registry.unit_at(code, self.on)
        if holder is not None:
            period = holder.period_at(self.on)
            if period is None or period.level != "city":
                self.errors.append(f"{code} is a {period.level if period else 'unit'} in keng, not a province")
                return None
            return holder
        official = self.official.province(code)
        if official is None:
            self.errors.append(f"province {code} is not in the official list")
            return None
        if self.app.exists(area_id(code)) or registry.holder_free(code, self.day) is not None:
            self.errors.append(f"province {code} ({official.name}) cannot be registered: its code is taken")
            return None
        try:
            unit = Area.register(code=code, name=official.name, level="city", parent=None, lat=official.lat,
                                 lon=official.lon, by=self.by)  # fmt: skip
        except DomainError as e:
            self.errors.append(f"registering province {code}: {e}")
            return None
        self.touch(unit)
        self.plan.new.append(NewUnit(code, official.name, "city", None, ()))
        return unit

    def dissolve_districts(self) -> None:
        for district in self.then.of_level("district"):
            unit = self.registry.unit_at(district.code, self.eve)
            if unit is None or unit.ending is not None or unit.period_at(self.on) is None:
                continue
            wards = [w for w in self.then.children(district.code) if w.level == "ward"]
            if not wards:
                continue
            remaining = [w.code for w in wards if self._still_in_force(w)]
            if remaining:
                if len(remaining) < len(wards):
                    self.plan.notes.append(
                        f"district {district.code} {district.name} keeps {', '.join(remaining)}, which the official "
                        "data does not end; it is not dissolved"
                    )
                continue
            successors = sorted({c for w in wards for c in self._ending_successors(w)})
            try:
                unit.end("dissolved", successors=successors, effective=self.day, basis=self.basis,
                         note=f"its wards ended on {self.day}", by=self.by)  # fmt: skip
            except DomainError as e:
                self.errors.append(f"dissolving {district.code}: {e}")
                continue
            self.touch(unit)
            self.dissolved[district.code] = successors
            self.successors_of[district.code] = self._district_targets(district, successors)
            named = tuple(Successor(c, self._name_on(c), False) for c in successors)
            self.plan.dissolved.append(EndedUnit(district.code, district.name, "district", "dissolved", named))

    def _still_in_force(self, ward: AreaView) -> bool:
        unit = self.by_id.get(ward.id)
        return unit is not None and unit.period_at(self.on) is not None

    def _ending_successors(self, ward: AreaView) -> tuple[str, ...]:
        unit = self.by_id.get(ward.id)
        return unit.ending.successors if unit is not None and unit.ending is not None else ()

    def _name_on(self, code: str) -> str:
        unit = self.ward_at_on.get(code)
        period = unit.period_at(self.on) if unit is not None else None
        if period is not None:
            return period.name
        official = self.official.unit(code)
        return official.name if official else code

    def _district_targets(self, district: AreaView, successors: list[str]) -> list[_Target]:
        """Where an endpoint straight in a dissolved district may go: the wards that replaced it; by default the one
        nearest the district's centre."""
        targets = []
        for code in successors:
            official = self.official.unit(code)
            unit = self.ward_at_on.get(code)
            lat = official.lat if official and official.lat is not None else (unit.lat if unit else None)
            lon = official.lon if official and official.lon is not None else (unit.lon if unit else None)
            targets.append(_Target(code, self._name_on(code), lat, lon, False))
        legacy = self.official.legacy(district.code)
        lat = district.lat if district.lat is not None else (legacy.lat if legacy else None)
        lon = district.lon if district.lon is not None else (legacy.lon if legacy else None)
        if lat is not None and lon is not None:
            seat, _ = _choose(targets, keys=(), lat=lat, lon=lon, assignments={}, used=set())
            targets = [_Target(t.code, t.name, t.lat, t.lon, t.code == seat.code) for t in targets]
        return targets

    # -- groups and endpoints ---------------------------------------------------------------------------------------

    def move_groups_and_endpoints(self) -> None:
        group_to: dict[str, _Target] = {}  # group code -> the successor it went to
        for old in sorted(self.ending):
            targets = self.successors_of[old]
            old_name = self.then.nodes[old].name
            for group in self.then.children(old):
                unit = self.by_id.get(group.id)
                if group.level != "group" or unit is None:
                    continue
                try:
                    target, how = _choose(targets, keys=(group.code,), lat=group.lat, lon=group.lon,
                                          assignments=self.assignments, used=self.used_assignments)  # fmt: skip
                except DomainError as e:
                    self.errors.append(f"group {group.code}: {e}")
                    continue
                ward = self.ward_at_on.get(target.code)
                if ward is None:
                    continue  # its successor could not be established: already reported
                try:
                    unit.move(ward, level="group", effective=self.day, basis=self.basis, by=self.by)
                except DomainError as e:
                    self.errors.append(f"moving group {group.code}: {e}")
                    continue
                self.touch(unit)
                group_to[group.code] = target
                self.plan.groups.append(Move(group.code, old, old_name, target.code, target.name, how))
        for endpoint in sorted(_all(self.app, Endpoint), key=lambda e: e.code):
            try:
                self._move_endpoint(endpoint, group_to)
            except DomainError as e:
                self.errors.append(f"endpoint {endpoint.code}: {e}")

    def _move_endpoint(self, endpoint: Endpoint, group_to: Mapping[str, _Target]) -> None:
        old = endpoint.ward
        targets = self.successors_of.get(old, [])
        if not targets:
            return  # not in a unit that ends here
        old_name = self.then.nodes[old].name if old in self.then else old
        group = endpoint.group if endpoint.group in group_to else None
        if group is not None:
            target, how = group_to[group], "group"
            if endpoint.code in self.assignments:
                target, how = _choose(targets, keys=(endpoint.code,), lat=None, lon=None,
                                      assignments=self.assignments, used=self.used_assignments)  # fmt: skip
                if target.code != group_to[group].code:
                    group = None  # it leaves its residential group, which goes elsewhere
        else:
            target, how = _choose(targets, keys=(endpoint.code,), lat=endpoint.lat, lon=endpoint.lon,
                                  assignments=self.assignments, used=self.used_assignments)  # fmt: skip
            if how == "merged" and old in self.dissolved:
                how = "default"
        endpoint.reassign(ward=target.code, group=group, effective=self.day, how=how, by=self.by)
        self.touch(endpoint)
        self.plan.endpoints.append(Move(endpoint.code, old, old_name, target.code, target.name, how, group))

    # -- scopes -----------------------------------------------------------------------------------------------------

    def _replacing(self, code: str, *, districts: bool) -> list[str] | None:
        """The codes replacing an ended ward (its successors) or, with `districts`, a dissolved district (its
        province, or its successor wards under `district_staff="wards"`); None when `code` does not end here."""
        if code in self.ending:
            return [t.code for t in self.successors_of[code]]
        if districts and code in self.dissolved:
            if self.district_staff == "wards":
                return list(self.dissolved[code])
            return sorted({self.province_of[c] for c in self.dissolved[code] if c in self.province_of})
        return None

    def _carried(self, before: list[str], *, districts: bool) -> tuple[list[str], list[str]]:
        after: list[str] = []
        changes: list[str] = []
        for code in before:
            replaced = self._replacing(code, districts=districts)
            if replaced is None:
                after.append(code)
            else:
                after.extend(replaced)
                changes.append(f"{code} -> {', '.join(replaced)}")
        return after, changes

    def carry_staff_over(self) -> None:
        district_wards = sorted({c for codes in self.dissolved.values() for c in codes})
        for member in sorted(_all(self.app, Staff), key=lambda s: s.handle):
            before = list(member.wards)
            if before:
                after, changes = self._carried(before, districts=False)
                if not changes:
                    continue
                reason = f"reorganisation of {self.day}: " + "; ".join(changes)
            elif self.district_staff == "wards" and district_wards:
                after = district_wards
                reason = (f"reorganisation of {self.day}: district {', '.join(sorted(self.dissolved))} dissolved; "
                          "a district-wide scope becomes its successor wards")  # fmt: skip
            else:
                continue
            try:
                changed = member.carry_scope_over(after, effective=self.day, reason=reason, by=self.by)
            except DomainError as e:
                self.errors.append(f"staff {member.handle}: {e}")
                continue
            if changed:
                self.touch(member)
                self.plan.scopes.append(ScopeChange(member.handle, tuple(before), tuple(member.wards)))

    def carry_jurisdictions_over(self) -> None:
        found = self.app.aggregates_of(*integration_events()).values()
        for integration in sorted((i for i in found if isinstance(i, Integration)), key=lambda i: i.name):
            before = list(integration.jurisdiction)
            after, changes = self._carried(before, districts=True)
            if not changes:
                continue
            reason = f"reorganisation of {self.day}: " + "; ".join(changes)
            try:
                changed = integration.carry_jurisdiction_over(after, effective=self.day, reason=reason, by=self.by)
            except DomainError as e:
                self.errors.append(f"integration {integration.name}: {e}")
                continue
            if changed:
                self.touch(integration)
                self.plan.jurisdictions.append(
                    JurisdictionChange(integration.name, tuple(before), tuple(integration.jurisdiction))
                )

    # -- names ------------------------------------------------------------------------------------------------------

    def rename(self) -> None:
        """Units in force today (not ended here) whose code the official list gives another name."""
        today = self.today.isoformat()
        if today < self.day:
            return  # before the effective day the codes still have their old meanings
        now = AreaRegistry([*self.areas, *self._new_areas()]).at(day_start(today))
        new_codes = {u.code for u in self.plan.new}
        for view in now:
            if view.level not in ("ward", "city") or view.code in new_codes:
                continue
            official = self.official.unit(view.code)
            if official is None or official.level != view.level or official.name == view.name:
                continue
            parent = now.get(view.parent) if view.parent else None
            if view.level == "ward" and (parent is None or parent.level != "city"):
                continue  # a ward of the old structure (under a district): its code may mean another unit now
            unit = self.by_id.get(view.id)
            if unit is None:
                continue
            if unit.valid_from is not None and unit.valid_from >= today:
                self.plan.notes.append(
                    f"{view.code} {view.name} is {official.name!r} in the official list; established on "
                    f"{unit.valid_from}, it can be renamed from the next day"
                )
                continue
            try:
                unit.rename(official.name, effective=today, basis=self.basis, by=self.by)
            except DomainError as e:
                self.errors.append(f"renaming {view.code}: {e}")
                continue
            self.touch(unit)
            self.plan.renamed.append(RenamedUnit(view.code, view.level, view.name, official.name))


def plan_reorganisation(
    app: Keng,
    official: OfficialData,
    *,
    by: str,
    assignments: Mapping[str, str] | None = None,
    district_staff: str = "province",
    today: date | None = None,
) -> ReorgPlan:
    """Work out (and validate, in memory) the reorganisation that brings keng's registry to the official data;
    nothing is saved. `assignments` maps a residential group or endpoint code to the successor it goes to;
    `district_staff`: a district-wide member stays wide (`province`) or gets the wards that replaced the district
    (`wards`), and an integration's district code becomes its province or those wards alike."""
    if by != SYSTEM:
        require_admin(app, by)
    if district_staff not in DISTRICT_STAFF:
        raise InvalidValue(f"district_staff must be one of {', '.join(DISTRICT_STAFF)}, not {district_staff!r}")
    day = today or app.clock().astimezone(VIETNAM_TZ).date()
    plan = _Planner(app, official, by=by, assignments=assignments or {}, district_staff=district_staff,
                    today=day).run()  # fmt: skip
    _require_scope(app, plan)
    return plan


def _require_scope(app: Keng, plan: ReorgPlan) -> None:
    """An admin records a reorganisation only over units their scope covers, before and after (a ward-scoped admin
    cannot end the district, nor move another ward's groups); `system` (the sample) acts everywhere."""
    if plan.by != SYSTEM:
        require_admin(app, plan.by)
        app.staff(plan.by).require_scope(sorted(plan.touched), "record a reorganisation of areas")


def apply_reorganisation(app: Keng, plan: ReorgPlan) -> ReorgPlan:
    """Record a plan in one transaction (an admin's or `system`'s); nothing is recorded for an empty plan."""
    _require_scope(app, plan)
    if plan.applied:
        raise InvalidValue("this reorganisation plan was already recorded")
    if not plan.empty:
        app.save_changes(*plan.aggregates)
        plan.applied = True
        log.info("areas.reorganised", actor=plan.by, effective=plan.effective, source=plan.source, **plan.counts)
    return plan


# -- reading --------------------------------------------------------------------------------------------------------


def view_row(view: AreaView) -> dict[str, Any]:
    """One unit as the CLI shows it."""
    return {
        "code": view.code,
        "name": view.name,
        "level": view.level,
        "parent": view.parent,
        "valid_from": view.valid_from,
        "valid_to": view.valid_to,
        "ending": view.ending,
        "successors": list(view.successors),
    }


def area_view_rows(app: Keng, at: datetime | None = None, *, level: str | None = None) -> list[dict[str, Any]]:
    """The structure in force at `at` (default: now), by code."""
    structure = app.area_registry().at(at or app.clock())
    return [view_row(v) for v in structure if level is None or v.level == level]


def area_at(app: Keng, code: str, at: datetime | None = None) -> dict[str, Any]:
    """The unit holding `code` at `at` (default: now), with its children then; UnknownArea, or AreaEnded naming the
    successors, when no unit held the code then."""
    when = at or app.clock()
    registry = app.area_registry()
    structure = registry.at(when)
    view = structure.get(code)
    if view is None:
        registry.resolve(code, said_at=when, now=when)  # raises the precise error
        raise InvalidValue(f"no unit holds {code!r} at {when.isoformat()}")  # not reached: resolve raised
    return {**view_row(view), "children": [c.code for c in structure.children(code)]}


def area_history(app: Keng, code: str) -> list[dict[str, Any]]:
    """Every unit that ever held `code`, oldest first, each as it was while it held the code."""
    return [view_row(v) for v in app.area_registry().history(code)]
