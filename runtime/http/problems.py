"""Errors as `application/problem+json` (RFC 9457): a status, a title, and a `detail` that names the problem.

Every known error type maps to a precise 4xx through the one error table (runtime/errors.py); anything else is a 500
whose body carries no stack trace. A client that asks for Vietnamese (`Accept-Language: vi`, or `vi-VN`, before any
English by q-value) reads the title in Vietnamese and the detail after a Vietnamese headline; English otherwise. The
detail itself stays as the code wrote it: it names the broken rule, which is what an integrator searches for.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from keng.adapters.payload import PayloadError
from keng.domain.errors import AreaEnded
from keng.runtime.errors import entry_for, titles_of

PROBLEM_TYPE = "application/problem+json"
LANGUAGES = ("en", "vi")  # the first is the default
_MAX_RANGES = 32  # language ranges read from one header; the rest are ignored


class Problem(Exception):
    """Raise from a handler (or map an error to one) to answer with a problem document. `headline_vi` leads a
    Vietnamese detail (the kind's Vietnamese title when not given)."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        *,
        headline_vi: str | None = None,
        headers: Mapping[str, str] | None = None,
        members: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.errors = errors
        self.headline_vi = headline_vi
        self.headers = dict(headers or {})  # e.g. the Allow of a 405
        self.members = dict(members or {})  # extension members of the kind (RFC 9457 §3.2), e.g. `successors`

    def response(self, language: str = LANGUAGES[0]) -> web.Response:
        """The problem document as a response, in `language` (one of LANGUAGES)."""
        titles = titles_of(self.kind)
        vietnamese = language == "vi"
        body: dict[str, object] = {
            "type": f"urn:keng:problem:{self.kind}",
            "title": titles.vi if vietnamese else titles.en,
            "status": self.status,
            "detail": f"{self.headline_vi or titles.vi} — {self.detail}" if vietnamese else self.detail,
        }
        if self.errors:
            body["errors"] = self.errors  # every violation, by element path
        body.update({k: v for k, v in self.members.items() if k not in body})
        response = web.Response(
            status=self.status, body=orjson.dumps(body), content_type=PROBLEM_TYPE, headers=self.headers
        )
        response.headers["Content-Language"] = "vi" if vietnamese else "en"
        response.headers["Vary"] = "Accept-Language"
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="keng"'
        return response


def problem_for(error: BaseException) -> Problem | None:
    """The problem response for a known error, or None."""
    entry = entry_for(error)
    if entry is None or entry.status is None:
        return None
    errors = getattr(error, "errors", None) if isinstance(error, PayloadError) else None
    members = {"successors": list(error.successors)} if isinstance(error, AreaEnded) else None
    return Problem(entry.status, entry.kind, str(error), errors or None, headline_vi=entry.headline_vi, members=members)


def preferred_language(accept_language: str | None) -> str:
    """The language of LANGUAGES an `Accept-Language` header (RFC 9110 §12.5.4) prefers: the one with the highest
    q-value, a range naming it by its primary subtag (`vi-VN` asks for `vi`), the earlier range on a tie; the default
    when the header names neither. Hand-written: two languages do not call for a locale library."""
    best, best_q = LANGUAGES[0], 0.0
    for item in (accept_language or "").split(",")[:_MAX_RANGES]:
        tag, _, params = item.partition(";")
        language = tag.strip().split("-", 1)[0].lower()
        q = _weight(params)
        if language in LANGUAGES and q > best_q:
            best, best_q = language, q
    return best


def _weight(params: str) -> float:
    """The q-value of a range's parameters: 1 when absent, 0 when malformed (an unreadable weight asks for nothing)."""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip()[:5])
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0
