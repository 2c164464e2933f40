"""`GET /console/stream`: the live status stream (runtime/http/routes_stream.py) for the signed-in person, over their
session cookie (a browser's EventSource cannot send a bearer token). It carries what the person may read, and ends
when the session does (signed out everywhere, a password change, or a change of roles)."""

from __future__ import annotations

from aiohttp import web

from keng.runtime.console.session import person
from keng.runtime.http import routes_stream
from keng.runtime.http.services import SERVICES
from keng.services.credentials import session_staff


async def stream(request: web.Request) -> web.StreamResponse:
    who = person(request)
    services = request.app[SERVICES]
    position = routes_stream.start_position(request, await services.run(services.app.max_position))

    def session() -> routes_stream.StreamSession:
        return routes_stream.StreamSession(
            services, who.staff, lambda: session_staff(services.app, who.handle, who.generation)
        )

    return await routes_stream.pump(request, who.staff, await services.run(session), position, named=False)


def add_routes(console: web.Application) -> None:
    routes_stream.add_closing(console)
    console.router.add_get("/stream", stream)
