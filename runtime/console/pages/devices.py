"""`GET /console/devices`: device health per ward and residential group (counts, share online, on a map and in
tables), which devices were offline during a window (`?start=&end=`, as CSV with `&format=csv`); and
`GET /console/devices/{code}`: one device and its history.

What a person sees is what services.inventory.readable_endpoints gives them (the API's rule), over the page's
catalogue (live, or as of `?asof=`); the time of each device's last change, its history and the offline windows come
from the read models (projections/queries.py), live or replayed to the same instant, so an as-of page is the past.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from aiohttp import web

from keng.adapters.readstore.store import ReadStore
from keng.domain.area_registry import AreaView
from keng.domain.endpoint import Endpoint
from keng.domain.ids import endpoint_id
from keng.domain.values import EndpointKind
from keng.projections import queries
from keng.runtime.console import data, devicemap, labels
from keng.runtime.console.render import render
from keng.runtime.console.session import person
from keng.runtime.http.services import SERVICES
from keng.services.inventory import readable_endpoints

STATUSES = ("online", "offline", "fault", "decommissioned", "unknown")
STATUS_VI = {**labels.DEVICE_STATUS, "fault": "Có lỗi", "unknown": "Chưa có tín hiệu"}
KINDS = tuple(k.value for k in EndpointKind)
EVENTS_VI = {
    "Endpoint.Registered": "Đăng ký vào danh mục",
    "Endpoint.CameOnline": "Có kết nối (trực tuyến)",
    "Endpoint.WentOffline": "Mất kết nối",
    "Endpoint.FaultReported": "Báo lỗi",
    "Endpoint.Repaired": "Đã sửa chữa",
    "Endpoint.ConvertedToIP": "Chuyển đổi sang loa IP",
    "Endpoint.Decommissioned": "Thanh lý",
    "Endpoint.Reassigned": "Chuyển sang địa bàn mới (sắp xếp đơn vị hành chính)",
}
REASONS_VI = {"last-will": "thiết bị ngắt kết nối đột ngột (last will)", "powered-off": "thiết bị tắt nguồn"}
CSV_HEADER = ("Mã thiết bị", "Loại thiết bị", "Mã phường", "Tên phường", "Tổ dân phố", "Trạng thái hiện tại",
              "Thời gian mất kết nối trong khoảng (giây)", "Thời gian mất kết nối", "Từ", "Đến")  # fmt: skip
YEARS = (2000, 2200)  # a window outside these years is a typing mistake, not a question


def status_of(e: Endpoint) -> str:
    """One status per device: decommissioned, else a fault (degraded or broken), else its last connection state."""
    if e.decommissioned:
        return "decommissioned"
    if e.condition != "good":
        return "fault"
    if e.online is True:
        return "online"
    if e.online is False:
        return "offline"
    return "unknown"


def query(request: web.Request, allowed: Iterable[str]) -> dict[str, str]:
    """The page's query parameters: known names only, each at most once (400 otherwise)."""
    names = {*allowed, "asof"}
    unknown = sorted({k for k in request.query if k not in names})
    if unknown:
        raise web.HTTPBadRequest(text=f"Tham số không hợp lệ: {', '.join(unknown)[:200]}.")
    repeated = sorted({k for k in request.query if len(request.query.getall(k)) > 1})
    if repeated:
        raise web.HTTPBadRequest(text=f"Tham số chỉ được có một lần: {', '.join(repeated)[:200]}.")
    return {k: v.strip() for k, v in request.query.items() if k != "asof"}


def choice(params: Mapping[str, str], name: str, choices: Iterable[str], what: str) -> str | None:
    value = params.get(name, "")
    if value == "":
        return None
    if value not in set(choices):
        raise web.HTTPBadRequest(text=f"{what} không hợp lệ: {value[:60]!r}.")
    return value


def instant(value: str, what: str, tz: tzinfo) -> datetime:
    """A datetime-local field (read in the display zone) or an ISO time with an offset; 400 for anything else."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f"'{what}' không phải là một thời điểm hợp lệ (ví dụ 2026-11-30T08:00): {value[:40]!r}."
        ) from None
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise web.HTTPBadRequest(text=f"'{what}' phải nằm trong các năm {YEARS[0]}–{YEARS[1]}.")
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def duration_vi(seconds: float) -> str:
    """A duration in Vietnamese: '2 ngày 3 giờ 5 phút', '45 giây'."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} ngày"] if days else []
    parts += [f"{hours} giờ"] if hours else []
    parts += [f"{minutes} phút"] if minutes else []
    if not parts or (secs and not days and not hours):
        parts.append(f"{secs} giây")
    return " ".join(parts)


@dataclass(frozen=True)
class Window:
    """An "offline during" question: [start, end) in the display zone."""

    start: datetime
    end: datetime

    @property
    def start_utc(self) -> str:
        return self.start.astimezone(UTC).isoformat()

    @property
    def end_utc(self) -> str:
        return self.end.astimezone(UTC).isoformat()


def window_of(params: Mapping[str, str], tz: tzinfo) -> Window | None:
    start_raw, end_raw = params.get("start", ""), params.get("end", "")
    if not start_raw and not end_raw:
        if params.get("format"):
            raise web.HTTPBadRequest(text="Tải CSV cần khoảng thời gian: hãy nhập cả 'Từ' và 'Đến'.")
        return None
    if not start_raw or not end_raw:
        raise web.HTTPBadRequest(text="Hãy nhập cả thời điểm bắt đầu ('Từ') và kết thúc ('Đến').")
    start, end = instant(start_raw, "Từ", tz), instant(end_raw, "Đến", tz)
    if end <= start:
        raise web.HTTPBadRequest(text="Thời điểm kết thúc ('Đến') phải sau thời điểm bắt đầu ('Từ').")
    return Window(start, end)


def area_name(code: str, areas: Mapping[str, AreaView]) -> str:
    area = areas.get(code)
    if area is None:
        return code
    return f"{area.name} (cấp quận)" if area.level == "district" else area.name


@dataclass(frozen=True)
class Device:
    """One row of the page: a readable endpoint, its status, and since when (the read models' last change)."""

    endpoint: Endpoint
    status: str
    since: str | None

    @property
    def code(self) -> str:
        return self.endpoint.code

    @property
    def ward(self) -> str:
        return self.endpoint.ward

    @property
    def group(self) -> str | None:
        return self.endpoint.group


def _tally(items: list[Device]) -> dict[str, Any]:
    counts = Counter(d.status for d in items)
    in_service = len(items) - counts["decommissioned"]
    since = [d.since for d in items if d.since]
    return {"total": len(items), "counts": counts, "in_service": in_service,
            "share": counts["online"] / in_service if in_service else None,
            "last_change": max(since) if since else None}  # fmt: skip


def _rows(items: list[Device], key: str, areas: Mapping[str, AreaView]) -> list[dict[str, Any]]:
    groups: dict[str, list[Device]] = defaultdict(list)
    for d in items:
        groups[getattr(d, key) or "-"].append(d)
    return [{"code": code, "name": area_name(code, areas) if code != "-" else "(không thuộc tổ nào)", **_tally(g)}
            for code, g in sorted(groups.items())]  # fmt: skip


async def devices(request: web.Request) -> web.StreamResponse:
    who = person(request)
    services = request.app[SERVICES]
    tz = services.settings.display_tz
    params = query(request, ("ward", "kind", "status", "start", "end", "format"))
    catalog = await data.catalog(request)
    mine = await services.run(lambda: readable_endpoints(catalog, who.visibility))
    at = data.now(request)
    areas = {a.code: a for a in await services.run(lambda: catalog.areas(at))}
    wards = sorted({e.ward for e in mine})
    ward = choice(params, "ward", wards, "Phường")
    kind = choice(params, "kind", KINDS, "Loại thiết bị")
    status = choice(params, "status", STATUSES, "Trạng thái")
    fmt = choice(params, "format", ("csv",), "Định dạng")
    window = window_of(params, tz)
    offline: list[dict[str, Any]] | None = None
    if window is not None:
        found = await data.read_models(request, lambda r: queries.offline_during(r, window.start_utc, window.end_utc))
        by_code = {e.code: e for e in mine}
        offline = [{**row, "endpoint": by_code[row["code"]], "status": status_of(by_code[row["code"]]),
                    "duration": duration_vi(row["offline_s"])}
                   for row in found if row["code"] in by_code]  # fmt: skip
        if fmt == "csv":
            return _csv(offline, window, areas, tz)
    health = await data.read_models(request, queries.health)
    since = {h["code"]: h["since"] for h in health}
    items = [
        Device(e, status_of(e), since.get(e.code))
        for e in mine
        if (ward is None or e.ward == ward) and (kind is None or e.kind == kind)
    ]
    if status is not None:
        items = [d for d in items if d.status == status]
    counts = Counter(d.status for d in items)
    marks = [
        devicemap.Mark(d.code, d.endpoint.lat, d.endpoint.lon, d.status,
                       f"{d.code} · {labels.label(labels.ENDPOINT_KINDS, d.endpoint.kind)} · "
                       f"{STATUS_VI[d.status]} · {area_name(d.ward, areas)}")
        for d in items
        if d.endpoint.lat is not None and d.endpoint.lon is not None
    ]  # fmt: skip
    shown_wards = sorted({d.ward for d in items})
    places = [
        devicemap.Place(a.name, a.lat, a.lon)
        for a in (areas.get(w) for w in shown_wards)
        if a is not None and a.level == "ward" and a.lat is not None and a.lon is not None
    ]
    summary = devicemap.summary(counts, STATUS_VI, len(marks), len(items) - len(marks))
    the_map = devicemap.draw(marks, places, label=summary, empty="Không có thiết bị nào có tọa độ để vẽ bản đồ.")
    ward_level = [w for w in wards if w in areas and areas[w].level == "ward"]  # the district's own boards aside
    single_ward = ward or (ward_level[0] if len(ward_level) == 1 else None)
    return render(
        request, "devices.html", title="Thiết bị", active="devices",
        items=items, counts=counts, overall=_tally(items), ward_rows=_rows(items, "ward", areas),
        group_rows=_rows([d for d in items if d.ward == single_ward], "group", areas) if single_ward else None,
        single_ward=single_ward, the_map=the_map, map_summary=summary, unplaced=len(items) - len(marks),
        legend=[(s, devicemap.icon(s), counts.get(s, 0)) for s in STATUSES],
        statuses=STATUSES, status_vi=STATUS_VI, kinds=KINDS,
        ward_options=[(w, area_name(w, areas)) for w in wards], area_name=lambda c: area_name(c, areas),
        filters={"ward": ward or "", "kind": kind or "", "status": status or ""},
        window=window, window_fields=_window_fields(window, tz), offline=offline,
        csv_href=_csv_href(window, tz), duration_vi=duration_vi,
    )  # fmt: skip


def _window_fields(window: Window | None, tz: tzinfo) -> dict[str, str]:
    if window is None:
        return {"start": "", "end": ""}
    return {"start": window.start.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
            "end": window.end.astimezone(tz).strftime("%Y-%m-%dT%H:%M")}  # fmt: skip


def _csv_href(window: Window | None, tz: tzinfo) -> str | None:
    if window is None:
        return None
    fields = _window_fields(window, tz)
    return f"/console/devices?start={fields['start']}&end={fields['end']}&format=csv"


def _csv(rows: list[dict[str, Any]], window: Window, areas: Mapping[str, AreaView], tz: tzinfo) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    start, end = labels.vn_time(window.start, tz), labels.vn_time(window.end, tz)
    for row in rows:
        e: Endpoint = row["endpoint"]
        writer.writerow([e.code, labels.label(labels.ENDPOINT_KINDS, e.kind), e.ward, area_name(e.ward, areas),
                         e.group or "", STATUS_VI[row["status"]], f"{row['offline_s']:.0f}", row["duration"],
                         start, end])  # fmt: skip
    stamp = f"{window.start.astimezone(tz):%Y%m%d-%H%M}_{window.end.astimezone(tz):%Y%m%d-%H%M}"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"),  # the BOM: spreadsheet programs then read UTF-8
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="thiet-bi-mat-ket-noi_{stamp}.csv"'},
    )


def _history(r: ReadStore, code: str, key: str) -> dict[str, Any]:
    return {"doc": r.load("endpoint", key), "events": queries.timeline(r, "endpoint", code)}


async def device(request: web.Request) -> web.Response:
    who = person(request)
    services = request.app[SERVICES]
    query(request, ())
    code = request.match_info["code"]
    catalog = await data.catalog(request)
    if len(code) > 64:
        raise web.HTTPNotFound(text="Không có thiết bị này.")
    key = endpoint_id(code)
    e = catalog.aggregates.get(key)
    if not isinstance(e, Endpoint) or not who.visibility.sees((e.ward,)):
        raise web.HTTPNotFound(text=f"Không có thiết bị {code[:64]!r} trong phạm vi bạn được xem.")
    at = data.now(request)
    areas = {a.code: a for a in await services.run(lambda: catalog.areas(at))}
    found = await data.read_models(request, lambda r: _history(r, e.code, str(key)))
    doc = found["doc"] or {}
    events = [
        {**row, "label": EVENTS_VI.get(row["event"], row["event"]),
         "detail_vi": REASONS_VI.get(row["detail"], row["detail"]) if row["event"] != "Endpoint.Registered" else ""}
        for row in reversed(found["events"])
    ]  # fmt: skip
    return render(
        request, "device.html", title=f"Thiết bị {e.code}", active="devices",
        e=e, device_status=status_of(e), status_vi=STATUS_VI, doc=doc, events=events,
        ward_name=area_name(e.ward, areas), group_name=area_name(e.group, areas) if e.group else "",
        map_icon=devicemap.icon(status_of(e)),
    )  # fmt: skip


def add_routes(console: web.Application) -> None:
    console.router.add_get("/devices", devices)
    console.router.add_get("/devices/{code}", device)
