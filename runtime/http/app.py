"""`create_app(services) -> web.Application`: the operator API, the signed webhooks, and the ops endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web

from keng.runtime.console.app import add_console
from keng.runtime.http import (
    routes_audio,
    routes_cap,
    routes_feedback,
    routes_hooks,
    routes_operator,
    routes_ops,
    routes_reports,
    routes_stream,
)
from keng.runtime.http.openapi import openapi_document
from keng.runtime.http.problems import PROBLEM_TYPE, Problem, preferred_language, problem_for
from keng.runtime.http.query_names import QueryNames
from keng.runtime.http.services import SERVICES, Services

log = structlog.get_logger(__name__)
QUERY_NAMES = web.AppKey("query_names", QueryNames)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_KIND_BY_STATUS = {
    400: "bad-request",
    404: "not-found",
    413: "body-too-large",
    415: "unsupported-media-type",
}


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def problems_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One canonical log line and metric per request; every error becomes a problem document (in the language the
    request prefers)."""
    services = request.app[SERVICES]
    started = time.perf_counter()
    route = _route_name(request)
    problem: Problem | None = None
    try:
        request.app[QUERY_NAMES].check(request)
        response = await handler(request)
    except Problem as p:
        problem = p
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        detail = f"{e.method} is not allowed on {request.path} (allowed: {allowed})"
        problem = Problem(405, "method-not-allowed", detail, headers={"Allow": allowed})
    except web.HTTPException as e:
        if e.status < 400:
            raise
        problem = Problem(e.status, _KIND_BY_STATUS.get(e.status, "http-error"), e.text or e.reason)
    except Exception as e:
        problem = problem_for(e)
        if problem is None:
            log.exception("http.unhandled", route=route, method=request.method)
            problem = Problem(500, "internal-error", "an unexpected error occurred; it has been logged")
    if problem is not None:
        response = problem.response(preferred_language(request.headers.get("Accept-Language")))
    elapsed = time.perf_counter() - started
    services.metrics.requests.labels(route, request.method, str(response.status)).inc()
    services.metrics.latency.labels(route).observe(elapsed)
    log.info(
        "http.request", method=request.method, route=route, status=response.status, latency_ms=round(elapsed * 1000, 2)
    )
    return response


async def _close_committer(app: web.Application) -> AsyncIterator[None]:
    yield
    # Finish the queued writes (each caller is still waiting for its commit) before the process exits.
    await asyncio.to_thread(app[SERVICES].committer.close)


def create_app(services: Services) -> web.Application:
    """The aiohttp application over the given services."""
    app = web.Application(client_max_size=services.max_body_bytes, middlewares=[problems_and_metrics])
    app[SERVICES] = services
    app[QUERY_NAMES] = QueryNames(openapi_document())
    app.cleanup_ctx.append(_close_committer)
    routes_ops.add_routes(app)
    routes_operator.add_routes(app)
    routes_hooks.add_routes(app)
    routes_audio.add_routes(app)
    routes_cap.add_routes(app)
    routes_stream.add_routes(app)
    routes_reports.add_routes(app)
    routes_feedback.add_routes(app)
    add_console(app, services)
    return app


__all__ = ["PROBLEM_TYPE", "create_app"]
