"""`GET /console/audit` (auditors and admins): the timeline of one broadcast (`?broadcast=ID`) or one staff member
(`?staff=HANDLE`), the form that opens the whole console as of a chosen instant (`/console/?asof=...`, read-only),
the hash chain's verification (`GET /console/audit/chain`: run off the event loop, one at a time, its result kept a
short while and shown on the audit page too) and the newest signed checkpoint as a download
(`GET /console/audit/checkpoint.json`), to keep off this machine.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from keng.adapters.audit.keys import load_or_create
from keng.adapters.audit.verify import Report, export_checkpoint, sorted_findings, verify
from keng.adapters.readstore.sql import SqlDb
from keng.runtime.console import data
from keng.runtime.console.pages.reports import check_params, require_auditor
from keng.runtime.console.render import display_tz, render
from keng.runtime.http.services import SERVICES, Services
from keng.runtime.reports import ReportOptions, build
from keng.runtime.workers.readmodels import events_table
from keng.services import broadcasts

HANDLE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CHAIN_TTL_S = 60.0  # a verification result is shown as current this long; the button runs a new one
RECENT = 15
EVENTS = {
    "Broadcast.Drafted": "Soạn bản tin",
    "Broadcast.Revised": "Sửa bản tin",
    "Broadcast.SubmittedForApproval": "Trình duyệt",
    "Broadcast.Approved": "Duyệt",
    "Broadcast.AutoApproved": "Tự động duyệt (lệnh thường trực)",
    "Broadcast.Ratified": "Xác nhận duyệt",
    "Broadcast.Rejected": "Từ chối",
    "Broadcast.Scheduled": "Lên lịch",
    "Broadcast.DispatchOpened": "Bắt đầu phát",
    "Broadcast.Completed": "Hoàn thành",
    "Broadcast.Cancelled": "Hủy",
    "Broadcast.Expired": "Hết hạn",
    "Broadcast.Rendered": "Đã tạo âm thanh/hình",
    "Broadcast.RenderFailed": "Tạo âm thanh/hình lỗi",
    "Broadcast.RenderClaimed": "Nhận việc tạo âm thanh",
    "Dispatch.Opened": "Mở đợt phát",
    "Dispatch.ItemSent": "Chốt nội dung gửi thiết bị",
    "Dispatch.AcksRecorded": "Ghi nhận phản hồi thiết bị",
    "Dispatch.RetriesSent": "Gửi lại",
    "Dispatch.Closed": "Đóng đợt phát",
    "Endpoint.Registered": "Đăng ký thiết bị",
    "Endpoint.CameOnline": "Thiết bị trực tuyến",
    "Endpoint.WentOffline": "Thiết bị mất kết nối",
    "Endpoint.FaultReported": "Báo hỏng",
    "Endpoint.Repaired": "Đã sửa",
    "Endpoint.ConvertedToIP": "Chuyển đổi sang IP",
    "Endpoint.Decommissioned": "Thanh lý",
    "Endpoint.Reassigned": "Chuyển thiết bị sang địa bàn mới (sắp xếp đơn vị hành chính)",
    "Staff.Enrolled": "Thêm cán bộ",
    "Staff.RoleGranted": "Cấp vai trò",
    "Staff.RoleRevoked": "Thu hồi vai trò",
    "Staff.TrainingCompleted": "Hoàn thành tập huấn",
    "Staff.ScopeCarriedOver": "Chuyển phạm vi phụ trách theo đơn vị mới",
    "Area.Registered": "Đăng ký địa bàn",
    "Area.Established": "Thành lập đơn vị hành chính",
    "Area.Renamed": "Đổi tên đơn vị hành chính",
    "Area.Recoded": "Đổi mã đơn vị hành chính",
    "Area.Moved": "Chuyển đơn vị sang trực thuộc đơn vị khác",
    "Area.Ended": "Chấm dứt đơn vị (sáp nhập, chia tách hoặc giải thể)",
    "Integration.JurisdictionCarriedOver": "Chuyển phạm vi hệ thống tích hợp theo đơn vị mới",
}


def event_vi(name: str) -> str:
    return EVENTS.get(name, name)


# -- the chain's verification ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainResult:
    report: Report
    checked_at: datetime
    seconds: float
    monotonic: float

    @property
    def findings(self) -> list[Any]:
        return sorted_findings(self.report)


class ChainChecker:
    """One verification at a time; its result is reused for CHAIN_TTL_S (a big store takes a while to recompute)."""

    def __init__(self) -> None:
        self.last: ChainResult | None = None
        self._lock = asyncio.Lock()

    def fresh(self) -> ChainResult | None:
        last = self.last
        return last if last is not None and time.monotonic() - last.monotonic <= CHAIN_TTL_S else None

    async def check(self, services: Services, *, again: bool) -> ChainResult:
        async with self._lock:
            found = self.fresh()
            if found is not None and not again:
                return found

            def run() -> ChainResult:
                started = time.monotonic()
                app = services.app
                report = verify(SqlDb.of_app(app), events_table(app), load_or_create(services.settings.data_dir), None)
                done = time.monotonic()
                return ChainResult(report, app.clock(), done - started, done)

            self.last = await services.run(run)
            return self.last


CHAIN = web.AppKey("console_chain_checker", ChainChecker)


# -- pages -----------------------------------------------------------------------------------------------------------


def _subject(request: web.Request) -> tuple[str, str] | None:
    """("broadcast", id) or ("staff", handle) from the query, checked; None when neither is asked for."""
    q = request.query
    raw_b, raw_s = q.get("broadcast", "").strip(), q.get("staff", "").strip()
    if raw_b and raw_s:
        raise web.HTTPBadRequest(text="Chọn một bản tin hoặc một cán bộ, không chọn cả hai.")
    if raw_b:
        try:
            return "broadcast", str(UUID(raw_b))
        except ValueError:
            raise web.HTTPBadRequest(text=f"Mã bản tin không hợp lệ: {raw_b[:60]!r}.") from None
    if raw_s:
        if not HANDLE.match(raw_s):
            raise web.HTTPBadRequest(text=f"Tên đăng nhập không hợp lệ: {raw_s[:60]!r}.")
        return "staff", raw_s
    return None


async def audit_page(request: web.Request) -> web.Response:
    who = require_auditor(request)
    check_params(request, ("broadcast", "staff"))
    subject = _subject(request)
    catalog = await data.catalog(request)
    staff = catalog.staff()
    items = broadcasts.readable_list(catalog, who.visibility)
    recent = sorted(items, key=lambda b: b.created_on, reverse=True)[:RECENT]
    heading, rows = "", []
    if subject is not None:
        kind, key = subject
        if kind == "broadcast":
            found = next((b for b in items if str(b.id) == key), None)
            if found is None:
                raise web.HTTPNotFound(text=f"Không có bản tin {key}" + (" tại thời điểm này." if data.as_of(request)
                                                                          else "."))  # fmt: skip
            heading = f"Bản tin “{found.title}”"
            options = ReportOptions("timeline", who.handle, broadcast=key)
        else:
            member = next((s for s in staff if s.handle == key), None)
            if member is None:
                raise web.HTTPNotFound(text=f"Không có cán bộ '{key}'.")
            heading = f"Cán bộ {member.name} ({member.handle})"
            options = ReportOptions("timeline", who.handle, staff=key)
        at = data.now(request).isoformat()
        rows = await data.read_models(request, lambda store: build(store, options, at))
    now = data.now(request).astimezone(display_tz(request))
    return render(request, "audit.html", title="Kiểm toán", active="audit", subject=subject, heading=heading,
                  rows=rows, staff=staff, recent=recent, event_vi=event_vi, chain=request.app[CHAIN].fresh(),
                  asof_default=now.strftime("%Y-%m-%dT%H:%M:%S"))  # fmt: skip


async def chain_page(request: web.Request) -> web.Response:
    """Verify the chain (or show a result of the last minute unless `again=1`)."""
    require_auditor(request)
    check_params(request, ("again",))
    again = request.query.get("again", "")
    if again not in ("", "0", "1"):
        raise web.HTTPBadRequest(text="'again' phải là 0 hoặc 1.")
    services = request.app[SERVICES]
    result = await request.app[CHAIN].check(services, again=again == "1")
    return render(request, "audit_chain.html", title="Kiểm tra chuỗi toàn vẹn", active="audit", chain=result)


async def checkpoint_json(request: web.Request) -> web.Response:
    require_auditor(request)
    check_params(request, ())
    services = request.app[SERVICES]

    def export() -> bytes:
        return export_checkpoint(SqlDb.of_app(services.app)).to_json()

    try:
        body = await services.run(export)
    except ValueError as e:
        raise web.HTTPConflict(text=f"Chưa có checkpoint đã ký: {e}") from None
    stamp = services.app.clock().astimezone(display_tz(request)).strftime("%Y%m%d-%H%M%S")
    response = web.Response(body=body, content_type="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="keng-checkpoint-{stamp}.json"'
    return response


def add_routes(console: web.Application) -> None:
    console[CHAIN] = ChainChecker()
    console.router.add_get("/audit", audit_page)
    console.router.add_get("/audit/chain", chain_page)
    console.router.add_get("/audit/checkpoint.json", checkpoint_json)
