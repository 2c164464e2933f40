"""`GET /console/broadcasts`: the broadcasts the signed-in person may read, newest first, optionally in one state
(`?state=`), a page at a time (`?page=`); each links to its page (`/console/broadcasts/{id}`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from keng.domain.values import BroadcastState
from keng.runtime.console import data
from keng.runtime.console.labels import STATES
from keng.runtime.console.render import render
from keng.runtime.console.session import person
from keng.runtime.http.services import SERVICES
from keng.runtime.views import broadcast_view
from keng.services import broadcasts

PER_PAGE = 50
PARAMS = frozenset({"state", "page", "asof"})
MAX_PAGE = 100_000


def _state(request: web.Request) -> str | None:
    raw = request.query.get("state", "")
    if raw == "":
        return None
    if raw not in {s.value for s in BroadcastState}:
        raise web.HTTPBadRequest(
            text=f"Trạng thái '{raw[:40]}' không có; chọn một trong: {', '.join(STATES.values())}."
        )
    return raw


def _page(request: web.Request) -> int:
    raw = request.query.get("page", "1") or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise web.HTTPBadRequest(text=f"Số trang '{raw[:20]}' không hợp lệ.")
    return int(raw)


async def list_page(request: web.Request) -> web.Response:
    who = person(request)
    unknown = sorted(set(request.query) - PARAMS)
    if unknown:
        raise web.HTTPBadRequest(text=f"Trang danh sách bản tin không nhận tham số: {', '.join(unknown)[:80]}.")
    state, page = _state(request), _page(request)
    services = request.app[SERVICES]
    catalog = await data.catalog(request)
    tz = services.settings.display_tz

    def read() -> dict[str, Any]:
        items = broadcasts.readable_list(catalog, who.visibility, state=state)
        pages = max(1, -(-len(items) // PER_PAGE))
        shown = items[(page - 1) * PER_PAGE : page * PER_PAGE]
        return {"items": [broadcast_view(b, tz) for b in shown], "total": len(items), "pages": pages}

    found = await services.run(read)
    query = f"state={state}&" if state else ""
    return render(request, "broadcast_list.html", title="Bản tin", active="broadcasts", state=state or "",
                  states=list(STATES.items()), page=page, query=query, **found)  # fmt: skip


def add_routes(console: web.Application) -> None:
    console.router.add_get("/broadcasts", list_page)
