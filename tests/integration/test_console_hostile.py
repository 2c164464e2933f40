"""A hostile review of the console over real HTTP: malformed bodies and instants, forged and cross-origin posts,
redirect targets, sessions (static files, revoked roles, lock-out through the token form, sign out everywhere ending
the live stream), bounded as-of replays and streams, security headers on every answer. Each input of any kind gets a
4xx at worst, never a 5xx, and a later normal read still works."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keng.adapters.passwords import PasswordStore
from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.runtime.config import load_settings
from keng.runtime.console import data
from keng.runtime.console.pages import stream as console_stream
from keng.runtime.console.pages.signin import _safe_next
from keng.runtime.http.services import Services
from keng.services.access import issue_token, revoke_role
from keng.services.credentials import set_password
from tests.http_server import serve
from tests.integration.test_console_review import CSRF, STAFF, Browser, drafted

PASSWORD = "mật khẩu dài đủ 12"


@dataclass
class Site:
    app: Keng
    port: int
    tokens: dict[str, str]

    def browser(self, handle: str) -> Browser:
        return Browser(self.port).sign_in(self.tokens[handle])

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        who: Browser | None = None,
    ) -> tuple[int, dict[str, str], str]:
        hdrs = dict(headers or {})
        if who is not None:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in who.cookies.items())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            answer: dict[str, str] = {}
            for name, value in r.getheaders():  # repeated headers (Set-Cookie) joined by newlines
                answer[name.lower()] = answer[name.lower()] + "\n" + value if name.lower() in answer else value
            return r.status, answer, r.read().decode("utf-8", "replace")
        finally:
            conn.close()


@pytest.fixture
def site(sample_app: Keng, tmp_path: Path) -> Iterator[Site]:
    settings_ = load_settings(data_dir=str(tmp_path), environ={})
    tokens = {h: issue_token(sample_app, staff=h, label="test", by="admin") for h in STAFF}
    set_password(sample_app, PasswordStore(tmp_path), handle="tuan.do", password=PASSWORD, by="system")
    services = Services(app=sample_app, secrets=SecretStore(tmp_path), settings=settings_)
    with serve(services) as client:
        yield Site(sample_app, client.port, tokens)


# -- bodies and instants -------------------------------------------------------------------------------------------


def test_bodies_that_are_not_forms_of_their_type_are_400_not_500(site: Site) -> None:
    bid = drafted(site.app)
    hung = site.browser("hung.tran")
    before = site.app.max_position()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    multipart = {"Content-Type": "multipart/form-data; boundary=XX"}
    for path in (
        f"/console/broadcasts/{bid}/approve",
        "/console/compose",
        "/console/spoken",
        "/console/sign-out",
        "/console/sign-in",
        "/console/sign-in/token",
        "/console/compose/preview-board",
    ):
        not_utf8 = b"\xff\xfe=\xff&csrf=" + hung.csrf.encode()
        assert site.raw("POST", path, not_utf8, form, hung)[0] == 400, path
        # With the token in the header the middleware still reads the body first: the handler never sees it broken.
        assert site.raw("POST", path, not_utf8, {**form, "X-CSRF-Token": hung.csrf}, hung)[0] == 400, path
        assert site.raw("POST", path, b"no boundary here", multipart, hung)[0] == 400, path
    assert site.app.max_position() == before and site.app.broadcast(bid).state == "submitted"
    # A well-formed multipart form with the token is an ordinary form.
    body = b'--XX\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n' + hung.csrf.encode() + b"\r\n--XX--\r\n"
    assert site.raw("POST", f"/console/broadcasts/{bid}/approve", body, multipart, hung)[0] == 303
    assert site.app.broadcast(bid).state == "approved"


@pytest.mark.parametrize(
    "instant",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59",
        "1900-01-01T00:00",
        "2999-01-01T00:00:00+07:00",
    ],
)
def test_as_of_instants_that_cannot_be_shown_are_400(site: Site, instant: str) -> None:
    mai = site.browser("mai.le")
    for path in ("/console/", "/console/broadcasts", "/console/reports", "/console/reports/kpi.csv"):
        page = mai.get(f"{path}?asof={quote(instant)}")
        assert page.status == 400, (path, page.status)
        assert "asof" in page.text
    assert mai.get("/console/?asof=1970-01-02T00:00:00%2B00:00").status == 200  # before the store: an empty console
    assert mai.get("/console/").status == 200


def test_as_of_reads_beyond_the_limit_are_refused_not_queued(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    mai = site.browser("mai.le")
    monkeypatch.setattr(data, "MAX_IN_FLIGHT", 0)  # as if the allowed replays were all running
    page = mai.get("/console/broadcasts?asof=2026-01-01T00:00:00%2B07:00")
    assert page.status == 429 and page.headers["retry-after"] == "5" and "thử lại" in page.text
    assert mai.get("/console/broadcasts").status == 200  # the live console is untouched


def test_as_of_posts_are_refused(site: Site) -> None:
    bid = drafted(site.app)
    status, _, _ = site.raw("POST", f"/console/broadcasts/{bid}/cancel?asof=2026-01-01T00:00", b"", None)
    assert status == 401  # no session
    mai = site.browser("mai.le")
    assert mai.post(f"/console/broadcasts/{bid}/cancel?asof=2026-01-01T00:00%2B07:00", reason="x").status == 409
    assert site.app.broadcast(bid).state == "submitted"


# -- redirects, headers, sessions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "/console/../../evil",
        "/console/%2e%2e/%2e%2e/evil",
        "/console/..%2f..%2fx",
        "https://evil.example/",
        "/console/\r\nX-Evil: 1",
        "/console/\x00",
        "/console\\..\\x",
        " /console/",
    ],
)
def test_the_sign_in_target_never_leaves_the_console(target: str) -> None:
    assert _safe_next(target) == "/console/"


def test_sign_in_targets_inside_the_console_are_kept(site: Site) -> None:
    assert _safe_next("/console/broadcasts?state=submitted") == "/console/broadcasts?state=submitted"
    assert _safe_next("/console/devices/L%C3%A0ng-01") == "/console/devices/L%C3%A0ng-01"
    b = Browser(site.port)
    form = b.get("/console/sign-in?next=" + quote("/console/../../evil", safe=""))
    assert 'value="/console/"' in form.text
    pre = CSRF.search(form.text)
    assert pre is not None
    done = b.send(
        "POST",
        "/console/sign-in/token",
        {"csrf": pre.group(1), "token": site.tokens["hung.tran"], "next": "/console/%2e%2e/evil"},
    )
    assert done.status == 303 and done.headers["location"] == "/console/"


def test_every_answer_carries_the_security_headers(site: Site) -> None:
    hung = site.browser("hung.tran")
    for path, who in [
        ("/", None),
        ("/index.html", None),
        ("/console", None),
        ("/console/", None),
        ("/console/static/console.css", hung),
        ("/console/static/nope.css", None),
        ("/console/nope", hung),
        ("/console/sign-in", None),
        ("/console/broadcasts/x%ZZ", hung),
    ]:
        status, headers, _ = site.raw("GET", path, who=who)
        assert status < 500, path
        assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), path
        assert headers.get("x-content-type-options") == "nosniff", path
        if not path.startswith("/console/static/") and path.startswith("/console/"):
            assert headers.get("cache-control") == "no-store", path


def test_a_static_file_does_not_end_the_session(site: Site) -> None:
    hung = site.browser("hung.tran")
    # A browser sends the session cookie with its CSS and script requests (and revalidates them on every reload).
    status, headers, _ = site.raw("GET", "/console/static/console.css", who=hung)
    assert status == 200 and "keng_session" not in headers.get("set-cookie", "")
    assert hung.get("/console/approvals").status == 200
    # A session that is no longer valid still ends on a page.
    status, headers, _ = site.raw("GET", "/console/", headers={"Cookie": "keng_session=garbage"})
    assert status == 303 and "keng_session=" in headers.get("set-cookie", "")


def test_the_cookie_is_strict_http_only_and_secure_behind_https(site: Site) -> None:
    for forwarded, secure in (("https", True), ("http", False), (None, False)):
        b = Browser(site.port)
        form = b.get("/console/sign-in")
        pre = CSRF.search(form.text)
        assert pre is not None
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in b.cookies.items()),
        }
        if forwarded:
            headers["X-Forwarded-Proto"] = forwarded
        body = f"csrf={quote(pre.group(1))}&token={quote(site.tokens['hung.tran'])}".encode()
        status, answer, _ = site.raw("POST", "/console/sign-in/token", body, headers)
        cookie = next(c for c in answer["set-cookie"].split("\n") if c.startswith("keng_session="))
        assert status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        assert ("Secure" in cookie) is secure, forwarded


def test_a_revoked_role_takes_effect_at_the_next_click(site: Site) -> None:
    bid = drafted(site.app)
    minh = site.browser("minh.pham")
    assert minh.get("/console/approvals").status == 200
    revoke_role(site.app, "minh.pham", "approver", by="admin")
    before = site.app.max_position()
    assert minh.get("/console/approvals").status == 403
    assert minh.post(f"/console/broadcasts/{bid}/approve").status == 403
    assert site.app.broadcast(bid).state == "submitted" and site.app.max_position() == before
    assert minh.get("/console/compose").status == 200  # the role kept still works


def test_a_locked_account_cannot_sign_in_with_a_token_either(site: Site) -> None:
    token = issue_token(site.app, staff="tuan.do", label="test", by="admin")
    b = Browser(site.port)
    for _ in range(5):
        form = b.get("/console/sign-in")
        pre = CSRF.search(form.text)
        assert pre is not None
        b.send("POST", "/console/sign-in", {"csrf": pre.group(1), "handle": "tuan.do", "password": "sai mật khẩu rồi"})
    form = b.get("/console/sign-in")
    pre = CSRF.search(form.text)
    assert pre is not None
    refused = b.send("POST", "/console/sign-in/token", {"csrf": pre.group(1), "token": token})
    assert refused.status == 429 and "keng_session" not in b.cookies
    refused = b.send("POST", "/console/sign-in", {"csrf": pre.group(1), "handle": "tuan.do", "password": PASSWORD})
    assert refused.status == 429 and "keng_session" not in b.cookies


def _open_stream(site: Site, who: Browser) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", site.port), timeout=15)
    cookie = "; ".join(f"{k}={v}" for k, v in who.cookies.items())
    conn.sendall(f"GET /console/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return conn


def test_streams_are_bounded_per_person_and_end_with_the_session(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_stream, "MAX_STREAMS", 1)
    hung = site.browser("hung.tran")
    first = _open_stream(site, hung)
    try:
        assert hung.get("/console/stream").status == 429
        assert site.browser("ha.vu").get("/console/approvals").status == 200  # others unaffected
        assert hung.post("/console/sign-out-everywhere").status == 303
        received = b""
        while b"revoked" not in received:
            chunk = first.recv(4096)
            assert chunk, received[-300:]
            received += chunk
    finally:
        first.close()


# -- anything at all -----------------------------------------------------------------------------------------------

GETS = [
    "/console/",
    "/console/broadcasts",
    "/console/compose",
    "/console/approvals",
    "/console/devices",
    "/console/inbound",
    "/console/reports",
    "/console/audit",
    "/console/audit/chain",
    "/console/reports/kpi.csv",
    "/console/sign-in",
    "/console/broadcasts/{bid}",
    "/console/broadcasts/{bid}/edit",
    "/console/broadcasts/{bid}/progress",
]
POSTS = [
    "/console/compose",
    "/console/broadcasts/{bid}/edit",
    "/console/broadcasts/{bid}/approve",
    "/console/broadcasts/{bid}/reject",
    "/console/broadcasts/{bid}/cancel",
    "/console/spoken",
    "/console/compose/preview-board",
    "/console/sign-in",
    "/console/sign-in/token",
]
NAMES = st.sampled_from(
    [
        "asof",
        "state",
        "page",
        "from",
        "to",
        "q",
        "status",
        "ward",
        "broadcast",
        "saved",
        "done",
        "next",
        "x",
        "title",
        "text",
        "priority",
        "targets",
        "areas",
        "action",
        "version",
        "reason",
        "handle",
        "password",
        "token",
        "repeats",
        "channels",
        "drill",
    ]
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "2026-01-01T00:00",
            "0001-01-01T00:00+14:00",
            "٣",
            "１２",
            "-1",
            "9" * 30,
            "\x00",
            "<script>",
            "00595",
            "submit",
            "draft",
            "approved",
            "1970-01-01",
            "nan",
            "=1+1",
        ]
    ),
)
PAIRS = st.lists(st.tuples(NAMES | st.text(max_size=8), VALUES), max_size=6)


@pytest.fixture
def fuzzed(site: Site) -> tuple[Site, dict[str, Browser], str]:
    bid = str(drafted(site.app))
    return site, {h: site.browser(h) for h in ("hung.tran", "mai.le", "lan.nguyen", "ha.vu")}, bid


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(GETS), who=st.sampled_from(["hung.tran", "mai.le", "lan.nguyen", "ha.vu"]), pairs=PAIRS)
def test_any_query_on_any_page_is_below_500(
    fuzzed: tuple[Site, dict[str, Browser], str], route: str, who: str, pairs: list[tuple[str, str]]
) -> None:
    _, browsers, bid = fuzzed
    page = browsers[who].get(route.format(bid=bid) + "?" + _query(pairs))
    assert page.status < 500, (route, pairs, page.text[-400:])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(POSTS),
    who=st.sampled_from(["hung.tran", "mai.le", "lan.nguyen", "ha.vu"]),
    pairs=PAIRS,
    token=st.booleans(),
)
def test_any_form_on_any_command_is_below_500_and_reads_still_work(
    fuzzed: tuple[Site, dict[str, Browser], str], route: str, who: str, pairs: list[tuple[str, str]], token: bool
) -> None:
    site, browsers, bid = fuzzed
    b = browsers[who]
    body = _query(([("csrf", b.csrf)] if token else []) + pairs).encode()
    cookie = "; ".join(f"{k}={v}" for k, v in b.cookies.items())
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    try:
        conn.request(
            "POST", route.format(bid=bid), body, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
        )
        status = conn.getresponse().status
    finally:
        conn.close()
    assert status < 500, (route, pairs)
    assert b.get(f"/console/broadcasts/{bid}").status in (200, 404)  # 404: ha.vu's ward is the same, others' not
    assert b.get("/console/").status == 200
