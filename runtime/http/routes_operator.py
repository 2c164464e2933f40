"""The operator API (`/api/v1/...`): broadcasts, endpoints, areas and staff, for bearer-token holders.

Handlers are thin: authenticate, parse, call one use case (services/broadcasts.py, services/inventory.py) off the loop,
present (runtime/views.py). Roles and area scope are checked by the domain (domain/authority.py: an auditor reads
everything and changes nothing; a ward's staff act only on broadcasts wholly inside their wards, and read only what
reaches their wards).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from keng.adapters.city_source import parse_city_message
from keng.adapters.payload import JsonSchemaCheck
from keng.domain.area import day_start
from keng.domain.broadcast import FINAL_STATES, LIVE_STATES
from keng.domain.programme import VIETNAM_TZ
from keng.domain.staff import Staff
from keng.runtime.http.openapi_schemas import SCHEMAS
from keng.runtime.http.problems import Problem
from keng.runtime.http.services import SERVICES, Services
from keng.runtime.views import broadcast_view, endpoint_view, jsonable, staff_view
from keng.services import broadcasts
from keng.services.access import Unauthenticated, authenticate
from keng.services.inventory import readable_endpoints, record_equipment_event

JSON = "application/json"
STATES = LIVE_STATES + FINAL_STATES
FLAGS = ("1", "true", "0", "false")
REASON = JsonSchemaCheck(SCHEMAS["Reason"])  # the body of reject and cancel, as the document describes it
# The equipment lifecycle: per action, its body's schema and the field that carries the event's detail.
EQUIPMENT = {
    "fault": ("EquipmentFault", "fault"),
    "repair": ("EquipmentRepair", "note"),
    "convert": ("EquipmentConversion", "technology"),
    "decommission": ("EquipmentDecommission", "reason"),
    "portal-live": ("PortalLive", "url"),
}
EQUIPMENT_BODIES = {action: JsonSchemaCheck(SCHEMAS[schema]) for action, (schema, _) in EQUIPMENT.items()}


def bearer_token(request: web.Request) -> str:
    """The request's bearer token (not yet checked)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send 'Authorization: Bearer <token>' (create one with `keng token create`)")
    return token.strip()


async def current_staff(request: web.Request) -> Staff:
    """The staff member behind the request's bearer token."""
    token = bearer_token(request)
    services = request.app[SERVICES]
    return await services.run(lambda: authenticate(services.app, token))


async def json_body(request: web.Request) -> bytes:
    """The raw body of a JSON request (415 for another content type; aiohttp answers 413 past the size limit)."""
    if request.content_type != JSON:
        raise Problem(415, "unsupported-media-type", f"expected Content-Type {JSON}, got {request.content_type!r}")
    return await request.read()


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    """A query parameter that must be one of `choices` when given (400 naming them otherwise)."""
    value = request.query.get(name)
    if value is not None and value not in choices:
        raise Problem(
            400, "bad-request", f"query parameter {name!r} must be one of {', '.join(choices)}, got {value!r}"
        )
    return value


def _broadcast_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise Problem(404, "not-found", f"{request.match_info['id']!r} is not a broadcast id") from None


def _view(services: Services, bid: UUID) -> dict[str, Any]:
    return broadcast_view(services.app.broadcast(bid), services.settings.display_tz)


async def create_broadcast(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    fields = parse_city_message(await json_body(request))
    services = request.app[SERVICES]

    def draft() -> dict[str, Any]:
        return _view(services, broadcasts.draft(services.app, by=staff.handle, **fields))

    view = await services.run(draft)
    return web.json_response(view, status=201, headers={"Location": f"/api/v1/broadcasts/{view['id']}"})


async def revise_broadcast(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    changes = parse_city_message(await json_body(request), partial=True)
    bid, services = _broadcast_id(request), request.app[SERVICES]

    def revise() -> dict[str, Any]:
        broadcasts.revise(services.app, bid, by=staff.handle, **changes)
        return _view(services, bid)

    return web.json_response(await services.run(revise))


async def _reason(request: web.Request) -> str:
    return str(REASON.load(await json_body(request))["reason"])


async def act_on_broadcast(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    bid, action, services = _broadcast_id(request), request.match_info["action"], request.app[SERVICES]
    reason = await _reason(request) if action in ("retract", "reject", "cancel") else ""

    def act() -> dict[str, Any]:
        broadcasts.act(services.app, bid, action, by=staff.handle, reason=reason)
        return _view(services, bid)

    return web.json_response(await services.run(act))


async def get_broadcast(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    bid, services = _broadcast_id(request), request.app[SERVICES]
    item = await services.run(lambda: broadcasts.readable(services.app, bid, services.visibility_of(staff)))
    return web.json_response(broadcast_view(item, services.settings.display_tz))


async def list_broadcasts(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    services, state = request.app[SERVICES], query_choice(request, "state", STATES)
    unratified = query_choice(request, "unratified", FLAGS) in ("1", "true")
    items = await services.run(
        lambda: broadcasts.readable_list(services.catalog.current(), services.visibility_of(staff), state=state)
    )
    tz = services.settings.display_tz
    if not unratified:
        return web.json_response([broadcast_view(b, tz) for b in items])
    waiting = broadcasts.awaiting_ratification(items, within=services.ratify_within, now=services.app.clock())
    return web.json_response(
        [
            broadcast_view(u.broadcast, tz) | {"ratify_by": jsonable(u.due, tz), "ratification_overdue": u.overdue}
            for u in waiting
        ]
    )


async def list_endpoints(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    services = request.app[SERVICES]
    ward, kind = request.query.get("ward"), request.query.get("kind")
    items = await services.run(
        lambda: readable_endpoints(services.catalog.current(), services.visibility_of(staff), ward=ward, kind=kind)
    )
    return web.json_response([endpoint_view(e) for e in items])


def _day(value: str | None) -> date | None:
    """The body's `on` (the schema already held it to YYYY-MM-DD; a day that does not exist is named here)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(422, "invalid-payload", f"on must be a calendar day (YYYY-MM-DD), got {value[:40]!r}") from None


def equipment_handler(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of `POST /api/v1/endpoints/{code}/<action>` (one route per action, each documented)."""
    check, detail_field = EQUIPMENT_BODIES[action], EQUIPMENT[action][1]

    async def record_equipment(request: web.Request) -> web.Response:
        staff = await current_staff(request)
        code, services = request.match_info["code"], request.app[SERVICES]
        body = check.load(await json_body(request))
        on, cost = _day(body.get("on")), body.get("cost_vnd")
        if isinstance(cost, float) and cost.is_integer():  # JSON Schema's integer includes 2.0
            cost = int(cost)

        def record() -> dict[str, Any]:
            endpoint = record_equipment_event(
                services.app,
                code,
                action,
                by=staff.handle,
                on=on,
                cost_vnd=cost,
                detail=body.get(detail_field) or "",
                severity=body.get("severity", "broken"),
            )
            return endpoint_view(endpoint)

        return web.json_response(await services.run(record))

    return record_equipment


def query_instant(request: web.Request, name: str) -> datetime | None:
    """A query parameter naming an instant: an ISO 8601 time with a UTC offset, or a day (YYYY-MM-DD: its first
    instant, 00:00 Vietnam time, when changes of that day take effect); 400 otherwise."""
    value = request.query.get(name)
    if value is None:
        return None
    try:
        if len(value) == 10:
            return day_start(date.fromisoformat(value).isoformat())
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(
            400, "bad-request", f"query parameter {name!r} must be an ISO 8601 time or a day, got {value[:40]!r}"
        ) from None
    if parsed.tzinfo is None:
        raise Problem(400, "bad-request", f"query parameter {name!r} needs a UTC offset, got {value[:40]!r}")
    try:
        parsed.astimezone(VIETNAM_TZ)  # the day it falls on in Vietnam must exist (not past year 9999)
    except OverflowError:
        raise Problem(400, "bad-request", f"query parameter {name!r} is out of range, got {value[:40]!r}") from None
    return parsed


async def list_areas(request: web.Request) -> web.Response:
    await current_staff(request)
    services = request.app[SERVICES]
    at = query_instant(request, "at")
    items = await services.run(lambda: services.catalog.current().areas(at or services.app.clock()))
    return web.json_response(
        [
            {
                "code": a.code,
                "name": a.name,
                "level": a.level,
                "parent": a.parent,
                "lat": a.lat,
                "lon": a.lon,
                "valid_from": a.valid_from,
                "valid_to": a.valid_to,
            }
            for a in items
        ]
    )


async def list_staff(request: web.Request) -> web.Response:
    await current_staff(request)
    services = request.app[SERVICES]
    items = await services.run(lambda: services.catalog.current().staff())
    return web.json_response([staff_view(s) for s in items])


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/broadcasts", create_broadcast)
    r.add_get("/api/v1/broadcasts", list_broadcasts)
    r.add_get("/api/v1/broadcasts/{id}", get_broadcast)
    r.add_patch("/api/v1/broadcasts/{id}", revise_broadcast)
    r.add_post("/api/v1/broadcasts/{id}/{action:submit|approve|ratify|retract|reject|cancel}", act_on_broadcast)
    r.add_get("/api/v1/endpoints", list_endpoints)
    for action in EQUIPMENT:
        r.add_post(f"/api/v1/endpoints/{{code}}/{action}", equipment_handler(action))
    r.add_get("/api/v1/areas", list_areas)
    r.add_get("/api/v1/staff", list_staff)
