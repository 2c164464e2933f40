"""Signed inbound webhooks: parse the request, call `services.inbound.accept_city_message`, present its outcome.

The use case (signature over the raw bytes, the webhook id as an idempotency key scoped to the integration, the
inbound record and its broadcast saved together by group commit, the common case on the event loop) is described in
services/inbound.py. A replay is answered 202 with its original outcome and `Idempotent-Replayed: true`; a reused id
with another body is 422. The 2xx is sent only after the commit.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from keng.runtime.http.problems import Problem, problem_for
from keng.runtime.http.services import SERVICES
from keng.services.inbound import CITY_SOURCE, accept_city_message

log = structlog.get_logger(__name__)


async def city_source(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    metrics = services.metrics.webhooks
    try:
        if request.content_type != "application/json":
            raise Problem(415, "unsupported-media-type", f"expected application/json, got {request.content_type!r}")
        body = await request.read()
        accepted = await accept_city_message(
            services.intake, headers=request.headers, body=body, now=services.wall_clock()
        )
    except Exception as e:
        problem = problem_for(e)
        metrics.labels(CITY_SOURCE, problem.kind if problem else getattr(e, "kind", "error")).inc()
        raise
    replayed = accepted.replayed
    metrics.labels(CITY_SOURCE, "replayed" if replayed else "accepted").inc()
    log.info("webhook.accepted", source=CITY_SOURCE, replayed=replayed, **accepted.outcome)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return web.json_response(accepted.outcome, status=202, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/hooks/city-source", city_source)
