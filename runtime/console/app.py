"""The console sub-application (`/console/`), mounted by `create_app`; `/` and `/index.html` lead to it.

One middleware serves every console request: it reads and checks the session (runtime/console/session.py), refuses a
state-changing request without its CSRF token, adds the security headers (a strict Content-Security-Policy: no inline
script or style, nothing from another origin, no framing), and turns every refusal into a Vietnamese HTML page with
the right status; a page never answers 5xx for a refusal, only for a fault of ours (logged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import structlog
from aiohttp import web

from keng.adapters.sealed_cookies import CookieSealer
from keng.adapters.store.errors import NotFound
from keng.runtime.console import data
from keng.runtime.console import render as rendering
from keng.runtime.console.session import (
    PERSON,
    SEALER,
    CsrfRefused,
    Person,
    SignInNeeded,
    check_csrf,
    end_session,
    pre_session_csrf,
    read_session,
)
from keng.runtime.errors import entry_for, titles_of
from keng.runtime.http.services import SERVICES, Services
from keng.services.access import Unauthenticated
from keng.services.credentials import session_staff

log = structlog.get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; "
       "base-uri 'none'")  # fmt: skip
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def public(handler: Handler) -> Handler:
    """Mark a console handler as reachable without a session (the sign-in form)."""
    handler.console_public = True  # type: ignore[attr-defined]
    return handler


def _is_public(request: web.Request) -> bool:
    route_handler = request.match_info.handler
    return bool(getattr(route_handler, "console_public", False)) or request.path.startswith("/console/static/")


async def _person(request: web.Request, services: Services) -> Person | None:
    data = read_session(request)
    if data is None:
        return None
    handle, generation, csrf = str(data["h"]), int(str(data["g"])), str(data["c"])

    def check() -> Person:
        member = session_staff(services.app, handle, generation)
        return Person(member, csrf, services.visibility_of(member), generation)

    try:
        return await services.run(check)
    except Unauthenticated:
        return None


def _as_of(request: web.Request, who: Person) -> None:
    """Set the request's as-of instant (`?asof=`): auditors and admins only, and read-only."""
    moment = data.as_of_of(request)
    if moment is None:
        return
    if not who.can_audit:
        raise web.HTTPForbidden(text="Chỉ kiểm toán viên và quản trị viên xem được trạng thái tại một thời điểm.")
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPConflict(text="Chế độ xem tại một thời điểm chỉ để đọc; không thể thay đổi gì.")
    request[data.AS_OF] = moment


def error_page(request: web.Request, status: int, heading: str, detail: str) -> web.Response:
    return rendering.render(request, "error.html", status=status, title=heading, heading=heading, detail=detail)


def _refusal(request: web.Request, error: Exception) -> web.Response | None:
    """The page for a refusal the error table knows (a domain rule, a missing record, a conflict...)."""
    entry = entry_for(error)
    if entry is None or entry.status is None:
        return None
    return error_page(request, entry.status, entry.headline_vi, str(error))


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    services = request.app[SERVICES]
    response: web.StreamResponse
    clear_cookie = False
    try:
        static = request.path.startswith("/console/static/")
        found = None if static else await _person(request, services)
        clear_cookie = not static and found is None and "keng_session" in request.cookies  # static: never read
        if found is not None:
            request[PERSON] = found
            await check_csrf(request, found.csrf)
            _as_of(request, found)
        elif _is_public(request):
            await check_csrf(request, pre_session_csrf(request))
        else:
            raise SignInNeeded("đăng nhập để tiếp tục")
        response = await handler(request)
    except SignInNeeded:
        if request.method in ("GET", "HEAD"):
            target = request.path_qs if request.path.startswith("/console") else "/console/"
            response = web.Response(status=303, headers={"Location": f"/console/sign-in?next={quote(target, safe='')}"})
        else:
            response = error_page(request, 401, "Chưa đăng nhập", "Phiên làm việc đã hết; hãy đăng nhập lại.")
    except CsrfRefused as e:
        response = error_page(request, 403, "Yêu cầu bị từ chối", str(e))
    except data.BadInstant as e:
        response = error_page(request, 400, titles_of("bad-request").vi, str(e))
    except web.HTTPException as e:
        if e.status < 400:
            response = web.Response(status=e.status, headers=e.headers)  # a redirect raised by a handler
        elif e.status == 405:
            response = error_page(request, 405, titles_of("method-not-allowed").vi, f"{request.method} {request.path}")
            response.headers["Allow"] = e.headers.get("Allow", "")
        else:
            heading = {404: "Không tìm thấy trang", 403: "Không có quyền", 409: "Không thực hiện được",
                       429: "Quá nhiều yêu cầu"}.get(e.status, titles_of("bad-request").vi)  # fmt: skip
            response = error_page(request, e.status, heading, e.text or e.reason)
            if "Retry-After" in e.headers:
                response.headers["Retry-After"] = e.headers["Retry-After"]
    except Exception as e:  # a refusal from the error table, else a fault of ours
        page = _refusal(request, e)
        if page is None:
            log.exception("console.unhandled", path=request.path, method=request.method)
            page = error_page(request, 500, titles_of("internal-error").vi, "Đã ghi nhận lỗi; xin thử lại sau.")
        response = page
    if clear_cookie:
        end_session(response)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/console/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/", headers=HEADERS)


async def _close_as_of(console: web.Application) -> None:
    await console[SERVICES].run(console[data.AS_OF_CACHE].close)


def create_console(services: Services) -> web.Application:
    """The console sub-application over the service's collaborators."""
    from keng.runtime.console import pages

    console = web.Application(middlewares=[console_middleware])
    console[SERVICES] = services
    console[SEALER] = CookieSealer(services.settings.data_dir)
    console[rendering.ENV] = rendering.environment(services.settings.display_tz)
    console[data.AS_OF_CACHE] = data.AsOfCache()
    console.on_cleanup.append(_close_as_of)
    console.router.add_static("/static/", STATIC, name="static", append_version=False)
    for module in pages.MODULES:
        module.add_routes(console)
    return console


def add_console(app: web.Application, services: Services) -> None:
    """Mount the console at `/console/` and send `/` and `/index.html` there."""
    app.router.add_get("/", _to_console)
    app.router.add_get("/index.html", _to_console)
    app.router.add_get("/console", _to_console)
    app.add_subapp("/console", create_console(services))


__all__ = ["NotFound", "add_console", "create_console", "public"]
