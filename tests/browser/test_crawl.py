"""No console page answers 5xx for any role: every same-origin console link reachable from the overview is followed
(GET) as each role, in the live view and, for the auditor, in the as-of view. Refusals (403/404) are fine; a 5xx is
a bug."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.browser.conftest import Console, Site

ROLES = ("admin", "lan.nguyen", "hung.tran", "minh.pham", "ha.vu", "tuan.do", "mai.le")
MAX_PAGES = 250
SKIP = ("/console/stream",)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (
                (tag == "a" and name == "href") or (tag in ("img", "script", "link") and name in ("src", "href"))
            ):
                self.hrefs.append(value)


def crawl(request: Any, start: str) -> dict[str, int]:
    """Status of every console URL reachable from `start` by links (breadth first, at most MAX_PAGES)."""
    seen: dict[str, int] = {}
    queue = [start]
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if url in seen or url.startswith(SKIP):
            continue
        response = request.get(url, max_redirects=0)
        seen[url] = response.status
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        parser = _Links()
        parser.feed(response.text())
        for href in parser.hrefs:
            target = urljoin(url, href)
            parts = urlsplit(target)
            if parts.netloc and not target.startswith("http://127.0.0.1"):
                continue
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if path.startswith("/console") and path not in seen:
                queue.append(path)
    return seen


@pytest.mark.parametrize("handle", ROLES)
def test_no_console_page_answers_5xx_for_any_role(handle: str, desktop: Console, site: Site) -> None:
    desktop.sign_in(handle)
    statuses = crawl(desktop.context.request, "/console/")
    assert len(statuses) > 3, statuses
    broken = {url: status for url, status in statuses.items() if status >= 500}
    assert broken == {}, broken
    assert statuses["/console/"] == 200


def test_no_as_of_page_answers_5xx(desktop: Console) -> None:
    desktop.sign_in("mai.le")
    statuses = crawl(desktop.context.request, "/console/?asof=2026-01-01T00:00:00%2B07:00")
    broken = {url: status for url, status in statuses.items() if status >= 500}
    assert broken == {} and len(statuses) > 3, statuses
