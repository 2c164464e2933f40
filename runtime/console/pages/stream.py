"""`GET /console/stream`: the live status stream (runtime/http/routes_stream.py) for the signed-in person, over their
session cookie (a browser's EventSource cannot send a bearer token). It carries what the person may read, and ends
when the session does (signed out everywhere, a password change, or a change of roles).

A person has at most `MAX_STREAMS` open at once (a tab each; a browser opens no more than six connections to one
site anyway): each stream polls the log from a worker thread, so more are refused (429) rather than let one session
hold the threads every other request needs."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from keng.runtime.console.session import person
from keng.runtime.http import routes_stream
from keng.runtime.http.services import SERVICES
from keng.services.credentials import session_staff

MAX_STREAMS = 8
OPEN = web.AppKey("console_open_streams", Counter)


async def stream(request: web.Request) -> web.StreamResponse:
    who = person(request)
    services = request.app[SERVICES]
    open_streams: Counter[str] = request.app[OPEN]
    if open_streams[who.handle] >= MAX_STREAMS:
        raise web.HTTPTooManyRequests(
            text=f"Đã mở {MAX_STREAMS} luồng cập nhật trực tiếp; hãy đóng bớt thẻ trình duyệt.",
            headers={"Retry-After": "15"},
        )
    position = routes_stream.start_position(request, await services.run(services.app.max_position))

    def session() -> routes_stream.StreamSession:
        return routes_stream.StreamSession(
            services, who.staff, lambda: session_staff(services.app, who.handle, who.generation)
        )

    open_streams[who.handle] += 1
    try:
        return await routes_stream.pump(request, who.staff, await services.run(session), position, named=False)
    finally:
        open_streams[who.handle] -= 1
        if open_streams[who.handle] <= 0:
            del open_streams[who.handle]


def add_routes(console: web.Application) -> None:
    routes_stream.add_closing(console)
    console[OPEN] = Counter()
    console.router.add_get("/stream", stream)
