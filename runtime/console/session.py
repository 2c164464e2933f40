"""Console sessions: a sealed cookie (adapters/sealed_cookies.py) holding the staff handle, the credential generation
it was issued in, a CSRF token and its issue time; `Person`, what each page knows of who is signed in.

The cookie is HttpOnly, SameSite=Strict, limited to `/console`, and Secure when the service is reached over HTTPS.
Every request checks it again against the store (services/credentials.py: the member still exists and no "sign out
everywhere" or password change happened since), so a revoked session ends at its next click.

CSRF: every form carries the session's token in a hidden `csrf` field (JavaScript sends it as `X-CSRF-Token`); a
state-changing request without the matching token, or from another origin, is refused before any handler runs. The
sign-in form, before any session exists, uses a short-lived pre-session cookie in the same way.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from functools import cached_property

from aiohttp import web
from multidict import MultiDictProxy

from keng.adapters.sealed_cookies import CookieSealer
from keng.domain.authority import Visibility
from keng.domain.staff import Staff
from keng.domain.values import Role

COOKIE = "keng_session"
PRE_COOKIE = "keng_signin"
COOKIE_PATH = "/console"
SESSION_MAX_AGE_S = 12 * 3600  # a working day; then sign in again
PRE_MAX_AGE_S = 30 * 60
PERSON = "console_person"
SEALER = web.AppKey("console_sealer", CookieSealer)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class SignInNeeded(Exception):
    """No valid session: pages redirect to the sign-in form, other requests answer 401."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token, or from another origin."""


@dataclass
class Person:
    """The signed-in staff member of a console request, with what they may read and do."""

    staff: Staff
    csrf: str
    visibility: Visibility
    generation: int = 0

    @property
    def handle(self) -> str:
        return self.staff.handle

    def has(self, role: Role | str) -> bool:
        return self.staff.has_role(Role(role))

    @property
    def can_draft(self) -> bool:
        return self.has(Role.DRAFTER)

    @property
    def can_approve(self) -> bool:
        return self.has(Role.APPROVER)

    @property
    def can_audit(self) -> bool:
        """Reports, the audit views and the as-of console: auditors and admins (as the API's check_auditor)."""
        return self.has(Role.AUDITOR) or self.has(Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.has(Role.ADMIN)

    @cached_property
    def scope_label(self) -> str:
        return "Toàn địa bàn" if self.staff.district_wide else ", ".join(self.staff.wards)


def person(request: web.Request) -> Person:
    """The signed-in person (the middleware has checked the session); SignInNeeded on a public page."""
    found = request.get(PERSON)
    if not isinstance(found, Person):
        raise SignInNeeded("đăng nhập để tiếp tục (sign in to continue)")
    return found


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="Strict",
                        secure=_secure(request))  # fmt: skip


def start_session(request: web.Request, response: web.StreamResponse, handle: str, generation: int) -> None:
    """Give the browser a new session (a fresh CSRF token; the pre-session cookie is dropped)."""
    sealer = request.app[SEALER]
    value = sealer.seal({"h": handle, "g": generation, "c": secrets.token_urlsafe(24), "t": int(time.time())})
    set_cookie(request, response, COOKIE, value, SESSION_MAX_AGE_S)
    response.del_cookie(PRE_COOKIE, path=COOKIE_PATH)


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path=COOKIE_PATH)


def read_session(request: web.Request) -> dict[str, object] | None:
    """The session cookie's content, if present, intact and not too old."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    data = request.app[SEALER].open(raw, max_age_s=SESSION_MAX_AGE_S)
    if data is None or not isinstance(data.get("h"), str) or not isinstance(data.get("g"), int):
        return None
    if not isinstance(data.get("c"), str):
        return None
    return data


def pre_session_token(request: web.Request) -> tuple[str, str | None]:
    """The sign-in form's CSRF token, and a new sealed cookie to set when the browser has none yet."""
    token = pre_session_csrf(request)
    if token is not None:
        return token, None
    token = secrets.token_urlsafe(24)
    return token, request.app[SEALER].seal({"c": token})


def pre_session_csrf(request: web.Request) -> str | None:
    """The CSRF token of the browser's pre-session cookie, if it has an intact, recent one."""
    raw = request.cookies.get(PRE_COOKIE)
    data = request.app[SEALER].open(raw, max_age_s=PRE_MAX_AGE_S) if raw else None
    return str(data["c"]) if data is not None and isinstance(data.get("c"), str) else None


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The posted form, read once here for every handler (aiohttp keeps it); a body that is not a form of its declared
    type (bytes that are not UTF-8, a multipart body without its boundary...) is a 400, never a fault of ours."""
    try:
        return await request.post()
    except (ValueError, UnicodeDecodeError, AssertionError) as e:
        raise web.HTTPBadRequest(text=f"Dữ liệu biểu mẫu không đọc được ({type(e).__name__}).") from None


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another origin (Origin, else Referer)."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return origin is None
    scheme, _, rest = origin.partition("://")
    host = rest.split("/", 1)[0]
    return host.lower() == request.host.lower() and scheme in ("http", "https")


async def check_csrf(request: web.Request, expected: str | None) -> None:
    """Raise CsrfRefused unless an unsafe request carries `expected` (form field `csrf` or header X-CSRF-Token) and
    comes from this origin."""
    if request.method not in UNSAFE_METHODS:
        return
    if not same_origin(request):
        raise CsrfRefused("yêu cầu đến từ một trang khác (cross-origin request refused)")
    given = request.headers.get("X-CSRF-Token")
    if request.content_type in FORM_TYPES:
        form = await read_form(request)
        value = form.get("csrf")
        given = value if given is None and isinstance(value, str) else given
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRefused("mã chống giả mạo (CSRF) thiếu hoặc không đúng; hãy tải lại trang và thử lại")
