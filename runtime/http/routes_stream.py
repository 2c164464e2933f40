"""Live status as server-sent events (`GET /api/v1/stream`, any staff token): broadcast state changes, dispatch
progress (acks recorded per state) and device transitions, read from the event log in order.

Each SSE message carries the log position as its `id`, so a client that reconnects with `Last-Event-ID` (or
`?since=N`) misses nothing; without either, the stream starts at the newest position.

A stream carries only what its holder may read (runtime/http/stream_scope.py), and lives only as long as its token:
the token is checked again every `REAUTH_S` seconds (a revocation made by any process on the same store ends the
stream), and at once when the log shows the token revoked or the holder's roles changed. The stream then ends with
a last `revoked` message saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import structlog
from aiohttp import web
from aiohttp_sse import sse_response

from keng.adapters.store.access import token_record_id
from keng.adapters.store.app import MAX_POSITION, Keng
from keng.domain.access import ApiToken
from keng.domain.staff import Staff
from keng.runtime.http.params import bounded_int
from keng.runtime.http.routes_operator import bearer_token, current_staff
from keng.runtime.http.services import SERVICES, Services
from keng.runtime.http.stream_scope import StreamScope
from keng.services.access import Unauthenticated, authenticate

POLL_S = 0.3
REAUTH_S = 2.0
log = structlog.get_logger(__name__)
_CLOSING = web.AppKey("stream_closing", asyncio.Event)
DEVICE_EVENTS = {
    "CameOnline",
    "WentOffline",
    "FaultReported",
    "Repaired",
    "ConvertedToIP",
    "Decommissioned",
    "PortalWentLive",
}


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
        if name == "Judged":
            return {**base, "verdict": event.verdict}
        return None
    if aggregate == "Endpoint" and name in DEVICE_EVENTS:
        return {**base, "endpoint_id": str(event.originator_id)}
    return None


@dataclass
class Batch:
    """What one read of the log gives a stream: the messages to send, the position reached, how many events were
    read, and why the stream must end (None: it goes on)."""

    messages: list[tuple[int, dict[str, Any]]]
    position: int
    read: int
    ended: str | None = None


class StreamSession:
    """One holder's stream: their token, checked again while it runs, and what they may see. Blocking (it reads the
    store): call its methods off the event loop."""

    def __init__(
        self, services: Services, staff: Staff, reauthenticate: Callable[[], Staff], token_id: UUID | None = None
    ) -> None:
        self.services, self.reauthenticate = services, reauthenticate
        self.token_id, self.staff_id = token_id, staff.id
        self.scope = StreamScope(services.app, services.visibility_of(staff))
        self.checked_at = time.monotonic()

    @classmethod
    def of_token(cls, services: Services, token: str, staff: Staff) -> StreamSession:
        """The stream of a bearer-token holder: it ends when the token is revoked."""
        return cls(services, staff, lambda: authenticate(services.app, token), token_record_id(token))

    def recheck(self) -> str | None:
        """Authenticate the holder again and refresh the reading scope; the reason it no longer holds, or None."""
        try:
            staff = self.reauthenticate()
        except Unauthenticated as e:
            return str(e)
        self.scope.update(self.services.visibility_of(staff))
        self.checked_at = time.monotonic()
        return None

    def next_batch(self, since: int) -> Batch:
        """The visible messages after `since` (at most 500 events read), stopping at the token's revocation."""
        ended = self.recheck() if time.monotonic() - self.checked_at >= REAUTH_S else None
        batch = Batch([], since, 0, ended)
        if ended is not None:
            return batch
        for pos, event in _read(self.services.app, since):
            batch.position, batch.read = pos, batch.read + 1
            if (
                self.token_id is not None
                and event.originator_id == self.token_id
                and isinstance(event, ApiToken.Revoked)
            ):
                batch.ended = "the bearer token was revoked"
                return batch
            if event.originator_id == self.staff_id and (ended := self.recheck()) is not None:
                batch.ended = ended  # the holder's roles changed: their scope is read again
                return batch
            # The scope sees every event (it learns scopes, owners and wards from them); the view picks what to carry.
            if self.scope.admits(event) and (view := stream_view(pos, event)) is not None:
                batch.messages.append((pos, view))
        return batch


def _read(app: Keng, since: int) -> list[tuple[int, Any]]:
    return list(app.read_events(since, limit=500))


def _start(request: web.Request, newest: int) -> int:
    """Where the stream starts: `Last-Event-ID` (a reconnect), else `?since=`, else the newest position. Both are
    checked when present, before the stream opens, so a bad value is a 400 and not a broken stream."""
    start = newest
    if "since" in request.query:
        start = bounded_int(request.query["since"], "query parameter 'since' (a log position)", lo=0, hi=MAX_POSITION)
    if request.headers.get("Last-Event-ID"):
        raw = request.headers["Last-Event-ID"]
        start = bounded_int(raw, "header Last-Event-ID (a log position)", lo=0, hi=MAX_POSITION)
    return start


async def stream(request: web.Request) -> web.StreamResponse:
    staff = await current_staff(request)
    services = request.app[SERVICES]
    app = services.app
    position = _start(request, await services.run(app.max_position))
    session = await services.run(lambda: StreamSession.of_token(services, bearer_token(request), staff))
    return await pump(request, staff, session, position)


async def pump(
    request: web.Request, staff: Staff, session: StreamSession, position: int, *, named: bool = True
) -> web.StreamResponse:
    """Send the session's messages from `position` on until the client leaves, the service stops or the session ends;
    `named`: each message's SSE event is its type (else every message is a plain `message`)."""
    closing = request.app[_CLOSING]
    async with sse_response(request, ping_interval=15) as response:
        while response.is_connected() and not closing.is_set():
            if request.transport is None or request.transport.is_closing():
                break  # the client went away
            batch = await asyncio.to_thread(session.next_batch, position)
            for pos, view in batch.messages:
                try:
                    await response.send(orjson.dumps(view).decode(), id=str(pos), event=view["type"] if named else None)
                except ConnectionResetError:  # the client went away mid-batch: not an error of ours
                    return response
            position = batch.position
            if batch.ended is not None:
                await _end(response, staff, batch)
                break
            if not batch.read:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), POLL_S)
    return response


async def _end(response: Any, staff: Staff, batch: Batch) -> None:
    log.info("stream.ended", staff=staff.handle, reason=batch.ended, position=batch.position)
    await response.send(orjson.dumps({"reason": batch.ended, "position": batch.position}).decode(), event="revoked")


async def _close_streams(app: web.Application) -> None:
    app[_CLOSING].set()


def start_position(request: web.Request, newest: int) -> int:
    """Where a stream starts (`Last-Event-ID`, else `?since=`, else the newest position)."""
    return _start(request, newest)


def add_closing(app: web.Application) -> None:
    """Let the streams of `app` end when the service shuts down."""
    app[_CLOSING] = asyncio.Event()
    app.on_shutdown.append(_close_streams)


def add_routes(app: web.Application) -> None:
    app[_CLOSING] = asyncio.Event()
    app.on_shutdown.append(_close_streams)  # open streams end before the server waits for its handlers
    app.router.add_get("/api/v1/stream", stream)
