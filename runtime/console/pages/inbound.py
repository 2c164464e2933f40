"""`GET /console/inbound` (auditors and admins): the messages received from the city source system and from CAP
senders, as the log records them (domain/inbound.py: one Inbound record per accepted message, with the integration
that signed it, its key, when it came and what it did), newest first, by source and outcome, 50 a page; and the
broadcasts a standing order approved that wait for a person's ratification, with their deadlines.

The log records what was accepted: a CAP message that changed nothing (the same alert again, an update already
applied) or that was only recorded (a test, an exercise) is an Inbound record with that outcome. A message sent again
with the same key is answered with the earlier outcome and leaves no new record, and a refused one (bad signature,
malformed, out of jurisdiction) stores nothing (services/inbound.py); both are counted in /metrics only.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from aiohttp import web

from keng.domain.broadcast import Broadcast
from keng.domain.inbound import Inbound
from keng.projections.catalog import Catalog
from keng.runtime.console import data
from keng.runtime.console.pages.devices import choice, query
from keng.runtime.console.render import render
from keng.runtime.console.session import person
from keng.runtime.http.services import SERVICES
from keng.services import broadcasts

PAGE_SIZE = 50
MAX_PAGE = 100_000
SOURCES = {"city-source": "Hệ thống thông tin nguồn (thành phố)", "cap": "Cảnh báo CAP 1.2"}
OUTCOMES = {"accepted": "Đã tiếp nhận", "duplicate": "Trùng, không thay đổi gì", "recorded": "Chỉ ghi nhận"}
CAP_ACTIONS = {
    "drafted": "tạo bản nháp",
    "submitted": "tạo bản tin, chờ duyệt",
    "auto-approved": "tạo bản tin, duyệt theo lệnh thường trực",
    "revised": "sửa bản tin",
    "cancelled": "hủy bản tin",
    "recorded": "chỉ ghi nhận",
    "duplicate": "cảnh báo đã nhận trước đó",
    "unchanged": "cập nhật đã áp dụng trước đó",
}


def outcome_of(item: Inbound) -> str:
    """accepted (it created or changed a broadcast), duplicate (it changed nothing), recorded (kept, not acted on)."""
    if item.source == "cap":
        action = str(item.outcome.get("action", ""))
        if action in ("duplicate", "unchanged"):
            return "duplicate"
        if action == "recorded":
            return "recorded"
    return "accepted"


def _broadcast_ids(item: Inbound) -> list[str]:
    out = item.outcome
    ids = out.get("broadcast_ids") if item.source == "cap" else [out.get("broadcast_id")]
    return [str(i) for i in ids or [] if i]


def _view(item: Inbound, catalog: Catalog) -> dict[str, Any]:
    out = item.outcome
    linked = []
    for ref in _broadcast_ids(item):
        try:
            found = catalog.aggregates.get(UUID(ref))
        except ValueError:
            continue
        linked.append({"id": ref, "title": found.title if isinstance(found, Broadcast) else ref[:8],
                       "state": found.state if isinstance(found, Broadcast) else ""})  # fmt: skip
    detail = CAP_ACTIONS.get(str(out.get("action", "")), str(out.get("action", ""))) if item.source == "cap" else ""
    return {"received": item.created_on, "source": item.source, "integration": item.integration,
            "key": item.message_id, "outcome": outcome_of(item), "detail": detail,
            "state": out.get("state", ""), "reason": str(out.get("reason") or ""),
            "sha": item.payload_sha256, "signature": item.signature, "broadcasts": linked,
            "stop_required": bool(out.get("stop_required"))}  # fmt: skip


async def inbound(request: web.Request) -> web.Response:
    who = person(request)
    if not who.can_audit:
        raise web.HTTPForbidden(text="Chỉ kiểm toán viên và quản trị viên xem được tin đến.")
    services = request.app[SERVICES]
    params = query(request, ("source", "outcome", "page"))
    source = choice(params, "source", SOURCES, "Nguồn")
    outcome = choice(params, "outcome", OUTCOMES, "Kết quả")
    raw_page = params.get("page", "") or "1"
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
        raise web.HTTPBadRequest(text=f"Số trang không hợp lệ: {raw_page[:20]!r}.")
    page = int(raw_page)
    catalog = await data.catalog(request)
    now = data.now(request)

    def read() -> dict[str, Any]:
        items = [i for i in catalog.of_type(Inbound) if source is None or i.source == source]
        if outcome is not None:
            items = [i for i in items if outcome_of(i) == outcome]
        items.sort(key=lambda i: i.created_on, reverse=True)
        pages = max(1, math.ceil(len(items) / PAGE_SIZE))
        if page > pages:
            raise web.HTTPNotFound(text=f"Không có trang {page}: chỉ có {pages} trang.")
        shown = [_view(i, catalog) for i in items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
        readable = broadcasts.readable_list(catalog, who.visibility)
        waiting = broadcasts.awaiting_ratification(readable, within=services.ratify_within, now=now)
        waiting.sort(key=lambda u: (not u.overdue, u.due or now))
        return {"rows": shown, "total": len(items), "pages": pages, "waiting": waiting}

    found = await services.run(read)
    base = {k: v for k, v in (("source", source), ("outcome", outcome)) if v}
    return render(
        request, "inbound.html", title="Tin đến", active="inbound", **found, page=page,
        sources=SOURCES, outcomes=OUTCOMES, filters={"source": source or "", "outcome": outcome or ""},
        page_href=lambda n: "/console/inbound?" + "&".join(f"{k}={v}" for k, v in {**base, "page": n}.items()),
        ratify_within_min=int(services.ratify_within.total_seconds() // 60), now=now,
    )  # fmt: skip


def add_routes(console: web.Application) -> None:
    console.router.add_get("/inbound", inbound)
