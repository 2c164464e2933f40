"""`GET /console/reports` (auditors and admins): the district plan's KPIs against their 2025 targets with a quarterly
trend chart each, the FM -> IP roadmap by year, and the drill reports; `GET /console/reports/{kpi|roadmap|drills|
coverage}.csv` downloads the same rows (UTF-8 with a byte-order mark, so that Excel reads the Vietnamese, and a
Vietnamese header row). Every page and file reads the live read models, or those as of the console's `?asof=`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiohttp import web

from keng.runtime.console import charts, data
from keng.runtime.console.render import display_tz, render
from keng.runtime.console.session import Person, person
from keng.runtime.reports import YEARS, ReportOptions, build

KPI_NAMES = {
    "ip_radio_wards": "Phường có truyền thanh ứng dụng CNTT-VT đến mọi tổ dân phố",
    "eboard_groups": "Tổ dân phố có bảng tin điện tử",
    "large_boards_connected": "Màn hình lớn cấp quận được kết nối",
    "ward_portals_active": "Trang thông tin phường hoạt động (30 ngày qua)",
    "fm_converted": "Đài FM đã chuyển đổi sang IP",
    "staff_trained": "Cán bộ đã được tập huấn",
    "feedback_response_rate": "Phản ánh, kiến nghị được trả lời đúng hạn",
}
YEAR = re.compile(r"[0-9]{4}")  # ASCII digits only (int() would also read full-width ones)
ROADMAP_FIRST, ROADMAP_LAST, MAX_SPAN = 2022, 2025, 30
PARAMETERS = {"": ("from", "to"), "kpi": (), "roadmap": ("from", "to"), "drills": (), "coverage": ()}


def require_auditor(request: web.Request) -> Person:
    """The signed-in person, who must be an auditor or an admin (else a 403 page)."""
    who = person(request)
    if not who.can_audit:
        raise web.HTTPForbidden(text="Chỉ kiểm toán viên và quản trị viên xem được báo cáo.")
    return who


def check_params(request: web.Request, allowed: Iterable[str]) -> None:
    """Refuse query parameters a page does not know (`asof` is every page's)."""
    unknown = sorted(set(request.query) - {*allowed, "asof"})
    if unknown:
        raise web.HTTPBadRequest(text=f"Tham số không hợp lệ: {', '.join(unknown)}.")


def _year(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "").strip()
    if raw == "":
        return default
    if not YEAR.fullmatch(raw) or not YEARS[0] <= int(raw) <= YEARS[1]:
        raise web.HTTPBadRequest(
            text=f"'{name}' phải là một năm từ {YEARS[0]} đến {YEARS[1]} (nhận được {raw[:12]!r})."
        )
    return int(raw)


def years_of(request: web.Request) -> tuple[int, int]:
    """The roadmap's first and last year (`from`, `to`), checked."""
    first, last = _year(request, "from", ROADMAP_FIRST), _year(request, "to", ROADMAP_LAST)
    if first > last:
        raise web.HTTPBadRequest(text=f"Năm bắt đầu ({first}) phải không sau năm kết thúc ({last}).")
    if last - first >= MAX_SPAN:
        raise web.HTTPBadRequest(text=f"Lộ trình tối đa {MAX_SPAN} năm.")
    return first, last


async def _report(request: web.Request, options: ReportOptions) -> list[dict[str, Any]]:
    at = data.now(request).isoformat()
    return await data.read_models(request, lambda store: build(store, options, at))


def kpi_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """KPI rows with their Vietnamese name, whether the target is met (judged as `projections.queries.kpis` does: at
    the end of the target year once it is over), and a chart."""
    out = []
    for r in rows:
        name = KPI_NAMES.get(r["kpi"], r["kpi"])
        trend = {q: float(v) for q, v in r["trend"].items()}
        out.append({**r, "name": name, "met": _met(r), "trend_rows": sorted(trend.items()),
                    "chart": charts.kpi_chart(name, trend, float(r["target"]), int(r["target_year"]))})  # fmt: skip
    return out


def _met(r: dict[str, Any]) -> bool:
    return bool(r["met"]) if "met" in r else r["value"] >= r["target"]


def drill_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drill rows (one per broadcast and ward) grouped by broadcast."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(r["broadcast"], {"broadcast": r["broadcast"], "title": r["title"], "wards": [],
                                               "failed_endpoints": r["failed_endpoints"]})  # fmt: skip
        g["wards"].append(r)
    return list(groups.values())


async def reports_page(request: web.Request) -> web.Response:
    who = require_auditor(request)
    check_params(request, PARAMETERS[""])
    first, last = years_of(request)
    kpis = await _report(request, ReportOptions("kpi", who.handle))
    roadmap = await _report(request, ReportOptions("roadmap", who.handle, first=first, last=last))
    drills = await _report(request, ReportOptions("drills", who.handle))
    return render(request, "reports.html", title="Báo cáo", active="reports", kpis=kpi_rows(kpis), roadmap=roadmap,
                  roadmap_chart=charts.roadmap_chart(roadmap), first=first, last=last, years=YEARS,
                  drills=drill_groups(drills), percent=charts.percent, quarter_vi=charts.quarter_vi)  # fmt: skip


# -- CSV -------------------------------------------------------------------------------------------------------------

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def _num(value: Any) -> str:
    return "" if value is None else str(value)


def _yes(value: Any) -> str:
    return "Có" if value else "Không"


def kpi_columns(rows: list[dict[str, Any]]) -> list[Column]:
    quarters = sorted({q for r in rows for q in r["trend"]})
    cols: list[Column] = [
        ("Mã chỉ tiêu", lambda r: r["kpi"]),
        ("Chỉ tiêu", lambda r: KPI_NAMES.get(r["kpi"], r["kpi"])),
        ("Giá trị (%)", lambda r: _num(r["value"])),
        ("Tử số", lambda r: _num(r["numerator"])),
        ("Mẫu số", lambda r: _num(r["denominator"])),
        ("Mục tiêu (%)", lambda r: _num(r["target"])),
        ("Năm mục tiêu", lambda r: _num(r["target_year"])),
        ("Đạt mục tiêu", lambda r: _yes(_met(r))),
    ]
    for q in quarters:
        cols.append((f"{charts.quarter_vi(q)} (%)", lambda r, q=q: _num(r["trend"].get(q))))  # type: ignore[misc]
    return cols


ROADMAP_COLUMNS: list[Column] = [
    ("Năm", lambda r: r["year"]),
    ("Kế hoạch (trạm)", lambda r: r["planned"]),
    ("Tỷ lệ kế hoạch (%)", lambda r: r["planned_share_pct"]),
    ("Đã chuyển đổi trong kế hoạch", lambda r: r["planned_converted"]),
    ("Chuyển đổi trong năm", lambda r: r["converted_in_year"]),
    ("Số trạm còn chờ", lambda r: len(r["pending"])),
    ("Mã trạm còn chờ", lambda r: " ".join(r["pending"])),
]
DRILL_COLUMNS: list[Column] = [
    ("Mã bản tin", lambda r: r["broadcast"]),
    ("Tiêu đề", lambda r: r["title"]),
    ("Phường", lambda r: r["code"]),
    ("Cần phát", lambda r: r["targeted"]),
    ("Đã nhận", lambda r: r["received"]),
    ("Đã phát", lambda r: r["played"]),
    ("Lỗi", lambda r: r["failed"]),
    ("Không liên lạc được", lambda r: r["unreachable"]),
    ("Chưa phản hồi", lambda r: r["pending"]),
    ("Độ phủ (%)", lambda r: r["coverage_pct"]),
    ("Độ trễ p50 (ms)", lambda r: _num(r["p50_ms"])),
    ("Độ trễ p90 (ms)", lambda r: _num(r["p90_ms"])),
    ("Độ trễ p99 (ms)", lambda r: _num(r["p99_ms"])),
    ("Thiết bị lỗi", lambda r: " ".join(r["failed_endpoints"])),
]
COVERAGE_COLUMNS: list[Column] = [
    ("Cấp", lambda r: "Phường" if r["level"] == "ward" else "Tổ dân phố"),
    ("Mã", lambda r: r["code"]),
    ("Phường", lambda r: r["ward"]),
    ("Có loa IP hoạt động", lambda r: _yes(r["ip_speaker"])),
    ("Có bảng tin điện tử", lambda r: _yes(r["eboard"])),
    ("Xác nhận đã nghe (ứng dụng)", lambda r: r.get("heard_confirmations", "")),
    ("Số bản tin được xác nhận", lambda r: r.get("heard_broadcasts", "")),
]


def _cell(value: Any) -> str:
    """A cell as text; one a spreadsheet would run as a formula gets a leading apostrophe (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_csv(columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> bytes:
    """UTF-8 with a byte-order mark, CRLF line ends, a header row of the columns' Vietnamese names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in columns])
    for r in rows:
        writer.writerow([_cell(get(r)) for _, get in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def csv_response(body: bytes, filename: str) -> web.Response:
    response = web.Response(body=body, content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


async def report_csv(request: web.Request) -> web.Response:
    who = require_auditor(request)
    name = request.match_info["name"]
    if name not in PARAMETERS or name == "":
        raise web.HTTPNotFound(text=f"Không có báo cáo '{name[:40]}'.")
    check_params(request, PARAMETERS[name])
    first, last = years_of(request) if name == "roadmap" else (ROADMAP_FIRST, ROADMAP_LAST)
    rows = await _report(request, ReportOptions(name, who.handle, first=first, last=last))
    if name == "kpi":
        columns = kpi_columns(rows)
    else:
        columns = {"roadmap": ROADMAP_COLUMNS, "drills": DRILL_COLUMNS, "coverage": COVERAGE_COLUMNS}[name]
    stamp = data.now(request).astimezone(display_tz(request)).strftime("%Y%m%d-%H%M")
    return csv_response(to_csv(columns, rows), f"keng-bao-cao-{name}-{stamp}.csv")


def add_routes(console: web.Application) -> None:
    console.router.add_get("/reports", reports_page)
    console.router.add_get("/reports/{name}.csv", report_csv)
