"""`GET /api/v1/reports/{kpi|coverage|roadmap|drills|board|offline|timeline}` (auditor role and up): the same rows as
`keng report NAME --json`, with query parameters named like the CLI options (`from`, `to`, `start`, `end`,
`broadcast`, `staff`, `state`, `structure`, `per`, `area`). The live read models are caught up to the newest event
before each answer, on their own worker thread (never on the event loop, and never holding the threads of
`Services.run`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from aiohttp import web

from keng.adapters.readstore.store import ReadStore
from keng.domain.area import check_code
from keng.domain.errors import InvalidValue
from keng.runtime.http.params import query_int
from keng.runtime.http.problems import Problem
from keng.runtime.http.routes_operator import current_staff
from keng.runtime.http.services import SERVICES
from keng.runtime.reports import PER, REPORTS, YEARS, ReportOptions, build, structure_day
from keng.runtime.workers.readmodels import LiveReadModels, check_auditor

READ_MODELS = web.AppKey("read_models", LiveReadModels)
# Query parameters of each report (the CLI's option names).
PARAMETERS: dict[str, tuple[str, ...]] = {
    "kpi": ("structure",),
    "coverage": ("structure",),
    "roadmap": ("from", "to", "per", "structure"),
    "drills": (),
    "board": ("state",),
    "offline": ("start", "end"),
    "timeline": ("broadcast", "staff", "area"),
}


def _year(request: web.Request, name: str, default: int) -> int:
    return query_int(request.query, name, lo=YEARS[0], hi=YEARS[1], default=default)


def _instant(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(400, "bad-request", f"query parameter {name!r} must be an ISO 8601 time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise Problem(400, "bad-request", f"query parameter {name!r} needs a UTC offset, got {value!r}")
    return value


def _broadcast(request: web.Request) -> str | None:
    value = request.query.get("broadcast")
    if value is None:
        return None
    try:
        return str(UUID(value))  # the stored form: any accepted spelling finds the same timeline
    except ValueError:
        raise Problem(
            400, "bad-request", f"query parameter 'broadcast' must be a broadcast id, got {value!r}"
        ) from None


def _checked(request: web.Request, name: str, check: Callable[[str], str]) -> str | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return check(value)
    except InvalidValue as e:
        raise Problem(400, "bad-request", f"query parameter {name!r}: {e}") from None


def _per(value: str) -> str:
    if value not in PER:
        raise InvalidValue(f"{value[:20]!r} is not one of {', '.join(PER)}")
    return value


def options_of(request: web.Request, name: str, actor: str) -> ReportOptions:
    """The report's options from the query string (unknown parameters are refused, as the CLI refuses them)."""
    unknown = sorted(set(request.query) - set(PARAMETERS[name]))
    if unknown:
        allowed = ", ".join(PARAMETERS[name]) or "none"
        raise Problem(400, "bad-request", f"unknown query parameter(s) for {name}: {', '.join(unknown)} ({allowed})")
    q = request.query
    return ReportOptions(name=name, actor=actor, first=_year(request, "from", 2022), last=_year(request, "to", 2025),
                         start=_instant(request, "start"), end=_instant(request, "end"), broadcast=_broadcast(request),
                         staff=q.get("staff"), state=q.get("state"),
                         structure=_checked(request, "structure", structure_day),
                         per=_checked(request, "per", _per) or "year",
                         area=_checked(request, "area", check_code))  # fmt: skip


def report_handler(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        staff = await current_staff(request)
        check_auditor(staff)
        options = options_of(request, name, staff.handle)

        def answer(store: ReadStore) -> list[dict[str, Any]]:
            return build(store, options, datetime.now(UTC).isoformat())

        rows = await request.app[READ_MODELS].ask(answer)
        return web.Response(body=orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS), content_type="application/json")

    return handler


async def _close_read_models(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SERVICES].run(app[READ_MODELS].close)


def add_routes(app: web.Application) -> None:
    app[READ_MODELS] = app[SERVICES].read_models  # opens its store on the first report, not here
    app.cleanup_ctx.append(_close_read_models)
    for name in REPORTS:
        app.router.add_get(f"/api/v1/reports/{name}", report_handler(name))
