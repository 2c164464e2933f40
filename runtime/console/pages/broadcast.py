"""One broadcast: `GET /console/broadcasts/{id}` (content, targets, approvals, renders, revision history with diffs,
the commands the person may give, live delivery), `POST /console/broadcasts/{id}/{action}` (submit, approve, ratify,
reject, cancel: services/broadcasts.py decides), `GET /console/broadcasts/{id}/progress` (the live delivery panel, an
HTML fragment that console.js reloads on every message of the event stream) and `GET /console/broadcasts/{id}/audio/
{key}` (the speaker render, through a short-lived signed link to `/audio/{key}`: the session stands in for a token).

A broadcast the person may not read is answered as one that does not exist (404), as the API does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aiohttp import web

from keng.adapters.audio_store import lookup
from keng.adapters.store.errors import NotFound
from keng.domain.broadcast import Broadcast
from keng.domain.errors import SelfApprovalRefused
from keng.projections import queries
from keng.runtime.console import data
from keng.runtime.console.render import render
from keng.runtime.console.review import COMMANDS, FOUR_EYES, Names, four_eyes, progress, refusals
from keng.runtime.console.session import person
from keng.runtime.errors import entry_for
from keng.runtime.http.services import SERVICES, Services
from keng.services import broadcasts

AUDIO_LINK_TTL = timedelta(minutes=15)
MAX_REASON = 1000
ACTION_PATTERN = "|".join(COMMANDS)


def broadcast_id(request: web.Request) -> UUID:
    """The id in the path; a malformed one is a page that does not exist."""
    raw = request.match_info["id"]
    try:
        return UUID(raw)
    except ValueError:
        raise web.HTTPNotFound(text=f"Không có bản tin nào mang mã {raw[:60]!r}.") from None


def only_query(request: web.Request, *allowed: str) -> None:
    """Refuse query parameters the page does not know (400), so that a typo is not silently ignored."""
    unknown = sorted(set(request.query) - {"asof", *allowed})
    if unknown:
        raise web.HTTPBadRequest(text=f"Trang này không nhận tham số {', '.join(unknown)}.")


async def load(request: web.Request, bid: UUID) -> Broadcast:
    """The broadcast as the page shows it (live, or as of the request's instant), if the person may read it."""
    who, services = person(request), request.app[SERVICES]
    if data.as_of(request) is None:
        return await services.run(lambda: broadcasts.readable(services.app, bid, who.visibility))
    catalog = await data.catalog(request)
    found = catalog.aggregates.get(bid)
    if not isinstance(found, Broadcast) or not who.visibility.sees(found.scope):
        raise NotFound(f"broadcast {bid} not found")
    return found


async def names(request: web.Request) -> Names:
    services = request.app[SERVICES]
    catalog = await data.catalog(request)
    at = data.now(request)
    return await services.run(
        lambda: Names(services.area_cache.get().in_force(at), catalog.staff(), services.settings.display_tz)
    )


def _delivery(bid: UUID) -> Any:
    def read(store: Any) -> dict[str, Any] | None:
        try:
            return queries.delivery(store, str(bid))
        except KeyError:  # the read models have not seen the broadcast yet
            return None

    return read


async def live_panel(request: web.Request, b: Broadcast, who_names: Names) -> dict[str, Any]:
    report = await data.read_models(request, _delivery(b.id))
    return {"live": progress(b, report, who_names)}


def _events(services: Services, bid: UUID) -> list[Any]:
    return list(services.app.repository.event_store.get(bid))


async def page(
    request: web.Request, bid: UUID, *, status: int = 200, error: str = "", error_detail: str = "",
    reason: str = "", failed: str = "",
) -> web.Response:  # fmt: skip
    who, services = person(request), request.app[SERVICES]
    b = await load(request, bid)
    n = await names(request)
    moment = data.as_of(request)
    now = data.now(request)
    events = await services.run(lambda: _events(services, bid))
    allowed = {} if moment is not None else refusals(b, who.staff, now)
    buttons = [name for name in COMMANDS if name in allowed and allowed[name] is None]
    self_approval = four_eyes(b, who.handle) or isinstance(allowed.get("approve"), SelfApprovalRefused)
    done = request.query.get("done", "")
    current = [r for r in b.renders if r["channel"] == "speaker" and r["revision"] == b.revision]
    context = {
        "b": b,
        "n": n,
        "history": n.history(events, moment.at if moment else None),
        "buttons": buttons,
        "commands": COMMANDS,
        "may_edit": moment is None and allowed.get("revise") is None and who.can_draft,
        "four_eyes": FOUR_EYES if self_approval and moment is None else "",
        "notice": COMMANDS[done].done if done in COMMANDS else "",
        "error": error,
        "error_detail": error_detail,
        "reason": reason,
        "failed": failed,
        "speaker_audio": current[-1] if current else None,
        "max_reason": MAX_REASON,
        **await live_panel(request, b, n),
    }
    return render(request, "broadcast.html", status=status, title=b.title, active="broadcasts", **context)


async def show(request: web.Request) -> web.Response:
    only_query(request, "done")
    done = request.query.get("done")
    if done is not None and done not in COMMANDS:
        raise web.HTTPBadRequest(text=f"'done' phải là một trong {', '.join(COMMANDS)}.")
    return await page(request, broadcast_id(request))


async def act(request: web.Request) -> web.StreamResponse:
    who, services = person(request), request.app[SERVICES]
    bid, action = broadcast_id(request), request.match_info["action"]
    command = COMMANDS[action]
    form = await request.post()
    reason = str(form.get("reason", "")).strip() if command.reason else ""
    if command.reason and not reason:
        return await page(request, bid, status=400, failed=action,
                          error="Hãy ghi lý do trước khi " + command.button.lower() + ".")  # fmt: skip
    if len(reason) > MAX_REASON:
        return await page(request, bid, status=400, failed=action, reason=reason[:MAX_REASON],
                          error=f"Lý do dài quá {MAX_REASON} ký tự.")  # fmt: skip

    def run() -> None:
        broadcasts.readable(services.app, bid, who.visibility)  # one the person may not read does not exist
        broadcasts.act(services.app, bid, action, by=who.handle, reason=reason)

    try:
        await services.run(run)
    except NotFound:
        raise
    except Exception as e:
        entry = entry_for(e)
        if entry is None or entry.status is None:
            raise
        headline = FOUR_EYES if isinstance(e, SelfApprovalRefused) else entry.headline_vi
        return await page(request, bid, status=entry.status, error=headline, error_detail=str(e), reason=reason,
                          failed=action)  # fmt: skip
    raise web.HTTPSeeOther(f"/console/broadcasts/{bid}?done={action}")


async def progress_fragment(request: web.Request) -> web.Response:
    only_query(request)
    b = await load(request, broadcast_id(request))
    context = await live_panel(request, b, await names(request))
    return render(request, "broadcast_progress.html", b=b, **context)


async def audio(request: web.Request) -> web.StreamResponse:
    """The speaker render of a broadcast the person may read: a redirect to a signed link valid for a few minutes."""
    only_query(request)
    services = request.app[SERVICES]
    b = await load(request, broadcast_id(request))
    key = request.match_info["key"]
    if key not in {r["asset_hash"] for r in b.renders if r["channel"] == "speaker"}:
        raise web.HTTPNotFound(text="Bản tin này không có tệp âm thanh đó.")
    if await services.run(lambda: lookup(services.settings.data_dir / "assets", key, "mp3")) is None:
        raise web.HTTPNotFound(text="Tệp âm thanh chưa có trên máy chủ.")
    expires = datetime.fromtimestamp(services.wall_clock(), UTC) + AUDIO_LINK_TTL
    raise web.HTTPSeeOther(f"/audio/{key}?{services.audio_links.query(key, expires)}")


def add_routes(console: web.Application) -> None:
    console.router.add_get("/broadcasts/{id}", show)
    console.router.add_post("/broadcasts/{id}/{action:" + ACTION_PATTERN + "}", act)
    console.router.add_get("/broadcasts/{id}/progress", progress_fragment)
    console.router.add_get("/broadcasts/{id}/audio/{key}", audio)
