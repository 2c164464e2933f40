"""Signed inbound webhooks. The signature is checked over the raw bytes before anything is parsed; the webhook id
is the idempotency key, kept in the event store (the Inbound aggregate), so a replay returns the original result and
a reused id with another body is refused (422). The inbound record and what it created are saved in one transaction.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from adapters.city_source import parse_city_message
from adapters.store.access import (
    VerifiedInbound,
    record_inbound,
    replayed_outcome,
    verify_inbound,
)
from adapters.store.errors import DuplicateRecord
from domain.access import Integration
from runtime.http.problems import Problem, problem_for
from runtime.http.services import SERVICES, Services

log = structlog.get_logger(__name__)
SOURCE = "city-source"


def integrations_of(services: Services, kind: str) -> list[Integration]:
    """Integrations of a kind, with their active secret fingerprints."""
    found = services.app.aggregates_of(Integration.Added, Integration.SecretIssued, Integration.SecretRetired)
    return [i for i in found.values() if i.kind == kind]


def accept_city_message(services: Services, verified: VerifiedInbound, body: bytes) -> tuple[dict[str, Any], bool]:
    """Create the broadcast a verified message asks for (submitted for approval); returns (outcome, replayed)."""
    app = services.app
    earlier = replayed_outcome(app, SOURCE, verified)
    if earlier is not None:
        return earlier, True
    fields = parse_city_message(body)
    actor = verified.actor(services.area_cache.get())
    item = app.prepare_broadcast(actor, source_kind=SOURCE, source_ref=verified.verified.message_id, **fields)
    item.submit(by=actor)
    outcome = {"broadcast_id": str(item.id), "state": item.state, "message_id": verified.verified.message_id}
    try:
        app.save_new(record_inbound(SOURCE, verified, outcome), item, what="this message")
    except DuplicateRecord:
        # The same id raced another request: answer as a replay (or refuse a different body).
        earlier = replayed_outcome(app, SOURCE, verified)
        if earlier is None:
            raise
        return earlier, True
    return outcome, False


async def city_source(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    metrics = services.metrics.webhooks
    if request.content_type != "application/json":
        metrics.labels(SOURCE, "unsupported-media-type").inc()
        raise Problem(415, "unsupported-media-type", f"expected application/json, got {request.content_type!r}")
    body = await request.read()
    now = services.wall_clock()

    def handle() -> tuple[dict[str, Any], bool]:
        verified = verify_inbound(
            services.app,
            services.secrets,
            integrations_of(services, SOURCE),
            headers=request.headers,
            body=body,
            now=now,
        )
        return accept_city_message(services, verified, body)

    try:
        outcome, replayed = await services.run(handle)
    except Exception as e:
        problem = problem_for(e)
        metrics.labels(SOURCE, problem.kind if problem else "error").inc()
        raise
    metrics.labels(SOURCE, "replayed" if replayed else "accepted").inc()
    log.info("webhook.accepted", source=SOURCE, replayed=replayed, **outcome)
    return web.json_response(outcome, status=202, headers={"Idempotent-Replayed": "true"} if replayed else None)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/hooks/city-source", city_source)
