"""`GET /console/`: the overview of what the signed-in person may read: broadcasts by state, the newest ones, and
what waits for them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from keng.runtime.console import data
from keng.runtime.console.render import render
from keng.runtime.console.session import person
from keng.runtime.http.services import SERVICES
from keng.runtime.views import broadcast_view
from keng.services import broadcasts

RECENT = 10


async def home(request: web.Request) -> web.Response:
    who = person(request)
    services = request.app[SERVICES]
    tz = services.settings.display_tz

    catalog = await data.catalog(request)  # live, or as of the console's `?asof=` instant

    def read() -> dict[str, Any]:
        items = broadcasts.readable_list(catalog, who.visibility)
        states = Counter(str(b.state) for b in items)
        newest = sorted(items, key=lambda b: b.modified_on, reverse=True)[:RECENT]
        waiting = [b for b in items if b.state == "submitted" and who.handle not in b.authors]
        return {"states": states, "recent": [broadcast_view(b, tz) for b in newest], "waiting": len(waiting),
                "total": len(items)}  # fmt: skip

    found = await services.run(read)
    return render(request, "home.html", title="Tổng quan", active="home", **found)


def add_routes(console: web.Application) -> None:
    console.router.add_get("/", home)
