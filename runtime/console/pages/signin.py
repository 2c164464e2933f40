"""Signing in and out: `GET/POST /console/sign-in` (password), `POST /console/sign-in/token` (an existing API token),
`POST /console/sign-out`, `POST /console/sign-out-everywhere`.

Failures are counted per account (a lock-out recorded in the log, domain/credential.py). Nothing is counted per client
address: behind a reverse proxy every person shares one, and one person's failures would lock everyone out. What an
address-based limit would protect, the machine, is protected by a bound on the password checks (argon2, 64 MiB each)
running at once: `CHECKS_AT_ONCE` run, at most `CHECKS_WAITING` wait, and any more get a 429 at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import unquote

from aiohttp import web

from keng.adapters.passwords import PasswordStore
from keng.domain.credential import SignInLocked
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

CHECKS_AT_ONCE = 4
CHECKS_WAITING = 16
CHECKS = web.AppKey("console_password_checks", asyncio.Semaphore)
BUSY = "Hệ thống đang bận xử lý nhiều lần đăng nhập; xin thử lại sau ít giây."
PASSWORDS = web.AppKey("console_passwords", PasswordStore)


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if not value or not value.startswith("/console/") or value.startswith("/console//"):
        return "/console/"
    path = unquote(value.split("?", 1)[0].split("#", 1)[0])
    if "\\" in value or "\\" in path or ".." in path.split("/") or not value.isprintable():
        return "/console/"  # `/console/../..`, `/console/%2e%2e/`, backslashes, control characters: home instead
    return value


class _Busy(Exception):
    """Too many password checks are already waiting."""


_waiting = [0]  # password checks waiting for their turn (the semaphore keeps no public count)


@contextlib.asynccontextmanager
async def _turn(checks: asyncio.Semaphore) -> AsyncIterator[None]:
    """A turn to check a password: wait behind at most CHECKS_WAITING others, else _Busy."""
    if _waiting[0] >= CHECKS_WAITING:
        raise _Busy
    _waiting[0] += 1
    try:
        await checks.acquire()
    finally:
        _waiting[0] -= 1
    try:
        yield
    finally:
        checks.release()


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
    response = web.Response(status=303, headers={"Location": target})
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
    services = request.app[SERVICES]
    passwords = request.app[PASSWORDS]
    now = datetime.now(UTC)
    try:
        async with _turn(request.app[CHECKS]):
            who = await services.run(lambda: sign_in_with_password(services.app, passwords, handle, password, now))
    except _Busy:
        response = _form_page(request, status=429, handle=handle, error=BUSY)
        response.headers["Retry-After"] = "5"
        return response
    except SignInLocked as e:
        return _locked_page(request, e, handle)
    except Unauthenticated:
        return _form_page(request, status=401, handle=handle, error="Sai tên đăng nhập hoặc mật khẩu.")
    return _signed_in(request, who, target)


@public
async def sign_in_token(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = str(form.get("token", ""))[:300]
    target = _safe_next(str(form.get("next", "")))
    services = request.app[SERVICES]
    now = datetime.now(UTC)
    try:
        who = await services.run(lambda: sign_in_with_token(services.app, token, now))
    except SignInLocked as e:
        return _locked_page(request, e, "")
    except Unauthenticated:
        return _form_page(request, status=401, error="Mã truy cập không hợp lệ hoặc đã bị thu hồi.")
    return _signed_in(request, who, target)


async def sign_out(request: web.Request) -> web.StreamResponse:
    person(request)
    response = web.Response(status=303, headers={"Location": "/console/sign-in"})
    end_session(response)
    return response


async def sign_out_everywhere(request: web.Request) -> web.StreamResponse:
    who = person(request)
    services = request.app[SERVICES]
    await services.run(lambda: end_sessions(services.app, handle=who.handle, by=who.handle))
    response = web.Response(status=303, headers={"Location": "/console/sign-in"})
    end_session(response)
    return response


def add_routes(console: web.Application) -> None:
    console[CHECKS] = asyncio.Semaphore(CHECKS_AT_ONCE)
    console[PASSWORDS] = PasswordStore(console[SERVICES].settings.data_dir)
    console.router.add_get("/sign-in", sign_in_form)
    console.router.add_post("/sign-in", sign_in_password)
    console.router.add_post("/sign-in/token", sign_in_token)
    console.router.add_post("/sign-out", sign_out)
    console.router.add_post("/sign-out-everywhere", sign_out_everywhere)
