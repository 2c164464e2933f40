"""District inventory files: areas and endpoints in CSV or JSON, validated row by row before anything is stored.

Format (docs/district-file.md): one record per row with the columns

    record,code,name,parent,lat,lon,kind,technology,installed_on,condition,on,cost_vnd,detail

`record` is `city`, `district`, `ward`, `group` or `endpoint`, or a lifecycle event of an endpoint: `fault`, `repair`,
`convert`, `decommission` or `portal-live`. Areas name their parent's code (a city has none, a district's parent may be
empty; since the 2025 reform a ward's parent is its city/province, docs/areas.md).
Endpoints name the ward or residential group they stand in as `parent`, and give `kind` (ip-speaker, fm-speaker,
eboard, portal), `technology`, `installed_on` (YYYY-MM-DD) and `condition` (good, degraded, broken), and optionally
`capabilities` (`;`-separated: a board's `display=WIDTHxHEIGHT` or `text-only`, domain/display.py). A lifecycle row
names the endpoint by `code` (stored, or registered earlier in the file), the day `on` (YYYY-MM-DD, default today),
`cost_vnd` (whole đồng) and `detail` (the fault, a repair note, the decommissioning reason, the portal's address); a
fault's severity is `condition` (default broken), a conversion's new technology is `technology`.
JSON files hold a list of objects with the same keys. Every error is reported with its line (CSV) or item number
(JSON); when there is any error, nothing is loaded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.domain import Aggregate

from keng.domain.actor import Actor
from keng.domain.area import Area
from keng.domain.endpoint import MAX_COST_VND, Endpoint
from keng.domain.errors import AreaEnded, DomainError, NotAuthorised
from keng.domain.programme import SAMPLE_QUIET, SAMPLE_SLOTS, format_slots
from keng.domain.values import Role, parse_digits
from keng.domain.ward_schedule import WardSchedule

COLUMNS = (
    "record",
    "code",
    "name",
    "parent",
    "lat",
    "lon",
    "kind",
    "technology",
    "installed_on",
    "condition",
    "capabilities",
    "slots",
    "quiet",
    "on",
    "cost_vnd",
    "detail",
)
AREA_RECORDS = ("city", "district", "ward", "group")  # city: a province or centrally-run city
# Lifecycle records: the endpoint action each records, and the columns each takes besides `record` and `code`.
LIFECYCLE_RECORDS = {
    "fault": ("fault", ("on", "cost_vnd", "detail", "condition")),
    "repair": ("repair", ("on", "cost_vnd", "detail")),
    "convert": ("convert", ("on", "cost_vnd", "technology")),
    "decommission": ("decommission", ("on", "cost_vnd", "detail")),
    "portal-live": ("portal-live", ("on", "cost_vnd", "detail")),
}
_LIFECYCLE_ONLY = ("on", "cost_vnd", "detail")
_ENDPOINT_ONLY = ("capabilities",)
MAX_ROWS = 200_000


class DistrictFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, header)."""


@dataclass
class LoadPlan:
    """What a file would create, or why it cannot be loaded."""

    aggregates: list[Aggregate] = field(default_factory=list)  # new ones (with any lifecycle events of theirs)
    changed: list[Endpoint] = field(default_factory=list)  # stored endpoints given lifecycle events
    errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _System:
    """keng itself, loading a file as `system` (an installation's first inventory): an admin over the district."""

    handle: str

    def has_role(self, role: Role) -> bool:
        return role is Role.ADMIN

    def require_role(self, role: Role, action: str) -> None:
        if role is not Role.ADMIN:
            raise NotAuthorised(f"rule {NotAuthorised.rule}: {self.handle} cannot {action}")

    def require_scope(self, scope: list[str], action: str) -> None:
        return None


def read_rows(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Read (location, row) pairs from a .csv or .json file."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DistrictFileError(f"{path}: cannot read: {e.strerror}") from None
    if path.suffix.lower() == ".json":
        return _json_rows(raw, path)
    if path.suffix.lower() == ".csv":
        return _csv_rows(raw, path)
    raise DistrictFileError(f"{path}: unknown format {path.suffix!r}: use .csv or .json")


def _csv_rows(raw: bytes, path: Path) -> list[tuple[str, dict[str, str]]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DistrictFileError(f"{path}: not UTF-8 (byte {e.start})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("record", "code") if c not in (reader.fieldnames or [])]
    if missing:
        raise DistrictFileError(f"{path}: header lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    unknown = [c for c in reader.fieldnames or [] if c not in COLUMNS]
    if unknown:
        raise DistrictFileError(f"{path}: unknown column(s) {', '.join(unknown)}; expected {','.join(COLUMNS)}")
    rows = []
    for row in reader:
        rows.append((f"line {reader.line_num}", {k: (v or "").strip() for k, v in row.items() if k}))
        if len(rows) > MAX_ROWS:
            raise DistrictFileError(f"{path}: more than {MAX_ROWS} rows")
    return rows


def _json_rows(raw: bytes, path: Path) -> list[tuple[str, dict[str, str]]]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise DistrictFileError(f"{path}: malformed JSON: {e}") from None
    if not isinstance(data, list):
        raise DistrictFileError(f"{path}: expected a JSON list of records")
    if len(data) > MAX_ROWS:
        raise DistrictFileError(f"{path}: more than {MAX_ROWS} rows")
    rows = []
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            rows.append((f"item {i}", {"record": "<not an object>"}))
            continue
        rows.append((f"item {i}", {k: "" if v is None else str(v) for k, v in item.items()}))
    return rows


def _float(row: Mapping[str, str], key: str) -> float | None:
    value = row.get(key, "")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise DomainError(f"{key} {value!r} is not a number") from None


def _date(value: str, key: str = "installed_on") -> date | None:
    if not value:
        return None
    try:
        if key == "on" and len(value) != 10:  # fromisoformat also reads 20250101 and week dates: not here
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(f"{key} {value!r} is not a date (YYYY-MM-DD)") from None


def plan_load(
    rows: Iterable[tuple[str, dict[str, str]]],
    *,
    existing_area: Callable[[str], Area | None],
    existing_endpoint: Callable[[str], bool],
    by: str,
    generated: bool = False,
    stored_endpoint: Callable[[str], Endpoint | None] = lambda code: None,
    actor: Actor | None = None,
    today: date | None = None,
) -> LoadPlan:
    """Validate every row and build the aggregates it would create, and the lifecycle events it would record on new
    or stored endpoints (as `actor`, or as keng itself when None, dated up to `today`); collect every error with its
    location."""
    plan = LoadPlan()
    areas: dict[str, Area] = {}
    endpoints: dict[str, Endpoint] = {}
    loaded: dict[str, Endpoint | None] = {}
    recorder: Actor = actor if actor is not None else _System(by)

    def endpoint_of(code: str) -> Endpoint:
        if code in endpoints:
            return endpoints[code]
        if code not in loaded:
            loaded[code] = stored_endpoint(code)
            if loaded[code] is not None:
                plan.changed.append(loaded[code])  # type: ignore[arg-type]
        found = loaded[code]
        if found is None:
            raise DomainError(f"endpoint {code!r} is not registered (nor earlier in this file)")
        return found

    def parent_area(code: str) -> Area | None:
        return areas.get(code) or (existing_area(code) if code else None)

    for where, row in rows:
        record, code = row.get("record", ""), row.get("code", "")
        try:
            unknown = sorted(set(row) - set(COLUMNS))
            if unknown:
                raise DomainError(f"unknown field(s) {', '.join(unknown)}")
            if record in AREA_RECORDS:
                _only(row, [c for c in COLUMNS if c not in _LIFECYCLE_ONLY + _ENDPOINT_ONLY], record)
                agg: Aggregate = _area_row(row, areas, parent_area, by=by, generated=generated)
                if code in areas or _held(code, existing_area):
                    raise DomainError(f"area {code!r} is already registered")
                areas[code] = agg  # type: ignore[assignment]
                if record == "ward" and (row.get("slots") or row.get("quiet")):
                    plan.aggregates.append(agg)
                    agg = _ward_schedule(row, by=by)
            elif record == "endpoint":
                _only(row, [c for c in COLUMNS if c not in _LIFECYCLE_ONLY], record)
                agg = _endpoint_row(row, parent_area, by=by, generated=generated)
                if code in endpoints or existing_endpoint(code):
                    raise DomainError(f"endpoint {code!r} is already registered")
                endpoints[code] = agg
            elif record in LIFECYCLE_RECORDS:
                _lifecycle_row(row, endpoint_of(code), recorder, today)
                plan.counts[record] = plan.counts.get(record, 0) + 1
                continue
            else:
                raise DomainError(
                    f"record {record!r} is not one of city, district, ward, group, endpoint, "
                    f"{', '.join(LIFECYCLE_RECORDS)}"
                )
        except DomainError as e:
            plan.errors.append(f"{where}: {e.message}")
            continue
        plan.aggregates.append(agg)
        plan.counts[record] = plan.counts.get(record, 0) + 1
    return plan


def _held(code: str, existing_area: Callable[[str], Area | None]) -> bool:
    """True when a unit holds `code` now, or held it and has ended (its identity is taken: say so, and what
    replaced it)."""
    try:
        return existing_area(code) is not None
    except AreaEnded as e:
        raise DomainError(f"area {code!r} is already registered, and no longer in force: {e.message}") from None


def _only(row: Mapping[str, str], allowed: Iterable[str], record: str) -> None:
    """Refuse values in columns that a record does not take (naming them)."""
    extra = [k for k, v in row.items() if v and k not in ("record", "code", *allowed)]
    if extra:
        raise DomainError(f"a {record} row does not take {', '.join(extra)}")


def _lifecycle_row(row: Mapping[str, str], endpoint: Endpoint, actor: Actor, today: date | None) -> None:
    record = row["record"]
    action, allowed = LIFECYCLE_RECORDS[record]
    _only(row, allowed, record)
    cost = row.get("cost_vnd", "")
    on = _date(row.get("on", ""), "on") or today or date.today()
    endpoint.record_lifecycle(
        action,
        actor=actor,
        on=on,
        today=today or date.today(),
        cost_vnd=parse_digits(cost, "cost_vnd", lo=0, hi=MAX_COST_VND) if cost else None,
        detail=row.get("technology", "") if action == "convert" else row.get("detail", ""),
        severity=row.get("condition", "") or "broken",
    )


def _area_row(
    row: Mapping[str, str], areas: Mapping[str, Area], parent_area: Callable[[str], Area | None], **kw: Any
) -> Area:
    parent_code = row.get("parent", "")
    parent = parent_area(parent_code) if parent_code else None
    if parent_code and parent is None:
        raise DomainError(f"parent area {parent_code!r} is not registered (nor earlier in this file)")
    if row["record"] == "district" and parent is not None and parent.level != "city":
        raise DomainError(f"a district's parent must be a city, not {parent.level} {parent.code}")
    return Area.register(
        code=row.get("code", ""),
        name=row.get("name", ""),
        level=row["record"],
        parent=parent,
        lat=_float(row, "lat"),
        lon=_float(row, "lon"),
        **kw,
    )


def _ward_schedule(row: Mapping[str, str], *, by: str) -> WardSchedule:
    """A ward's own slots and quiet hours (`;`-separated in a file; either left empty keeps the sample's)."""
    slots = row.get("slots", "").replace(";", ",") or ",".join(format_slots(SAMPLE_SLOTS))
    quiet = row.get("quiet", "").replace(";", ",") or ",".join(format_slots(SAMPLE_QUIET))
    return WardSchedule.loaded(ward=row.get("code", ""), slots=slots, quiet=quiet, by=by)


def _endpoint_row(row: Mapping[str, str], parent_area: Callable[[str], Area | None], **kw: Any) -> Endpoint:
    parent_code = row.get("parent", "")
    parent = parent_area(parent_code)
    if parent is None:
        raise DomainError(f"endpoint's area {parent_code!r} is not registered (nor earlier in this file)")
    if parent.level == "group":
        ward, group = parent.parent or "", parent.code
    elif parent.level in ("ward", "district", "city"):
        ward, group = parent.code, None
    else:
        raise DomainError(f"an endpoint stands in a ward, group, district or city, not a {parent.level}")
    return Endpoint.register(
        code=row.get("code", ""),
        kind=row.get("kind", ""),
        ward=ward,
        group=group,
        technology=row.get("technology", "") or "unspecified",
        installed_on=_date(row.get("installed_on", "")),
        condition=row.get("condition", "") or "good",
        lat=_float(row, "lat"),
        lon=_float(row, "lon"),
        capabilities=[c for c in row.get("capabilities", "").split(";") if c.strip()],
        **kw,
    )


def dump_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Write rows in the district file's CSV format (used to export the sample district)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in COLUMNS})
    return out.getvalue()
