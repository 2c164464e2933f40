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
    """Links of a page, and its form controls that have no label (a screen reader could not name them)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.controls: dict[str, str] = {}  # id (or a description) -> tag, for controls without aria-label
        self.labelled: set[str] = set()
        self.label_depth = 0
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.labelled.add(str(a["for"]))
        control = tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit", "button")
        named = a.get("aria-label") or a.get("aria-labelledby") or a.get("title") or self.label_depth
        if control and not named:
            self.controls[str(a.get("id") or f"<{tag} name={a.get('name')}>")] = tag
        for name, value in attrs:
            if value and (
                (tag == "a" and name == "href") or (tag in ("img", "script", "link") and name in ("src", "href"))
            ):
                self.hrefs.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.label_depth:
            self.label_depth -= 1

    def unlabelled(self) -> list[str]:
        return sorted(c for c in self.controls if c not in self.labelled)


def crawl(request: Any, start: str, problems: dict[str, str] | None = None) -> dict[str, int]:
    """Status of every console URL reachable from `start` by links (breadth first, at most MAX_PAGES); pages that are
    not Vietnamese (`lang="vi"`) or have unlabelled form controls are added to `problems`."""
    seen: dict[str, int] = {}
    problems = {} if problems is None else problems
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
        if parser.lang != "vi" and response.status < 300:
            problems[url] = f"lang={parser.lang!r}"
        if parser.unlabelled():
            problems[url] = f"form controls without a label: {parser.unlabelled()}"
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
    problems: dict[str, str] = {}
    statuses = crawl(desktop.context.request, "/console/", problems)
    assert len(statuses) > 3, statuses
    broken = {url: status for url, status in statuses.items() if status >= 500}
    assert broken == {}, broken
    assert problems == {}, problems
    assert statuses["/console/"] == 200


def test_no_as_of_page_answers_5xx(desktop: Console) -> None:
    desktop.sign_in("mai.le")
    statuses = crawl(desktop.context.request, "/console/?asof=2026-01-01T00:00:00%2B07:00")
    broken = {url: status for url, status in statuses.items() if status >= 500}
    assert broken == {} and len(statuses) > 3, statuses
