"""Signing in and out: `GET/POST /console/sign-in` (password), `POST /console/sign-in/token` (an existing API token),
`POST /console/sign-out`, `POST /console/sign-out-everywhere`.

Failures are counted per account (a lock-out recorded in the log, domain/credential.py) and per client address (in
memory: an address that keeps failing, e.g. on unknown handles, is refused for a while without touching the store).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from urllib.parse import unquote

from aiohttp import web

from keng.adapters.passwords import PasswordStore
from keng.domain.credential import FAILURE_WINDOW, SignInLocked
from keng.runtime.console.app import public
from keng.runtime.console.labels import vn_time
from keng.runtime.console.render import display_tz, render
from keng.runtime.console.session import (
    PERSON,
    PRE_COOKIE,
    PRE_MAX_AGE_S,
    end_session,
    person,
    pre_session_token,
    set_cookie,
    start_session,
)
from keng.runtime.http.services import SERVICES
from keng.services.access import Unauthenticated
from keng.services.credentials import SignedIn, end_sessions, sign_in_with_password, sign_in_with_token

ADDRESS_FAILURES = 30  # failed attempts per client address within the failure window
_failures: dict[str, deque[float]] = defaultdict(deque)
PASSWORDS = web.AppKey("console_passwords", PasswordStore)


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if not value or not value.startswith("/console/") or value.startswith("/console//"):
        return "/console/"
    path = unquote(value.split("?", 1)[0].split("#", 1)[0])
    if "\\" in value or "\\" in path or ".." in path.split("/") or not value.isprintable():
        return "/console/"  # `/console/../..`, `/console/%2e%2e/`, backslashes, control characters: home instead
    return value


def _address(request: web.Request) -> str:
    return request.remote or "?"


def _address_blocked(request: web.Request) -> bool:
    window = FAILURE_WINDOW.total_seconds()
    seen = _failures[_address(request)]
    now = time.monotonic()
    while seen and now - seen[0] > window:
        seen.popleft()
    return len(seen) >= ADDRESS_FAILURES


def _address_failed(request: web.Request) -> None:
    _failures[_address(request)].append(time.monotonic())


def _form_page(request: web.Request, *, status: int = 200, error: str = "", handle: str = "") -> web.Response:
    token, cookie = pre_session_token(request)
    response = render(request, "sign_in.html", status=status, title="Đăng nhập", csrf=token, error=error,
                      handle=handle, next=_safe_next(request.query.get("next")))  # fmt: skip
    if cookie is not None:
        set_cookie(request, response, PRE_COOKIE, cookie, PRE_MAX_AGE_S)
    return response


@public
async def sign_in_form(request: web.Request) -> web.StreamResponse:
    if request.get(PERSON) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _form_page(request)


def _signed_in(request: web.Request, who: SignedIn, target: str) -> web.StreamResponse:
    response = web.HTTPSeeOther(target)
    start_session(request, response, who.staff.handle, who.generation)
    return response


def _locked_page(request: web.Request, e: SignInLocked, handle: str) -> web.Response:
    until = vn_time(e.until, display_tz(request))
    return _form_page(request, status=429, handle=handle,
                      error=f"Tài khoản tạm khóa do đăng nhập sai nhiều lần. Thử lại sau {until}.")  # fmt: skip


@public
async def sign_in_password(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    handle, password = str(form.get("handle", ""))[:100], str(form.get("password", ""))[:300]
    target = _safe_next(str(form.get("next", "")))
    if _address_blocked(request):
        return _form_page(request, status=429, handle=handle,
                          error="Quá nhiều lần đăng nhập sai từ máy này. Xin thử lại sau 15 phút.")  # fmt: skip
    services = request.app[SERVICES]
    passwords = request.app[PASSWORDS]
    now = datetime.now(UTC)
    try:
        who = await services.run(lambda: sign_in_with_password(services.app, passwords, handle, password, now))
    except SignInLocked as e:
        _address_failed(request)
        return _locked_page(request, e, handle)
    except Unauthenticated:
        _address_failed(request)
        return _form_page(request, status=401, handle=handle, error="Sai tên đăng nhập hoặc mật khẩu.")
    return _signed_in(request, who, target)


@public
async def sign_in_token(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = str(form.get("token", ""))[:300]
    target = _safe_next(str(form.get("next", "")))
    if _address_blocked(request):
        return _form_page(request, status=429, error="Quá nhiều lần đăng nhập sai từ máy này. Xin thử lại sau.")
    services = request.app[SERVICES]
    now = datetime.now(UTC)
    try:
        who = await services.run(lambda: sign_in_with_token(services.app, token, now))
    except SignInLocked as e:
        return _locked_page(request, e, "")
    except Unauthenticated:
        _address_failed(request)
        return _form_page(request, status=401, error="Mã truy cập không hợp lệ hoặc đã bị thu hồi.")
    return _signed_in(request, who, target)


async def sign_out(request: web.Request) -> web.StreamResponse:
    person(request)
    response = web.HTTPSeeOther("/console/sign-in")
    end_session(response)
    return response


async def sign_out_everywhere(request: web.Request) -> web.StreamResponse:
    who = person(request)
    services = request.app[SERVICES]
    await services.run(lambda: end_sessions(services.app, handle=who.handle, by=who.handle))
    response = web.HTTPSeeOther("/console/sign-in")
    end_session(response)
    return response


def add_routes(console: web.Application) -> None:
    console[PASSWORDS] = PasswordStore(console[SERVICES].settings.data_dir)
    console.router.add_get("/sign-in", sign_in_form)
    console.router.add_post("/sign-in", sign_in_password)
    console.router.add_post("/sign-in/token", sign_in_token)
    console.router.add_post("/sign-out", sign_out)
    console.router.add_post("/sign-out-everywhere", sign_out_everywhere)
