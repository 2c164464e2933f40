"""CAP 1.2 in (`POST /api/v1/cap`, signed like the webhooks) and out (`/cap/{id}.xml`, `/feeds/alerts.atom`,
`/feeds/alerts.json` for the citizen app with the full text of every spoken bulletin).

Inbound CAP is the use case `services.inbound.accept_cap_alert` (idempotent on `sender,identifier,sent`, per
integration; the same key with another body is 422; each accepted message recorded as an `Inbound` event tied to what
it did, in the same transaction); this module parses, calls and presents. Refusals (parse, validation, mapping,
jurisdiction, a sender or an alert the integration does not own) are 4xx problems and store nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from aiohttp import web

from keng.adapters.cap.errors import CapError, status_for
from keng.adapters.cap.feeds import atom_feed, feed_item, is_current_public, json_feed
from keng.adapters.cap.render import CAP_MEDIA_TYPE, broadcast_to_cap
from keng.domain.cap_places import CapRefused
from keng.domain.errors import AreaEnded
from keng.domain.values import BroadcastState
from keng.runtime.errors import headline_for
from keng.runtime.http.problems import Problem, problem_for
from keng.runtime.http.services import SERVICES, Services
from keng.services.cap_documents import attach_recording, original_document
from keng.services.inbound import CAP_SOURCE, accept_cap_alert

ACCEPTED_TYPES = (CAP_MEDIA_TYPE, "application/xml", "text/xml")
_TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("cap_tasks")


async def cap_ingest(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if request.content_type not in ACCEPTED_TYPES:
        raise Problem(415, "unsupported-media-type", f"expected {CAP_MEDIA_TYPE}, got {request.content_type!r}")
    raw = await request.read()
    now = services.wall_clock()
    try:
        accepted = await services.run(
            lambda: accept_cap_alert(services.intake, headers=request.headers, raw=raw, now=now)
        )
    except CapError as e:
        errors = [{"path": v.path, "message": v.message} for v in e.violations]
        detail = "; ".join([str(e), *(f"{v['path']}: {v['message']}" for v in errors[:20])])
        problem = Problem(status_for(e) or 422, "invalid-cap", detail, errors)
        services.metrics.webhooks.labels(CAP_SOURCE, "invalid-cap").inc()
        raise problem from None
    except CapRefused as e:
        services.metrics.webhooks.labels(CAP_SOURCE, "refused").inc()
        raise Problem(422, "cap-refused", str(e), headline_vi=headline_for(e)) from None
    except AreaEnded as e:  # a geocode whose unit had ended when the alert was sent: 422 naming its successors
        services.metrics.webhooks.labels(CAP_SOURCE, "refused").inc()
        raise problem_for(e) or e from None
    outcome, replayed = accepted.outcome, accepted.replayed
    services.metrics.webhooks.labels(CAP_SOURCE, "replayed" if replayed else "accepted").inc()
    if not replayed and outcome["broadcast_ids"]:
        # The alert's recording (inline, or fetched from its URI) is stored and recorded without delaying the 202.
        ids = [UUID(b) for b in outcome["broadcast_ids"]]
        hosts = frozenset(accepted.integration.fetch_hosts)
        task = asyncio.create_task(attach_recording(services.app, services.settings.data_dir, raw, ids, hosts))
        request.app[_TASKS].add(task)
        task.add_done_callback(request.app[_TASKS].discard)
    return web.json_response(outcome, status=202, headers={"Idempotent-Replayed": "true"} if replayed else None)


async def cap_document(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        bid = UUID(request.match_info["id"])
    except ValueError:
        raise Problem(404, "not-found", "not a broadcast id") from None

    def render() -> bytes:
        item = services.app.broadcast(bid)
        cancelled = item.state == BroadcastState.CANCELLED
        if not is_current_public(item, item.channels, services.app.clock()) and not cancelled:
            raise Problem(404, "not-found", "no public alert with this id")
        original = original_document(services.app, services.settings.data_dir, item) if not cancelled else None
        if original is not None:
            return original
        names = {a.code: a.name for a in services.area_cache.get().in_force(services.app.clock())}
        return broadcast_to_cap(item, area_names=names, base_url=services.public_url)

    # The document is sent as bytes in its own declared encoding (a kept original may be ISO-8859-1).
    return web.Response(body=await services.run(render), content_type=CAP_MEDIA_TYPE)


def _current_items(services: Services) -> list[Any]:
    now = services.app.clock()
    names = {a.code: a.name for a in services.area_cache.get().in_force(now)}
    return [
        feed_item(b, names) for b in services.catalog.current().broadcasts() if is_current_public(b, b.channels, now)
    ]


async def atom(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await services.run(lambda: atom_feed(_current_items(services), services.public_url))
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


async def json_items(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await services.run(lambda: json_feed(_current_items(services), services.public_url))
    return web.Response(body=body, content_type="application/feed+json", charset="utf-8")


async def _cancel_tasks(app: web.Application) -> None:
    tasks: set[asyncio.Task[None]] = app[_TASKS]
    for task in tuple(tasks):
        task.cancel()


def add_routes(app: web.Application) -> None:
    app[_TASKS] = set()
    app.on_shutdown.append(_cancel_tasks)
    app.router.add_post("/api/v1/cap", cap_ingest)
    app.router.add_get("/cap/{id}.xml", cap_document)
    app.router.add_get("/feeds/alerts.atom", atom)
    app.router.add_get("/feeds/alerts.json", json_items)
