"""`GET /console/approvals` (approvers only): what waits for the person's approval, oldest submission first — the
submitted broadcasts they may read and the domain would let them approve — apart from those they wrote themselves
(four-eyes: listed with the reason, for them to follow), and the standing-order approvals awaiting ratification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from keng.domain.broadcast import Broadcast
from keng.domain.errors import ExpiredBroadcast, SelfApprovalRefused
from keng.runtime.console import data
from keng.runtime.console.pages.broadcast import only_query
from keng.runtime.console.render import render
from keng.runtime.console.review import FOUR_EYES, Names, four_eyes, trial
from keng.runtime.console.session import person
from keng.runtime.http.services import SERVICES, Services
from keng.services import broadcasts

SUBMISSIONS = frozenset({"SubmittedForApproval", "Revised"})  # the events that (re)submit a broadcast


@dataclass(frozen=True)
class Waiting:
    """A broadcast in the queue: since when it waits, and whether it has already expired."""

    b: Broadcast
    submitted_at: datetime
    expired: bool = False


def _submitted_at(services: Services, b: Broadcast, until: datetime | None) -> datetime:
    """When the current revision was (re)submitted: the newest submission or revision event up to `until`."""
    at: datetime = b.created_on
    events: list[Any] = list(services.app.repository.event_store.get(b.id))
    for event in events:
        if until is not None and event.timestamp > until:
            break
        if type(event).__qualname__.rpartition(".")[2] in SUBMISSIONS:
            at = event.timestamp
    return at


async def approvals(request: web.Request) -> web.Response:
    only_query(request)
    who, services = person(request), request.app[SERVICES]
    if not who.can_approve:
        raise web.HTTPForbidden(text="Chỉ cán bộ có vai trò duyệt tin mới xem được hàng chờ duyệt.")
    catalog = await data.catalog(request)
    now, moment = data.now(request), data.as_of(request)
    until = moment.at if moment else None

    def read() -> dict[str, Any]:
        queue, mine = [], []
        for b in broadcasts.readable_list(catalog, who.visibility, state="submitted"):
            refusal = trial(b, lambda x: x.approve(by=who.staff, now=now))
            if four_eyes(b, who.handle) or isinstance(refusal, SelfApprovalRefused):
                mine.append(Waiting(b, _submitted_at(services, b, until)))
            elif refusal is None or isinstance(refusal, ExpiredBroadcast):
                queue.append(Waiting(b, _submitted_at(services, b, until), expired=refusal is not None))
        readable = broadcasts.readable_list(catalog, who.visibility)
        ratify = [
            u for u in broadcasts.awaiting_ratification(readable, within=services.ratify_within, now=now)
            if trial(u.broadcast, lambda x: x.ratify(by=who.staff)) is None
        ]  # fmt: skip
        return {
            "queue": sorted(queue, key=lambda w: w.submitted_at),
            "mine": sorted(mine, key=lambda w: w.submitted_at),
            "ratify": sorted(ratify, key=lambda u: u.due or now),
            "n": Names(services.area_cache.get().in_force(now), catalog.staff(), services.settings.display_tz),
        }

    context = await services.run(read)
    return render(request, "approvals.html", title="Chờ duyệt", active="approvals", four_eyes=FOUR_EYES, **context)


def add_routes(console: web.Application) -> None:
    console.router.add_get("/approvals", approvals)
