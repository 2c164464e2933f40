"""Signed inbound webhooks. The signature is checked over the raw bytes before anything is parsed; the webhook id
is the idempotency key, kept in the event store (the Inbound aggregate): the inbound record and the broadcast it
creates are saved together (by group commit, so a burst shares fsyncs), and a second save of the same id collides
on the store's uniqueness constraint, which answers a replay with the original result and a reused id with another
body with 422. The 2xx is sent only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from aiohttp import web

from adapters.city_source import parse_city_message
from adapters.store.access import VerifiedInbound, record_inbound, replayed_outcome, verify_inbound
from adapters.store.errors import DuplicateRecord
from adapters.store.group_commit import Overloaded
from domain.broadcast import Broadcast
from domain.inbound import Inbound
from domain.standing_orders import first_match
from runtime.http.problems import Problem, problem_for
from runtime.http.services import SERVICES, Services

log = structlog.get_logger(__name__)
SOURCE = "city-source"


class NeedsStore(Exception):
    """Preparing this message needs the event store (a cache is stale, or a target is not in the area cache)."""


def prepare_city_message(
    services: Services, verified: VerifiedInbound, body: bytes, *, store_allowed: bool = True
) -> tuple[Inbound, Broadcast]:
    """The records a verified message creates: its broadcast (drafted and submitted for approval) and the inbound
    record that ties the broadcast to the message. Nothing is saved here. Without `store_allowed`, raises NeedsStore
    rather than read the store."""
    fields = parse_city_message(body)
    areas = services.area_cache.get()
    actor = verified.actor(areas)
    index = {a.code: a for a in areas}
    if not store_allowed and (fields["target_endpoints"] or any(c not in index for c in fields["target_areas"])):
        raise NeedsStore
    item = services.app.prepare_broadcast(
        actor, source_kind=SOURCE, source_ref=verified.verified.message_id, area_index=index, **fields
    )
    item.submit(by=actor)
    rule = first_match(services.standing_orders, sender=verified.integration.name, priority=item.priority)
    if rule:
        item.auto_approve(rule=rule, now=services.app.clock())
    outcome = {"broadcast_id": str(item.id), "state": item.state, "message_id": verified.verified.message_id}
    return record_inbound(SOURCE, verified, outcome), item


async def city_source(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    metrics = services.metrics.webhooks
    try:
        outcome, replayed = await _accept(request, services)
    except Exception as e:
        problem = problem_for(e)
        metrics.labels(SOURCE, problem.kind if problem else getattr(e, "kind", "error")).inc()
        raise
    metrics.labels(SOURCE, "replayed" if replayed else "accepted").inc()
    log.info("webhook.accepted", source=SOURCE, replayed=replayed, **outcome)
    return web.json_response(outcome, status=202, headers={"Idempotent-Replayed": "true"} if replayed else None)


async def _accept(request: web.Request, services: Services) -> tuple[dict[str, Any], bool]:
    if request.content_type != "application/json":
        raise Problem(415, "unsupported-media-type", f"expected application/json, got {request.content_type!r}")
    body = await request.read()
    now = services.wall_clock()

    def prepare(inline: bool) -> tuple[VerifiedInbound, Inbound, Broadcast] | tuple[VerifiedInbound, dict[str, Any]]:
        verified = verify_inbound(
            services.app, services.secrets, services.integrations(SOURCE), headers=request.headers, body=body, now=now
        )
        try:
            inbound, item = prepare_city_message(services, verified, body, store_allowed=not inline)
        except NeedsStore:
            raise
        except Exception:
            if inline:
                raise NeedsStore from None  # the replay lookup below reads the store: do it off the loop
            # A replay of an accepted message must get its original answer even if the rules changed since.
            earlier = replayed_outcome(services.app, SOURCE, verified)
            if earlier is not None:
                return verified, earlier
            raise
        return verified, inbound, item

    # The common case needs no store read (areas and integrations are cached; the write goes to the group
    # committer), so it runs on the loop: a thread hop per request measurably lengthened the tail under load.
    # Anything that would read the store goes to a worker thread, as the library's synchronous calls must.
    prepared = None
    if services.area_cache.fresh and services.integration_cache.fresh:
        with contextlib.suppress(NeedsStore):
            prepared = prepare(inline=True)
    if prepared is None:
        prepared = await services.run(lambda: prepare(inline=False))
    if len(prepared) == 2:
        return prepared[1], True
    verified, inbound, item = prepared
    try:
        await asyncio.wrap_future(services.committer.submit(inbound, item, what="this message"))
    except Overloaded as e:
        raise Problem(503, "overloaded", str(e)) from None
    except DuplicateRecord:
        earlier = await services.run(lambda: replayed_outcome(services.app, SOURCE, verified))
        if earlier is None:
            raise
        return earlier, True
    return inbound.outcome, False


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/hooks/city-source", city_source)
