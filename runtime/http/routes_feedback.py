"""Citizen feedback and "I heard it" confirmations from the app (signed), the staff's feedback routes (bearer), and
the delivery truth of a bulletin's pushes to portals and the app.

The use cases are services/feedback.py and services/pushes.py; a signed message is accepted as a city-source message
is (a replay answered 202 with its original outcome and `Idempotent-Replayed: true`, a reused id with another body
422). A feedback body may carry a photo, so it may be larger than other bodies (adapters/app_messages.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from aiohttp import web

from keng.adapters.app_messages import MAX_BODY_BYTES
from keng.adapters.payload import JsonSchemaCheck
from keng.domain.feedback import STATES, parse_due_days
from keng.runtime.http.openapi_feedback import FEEDBACK_SCHEMAS
from keng.runtime.http.problems import Problem
from keng.runtime.http.routes_operator import FLAGS, current_staff, json_body, query_choice
from keng.runtime.http.services import SERVICES, Services
from keng.runtime.views import feedback_view
from keng.services import feedback, pushes
from keng.services.inbound import Accepted

log = structlog.get_logger(__name__)
CHECKS = {n: JsonSchemaCheck(FEEDBACK_SCHEMAS[n]) for n in ("FeedbackTriage", "FeedbackReply", "FeedbackClose")}


async def _signed_body(request: web.Request, limit: int) -> bytes:
    if request.content_type != "application/json":
        raise Problem(415, "unsupported-media-type", f"expected application/json, got {request.content_type!r}")
    return await request.clone(client_max_size=limit).read()


def _answer(services: Services, source: str, accepted: Accepted) -> web.Response:
    replayed = accepted.replayed
    services.metrics.webhooks.labels(source, "replayed" if replayed else "accepted").inc()
    log.info("webhook.accepted", source=source, replayed=replayed, **accepted.outcome)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return web.json_response(accepted.outcome, status=202, headers=headers)


async def receive_feedback(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await _signed_body(request, max(MAX_BODY_BYTES, services.max_body_bytes))
    due = parse_due_days(services.settings.feedback_due)
    accepted = await services.run(
        lambda: feedback.accept_feedback(
            services.intake, headers=request.headers, body=body, now=services.wall_clock(), due_days=due
        )
    )
    return _answer(services, feedback.FEEDBACK_SOURCE, accepted)


async def receive_heard(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await _signed_body(request, services.max_body_bytes)
    accepted = await services.run(
        lambda: feedback.accept_heard(services.intake, headers=request.headers, body=body, now=services.wall_clock())
    )
    return _answer(services, feedback.HEARD_SOURCE, accepted)


def _feedback_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise Problem(404, "not-found", f"{request.match_info['id']!r} is not a feedback id") from None


async def list_feedback(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    services = request.app[SERVICES]
    state = query_choice(request, "state", STATES)
    overdue = query_choice(request, "overdue", FLAGS) in ("1", "true")
    rows = await services.run(lambda: feedback.readable(services.app, by=staff.handle, state=state, overdue=overdue))
    tz = services.settings.display_tz
    return web.json_response([feedback_view(r.item, tz, overdue=r.overdue) for r in rows])


async def get_feedback(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    services, fid = request.app[SERVICES], _feedback_id(request)
    item = await services.run(lambda: feedback.get(services.app, fid, by=staff.handle))
    tz = services.settings.display_tz
    return web.json_response(feedback_view(item, tz, overdue=item.overdue(services.app.clock())))


async def act_on_feedback(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    services, fid = request.app[SERVICES], _feedback_id(request)
    action = request.path.rstrip("/").rsplit("/", 1)[-1]
    data: dict[str, Any] = CHECKS[f"Feedback{action.capitalize()}"].load(await json_body(request))

    def act() -> dict[str, Any]:
        app = services.app
        if action == "triage":
            item = feedback.triage(app, fid, ward=data["ward"], by=staff.handle)
        elif action == "reply":
            item, _ = feedback.reply(app, fid, text=data["text"], by=staff.handle)
        else:
            item = feedback.close(app, fid, by=staff.handle, reason=data.get("reason", ""))
        return feedback_view(item, services.settings.display_tz, overdue=item.overdue(app.clock()))

    return web.json_response(await services.run(act))


async def broadcast_pushes(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    services = request.app[SERVICES]
    try:
        bid = UUID(request.match_info["id"])
    except ValueError:
        raise Problem(404, "not-found", f"{request.match_info['id']!r} is not a broadcast id") from None

    def summary() -> dict[str, Any]:
        from keng.services import broadcasts

        broadcasts.readable(services.app, bid, services.visibility_of(staff))
        return pushes.push_summary(pushes.pushes_of(services.app, str(bid)))

    return web.json_response(await services.run(summary))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/feedback", receive_feedback)
    r.add_get("/api/v1/feedback", list_feedback)
    r.add_get("/api/v1/feedback/{id}", get_feedback)
    for action in ("triage", "reply", "close"):
        r.add_post(f"/api/v1/feedback/{{id}}/{action}", act_on_feedback)
    r.add_post("/api/v1/heard", receive_heard)
    r.add_get("/api/v1/broadcasts/{id}/pushes", broadcast_pushes)
