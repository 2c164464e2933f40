"""Live status as server-sent events (`GET /api/v1/stream`, any staff token): broadcast state changes, dispatch
progress (acks recorded per state) and device transitions, read from the event log in order.

Each SSE message carries the log position as its `id`, so a client that reconnects with `Last-Event-ID` (or
`?since=N`) misses nothing; without either, the stream starts at the newest position.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import orjson
from aiohttp import web
from aiohttp_sse import sse_response

from adapters.store.app import MAX_POSITION, Keng
from runtime.http.params import bounded_int
from runtime.http.routes_operator import current_staff
from runtime.http.services import SERVICES

POLL_S = 0.3
_CLOSING = web.AppKey("stream_closing", asyncio.Event)
DEVICE_EVENTS = {"CameOnline", "WentOffline", "FaultReported", "Repaired", "ConvertedToIP", "Decommissioned"}


def stream_view(position: int, event: Any) -> dict[str, Any] | None:
    """The live-status message for one event, or None for events the stream does not carry."""
    aggregate, _, name = type(event).__qualname__.rpartition(".")
    base: dict[str, Any] = {
        "position": position,
        "type": f"{aggregate}.{name}",
        "time": event.timestamp.isoformat(timespec="milliseconds"),
    }
    if aggregate == "Broadcast":
        return {**base, "broadcast_id": str(event.originator_id), "by": getattr(event, "by", None)}
    if aggregate == "Dispatch":
        base["dispatch_id"] = str(event.originator_id)
        if name == "Opened":
            return {
                **base,
                "broadcast_id": str(event.broadcast_id),
                "priority": event.priority,
                "targets": len(event.targets),
            }
        if name == "AcksRecorded":
            return {**base, "acks": len(event.acks), "by_state": dict(Counter(a["state"] for a in event.acks))}
        if name == "Closed":
            return {**base, "summary": event.summary}
        return None
    if aggregate == "Endpoint" and name in DEVICE_EVENTS:
        return {**base, "endpoint_id": str(event.originator_id)}
    return None


def _read(app: Keng, since: int) -> list[tuple[int, Any]]:
    return list(app.read_events(since, limit=500))


def _start(request: web.Request, newest: int) -> int:
    """Where the stream starts: `Last-Event-ID` (a reconnect), else `?since=`, else the newest position. Checked
    before the stream opens, so a bad value is a 400 and not a broken stream."""
    if request.headers.get("Last-Event-ID"):
        name, raw = "header Last-Event-ID", request.headers["Last-Event-ID"]
    elif "since" in request.query:
        name, raw = "query parameter 'since'", request.query["since"]
    else:
        return newest
    return bounded_int(raw, f"{name} (a log position)", lo=0, hi=MAX_POSITION)


async def stream(request: web.Request) -> web.StreamResponse:
    await current_staff(request)
    services = request.app[SERVICES]
    app = services.app
    position = _start(request, await services.run(app.max_position))
    closing = request.app[_CLOSING]
    async with sse_response(request, ping_interval=15) as response:
        while response.is_connected() and not closing.is_set():
            if request.transport is None or request.transport.is_closing():
                break  # the client went away
            batch = await asyncio.to_thread(_read, app, position)
            for pos, event in batch:
                view = stream_view(pos, event)
                if view is not None:
                    try:
                        await response.send(orjson.dumps(view).decode(), id=str(pos), event=view["type"])
                    except ConnectionResetError:  # the client went away mid-batch: not an error of ours
                        return response
                position = pos
            if not batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), POLL_S)
    return response


async def _close_streams(app: web.Application) -> None:
    app[_CLOSING].set()


def add_routes(app: web.Application) -> None:
    app[_CLOSING] = asyncio.Event()
    app.on_shutdown.append(_close_streams)  # open streams end before the server waits for its handlers
    app.router.add_get("/api/v1/stream", stream)
