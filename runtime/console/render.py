"""Templates of the console (jinja2, autoescaped), their filters (Vietnamese labels, dates and numbers) and the
navigation each person sees (only what their roles allow)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jinja2
from aiohttp import web

from keng.runtime.console import data, labels
from keng.runtime.console.session import PERSON, Person
from keng.runtime.http.services import SERVICES

ENV = web.AppKey("console_templates", jinja2.Environment)


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    key: str


def navigation(person: Person | None) -> list[NavItem]:
    """The menu of a person: every page family they may use."""
    if person is None:
        return []
    items = [NavItem("/console/", "Tổng quan", "home"), NavItem("/console/broadcasts", "Bản tin", "broadcasts")]
    if person.can_draft:
        items.append(NavItem("/console/compose", "Soạn tin", "compose"))
    if person.can_approve:
        items.append(NavItem("/console/approvals", "Chờ duyệt", "approvals"))
    items.append(NavItem("/console/devices", "Thiết bị", "devices"))
    if person.can_audit:
        items += [
            NavItem("/console/reports", "Báo cáo", "reports"),
            NavItem("/console/audit", "Kiểm toán", "audit"),
            NavItem("/console/inbound", "Tin đến", "inbound"),
        ]
    return items


def environment(display_tz: Any) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("keng.runtime.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        vn_time=partial(labels.vn_time, tz=display_tz),
        vn_time_s=partial(labels.vn_time, tz=display_tz, seconds=True),
        vn_date=partial(labels.vn_date, tz=display_tz),
        vn_number=labels.vn_number,
        vn_percent=labels.vn_percent,
        state_vi=partial(labels.label, labels.STATES),
        priority_vi=partial(labels.label, labels.PRIORITIES),
        channel_vi=partial(labels.label, labels.CHANNELS),
        role_vi=partial(labels.label, labels.ROLES),
        ack_vi=partial(labels.label, labels.ACKS),
        device_vi=partial(labels.label, labels.DEVICE_STATUS),
        kind_vi=partial(labels.label, labels.ENDPOINT_KINDS),
    )
    return env


def render(
    request: web.Request, template: str, *, status: int = 200, title: str = "", active: str = "", **context: Any
) -> web.Response:
    """A page: `template` in the console layout, for the signed-in person (if any)."""
    found = request.get(PERSON)
    who = found if isinstance(found, Person) else None
    values = {
        "person": who,
        "csrf": who.csrf if who else context.pop("csrf", ""),
        "nav": navigation(who),
        "active": active,
        "title": title,
        "as_of": data.as_of(request),
        "link": partial(data.link, request),
        **context,
    }
    html = request.app[ENV].get_template(template).render(values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def display_tz(request: web.Request) -> Any:
    return request.app[SERVICES].settings.display_tz
