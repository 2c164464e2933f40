"""Bounds over real HTTP: no request of any kind yields a 5xx, every refusal stores nothing, and no stored event (not
even one written before the bounds existed) makes a later read fail. Every XML answer is parsed by a strict parser
(expat, through defusedxml), every JSON answer by orjson."""

from __future__ import annotations

import contextlib
import http.client
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID
from xml.sax.saxutils import escape

import orjson
import pytest
from defusedxml.ElementTree import fromstring
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import MAX_POSITION, Keng
from keng.adapters.store.config import locate_store
from keng.domain.broadcast import Broadcast
from keng.domain.content import Content
from keng.runtime.cli.main import main as keng
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.runtime.logs import configure_logging
from keng.runtime.reports import REPORTS
from keng.services.access import add_integration, issue_token
from keng.services.inventory import install_sample
from tests.http_server import Client, Reply, serve
from tests.unit.cap_builders import SENDER, alert, info

ICT = timezone(timedelta(hours=7))
WARDS = ["00595", "00598", "00601"]
HOOK = "/api/v1/hooks/city-source"
END_OF_TIME = "9999-12-31T23:59:59+00:00"
STAFF = ("lan.nguyen", "hung.tran", "mai.le")
_ids = itertools.count()


@dataclass
class Site:
    client: Client
    app: Keng
    data: Path
    tokens: dict[str, str]
    hook_secret: str
    cap_secret: str
    services: Services
    broadcasts: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("bounds")
    configure_logging()  # what `keng` does: logs to stderr, so the CLI's stdout below holds only its JSON
    app = Keng(env=locate_store(None, data).env)
    install_sample(app, reorganise=False)  # the 2022 codes (before the reorganisation)
    secrets = SecretStore(data)
    tokens = {h: issue_token(app, staff=h, label="bounds", by="admin") for h in STAFF}
    hook = add_integration(app, secrets, name="city-source", kind="city-source", jurisdiction=["021"], by="admin")
    cap = add_integration(app, secrets, name="kttv", kind="cap", jurisdiction=["021"], by="admin", senders=[SENDER])
    services = Services(app=app, secrets=secrets, settings=load_settings(data_dir=str(data), environ={}))
    with serve(services) as client:
        yield Site(client, app, data, tokens, hook, cap, services)
    app.close()


# -- what every read must survive ------------------------------------------------------------------------------------


def _json(reply: Reply, what: str) -> Any:
    assert reply.status < 500, (what, reply.status, reply.body[:300])
    return orjson.loads(reply.body)


def _xml(reply: Reply, what: str) -> None:
    assert reply.status < 500, (what, reply.status, reply.body[:300])
    if reply.status == 200:
        fromstring(reply.body)  # expat: well-formed, and only characters XML 1.0 allows


def _stream_from(site: Site, since: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.client.port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {site.tokens['mai.le']}"}
        conn.request("GET", f"/api/v1/stream?since={since}", headers=headers)
        reply = conn.getresponse()
        assert reply.status == 200, reply.read()
        if since < site.app.max_position():
            line = b""
            while not line.startswith(b"data: "):
                line = reply.fp.readline()
            orjson.loads(line[6:])
    finally:
        conn.close()


def read_everything(site: Site, since: int) -> None:
    """Every read route (and the CLI's `events` and `broadcast list`), each answer parsed strictly."""
    c, auditor = site.client, site.tokens["mai.le"]
    listed = _json(c.request("GET", "/api/v1/broadcasts", token=auditor), "list")
    ids = {b["id"] for b in listed} | set(site.broadcasts)
    for bid in sorted(ids):
        _json(c.request("GET", f"/api/v1/broadcasts/{bid}", token=auditor), "get")
        _xml(c.request("GET", f"/cap/{bid}.xml"), "cap")
    _xml(c.request("GET", "/feeds/alerts.atom"), "atom")
    _json(c.request("GET", "/feeds/alerts.json"), "json feed")
    for path in ("/api/v1/endpoints", "/api/v1/areas", "/api/v1/staff", "/api/v1/broadcasts?unratified=1"):
        _json(c.request("GET", path, token=auditor), path)
    for name in REPORTS:
        _json(c.request("GET", f"/api/v1/reports/{name}", token=auditor), name)
    _stream_from(site, since)
    for argv in (["events", "--json", "--since", str(since)], ["broadcast", "list", "--json"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert keng(["--data", str(site.data), *argv]) == 0, argv
        orjson.loads(out.getvalue())
    assert server_errors(site) == []


def server_errors(site: Site) -> list[str]:
    """Every 5xx the server counted, as `route status` (seen server-side, even when the client had gone)."""
    return [
        f"{s.labels['route']} {s.labels['status']}"
        for metric in site.services.metrics.requests.collect()
        for s in metric.samples
        if s.name.endswith("_total") and s.labels["status"].startswith("5") and s.value
    ]


def refused_storing_nothing(site: Site, reply: Reply, before: int) -> bool:
    """True if the request was refused; a refusal is a problem document and left the log as it was."""
    assert reply.status < 500, (reply.status, reply.body[:300])
    assert b"Traceback" not in reply.body
    if reply.status < 400:
        return False
    assert reply.headers["content-type"].startswith("application/problem+json"), reply.headers
    assert site.app.max_position() == before, reply.body
    return True


# -- the reproduction of the issue's bullets -------------------------------------------------------------------------


def _draft(**overrides: Any) -> dict[str, Any]:
    body = {"title": "Thông báo", "text": "Nội dung", "priority": "normal", "targets": {"areas": ["00595"]}}
    return body | overrides


def _problem(site: Site, reply: Reply, before: int, status: int, *fragments: str) -> None:
    assert refused_storing_nothing(site, reply, before)
    assert reply.status == status, reply.body
    for fragment in fragments:
        assert fragment in reply.json()["detail"], reply.json()


def test_an_expiry_at_the_end_of_time_is_refused_at_every_door_and_stores_nothing(site: Site) -> None:
    c, t = site.client, site.tokens["lan.nguyen"]
    before = site.app.max_position()
    _problem(site, c.json("POST", "/api/v1/broadcasts", _draft(expires_at=END_OF_TIME), t), before, 422, "expiry")
    created = c.json("POST", "/api/v1/broadcasts", _draft(), t)
    bid = created.json()["id"]
    site.broadcasts.append(bid)
    before = site.app.max_position()
    patch = c.json("PATCH", f"/api/v1/broadcasts/{bid}", {"expires_at": END_OF_TIME}, t)
    _problem(site, patch, before, 422, "more than 30 days ahead")
    body = orjson.dumps(_draft(expires_at=END_OF_TIME))
    _problem(site, c.signed(HOOK, body, site.hook_secret, f"eot-{next(_ids)}"), before, 422, "expiry")
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=ICT)
    doc = alert(identifier=f"EOT-{next(_ids)}", infos=(info(expires=far),))
    reply = c.signed("/api/v1/cap", doc, site.cap_secret, f"cap-{next(_ids)}", content_type="application/cap+xml")
    _problem(site, reply, before, 422, "more than 30 days ahead")
    read_everything(site, before)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\uffff", "\x85", "\ufdd0"])
def test_a_title_with_a_control_character_or_noncharacter_is_refused_naming_the_field(site: Site, char: str) -> None:
    c, t = site.client, site.tokens["lan.nguyen"]
    before = site.app.max_position()
    _problem(site, c.json("POST", "/api/v1/broadcasts", _draft(title=f"Bão{char}lũ"), t), before, 422, "title holds U+")
    body = orjson.dumps(_draft(text=f"Bão{char}số 9"))
    _problem(site, c.signed(HOOK, body, site.hook_secret, f"ctl-{next(_ids)}"), before, 422, "text holds U+")


def test_a_c1_control_in_a_cap_headline_is_refused(site: Site) -> None:
    before = site.app.max_position()
    doc = alert(identifier=f"C1-{next(_ids)}", infos=(info(headline="Bão\x9bsố 9"),))
    reply = site.client.signed(
        "/api/v1/cap", doc, site.cap_secret, f"cap-{next(_ids)}", content_type="application/cap+xml"
    )
    _problem(site, reply, before, 422, "title holds U+009B")


@pytest.mark.parametrize(
    ("path", "header", "name"),
    [
        ("/audio/KEY?exp=%C2%B2&sig=0", None, "query parameter 'exp'"),
        ("/audio/KEY?exp=" + "9" * 5000 + "&sig=0", None, "query parameter 'exp'"),
        ("/api/v1/stream?since=%C2%B2", None, "query parameter 'since'"),
        ("/api/v1/stream?since=1" + "0" * 30, None, "query parameter 'since'"),
        ("/api/v1/stream", "²", "header Last-Event-ID"),
        ("/api/v1/stream", "1" + "0" * 30, "header Last-Event-ID"),
        ("/api/v1/reports/roadmap?from=%C2%B2", None, "query parameter 'from'"),
        ("/api/v1/reports/roadmap?to=%D9%A3", None, "query parameter 'to'"),
        ("/api/v1/reports/roadmap?to=99999", None, "query parameter 'to'"),
    ],
)
def test_an_integer_that_is_not_bounded_ascii_digits_is_a_400_naming_the_parameter(
    site: Site, path: str, header: str | None, name: str
) -> None:
    headers = {"Last-Event-ID": header.encode().decode("latin-1")} if header else {}
    before = site.app.max_position()
    reply = site.client.request("GET", path, headers=headers, token=site.tokens["mai.le"])
    _problem(site, reply, before, 400, name)


def test_the_largest_position_accepted_opens_a_stream_that_waits(site: Site) -> None:
    _stream_from(site, MAX_POSITION)
    assert server_errors(site) == []


def test_a_range_header_with_an_enormous_number_is_refused_not_a_crash(site: Site) -> None:
    reply = site.client.request("GET", "/audio/KEY", headers={"Range": "bytes=" + "9" * 5000 + "-"}, token="x")
    assert reply.status < 500


def test_the_webhook_timestamp_in_other_digits_is_a_signature_refusal(site: Site) -> None:
    before = site.app.max_position()
    headers = {"Content-Type": "application/json", "webhook-id": "m1", "webhook-signature": "v1,AAAA"}
    superscript = "¹⁷⁰⁰⁰⁰⁰⁰⁰⁰".encode().decode("latin-1")  # the UTF-8 bytes on the wire; isdigit() says yes
    reply = site.client.request("POST", HOOK, b"{}", headers | {"webhook-timestamp": superscript})
    _problem(site, reply, before, 401, "webhook-timestamp must be a whole number written in the digits 0-9")


def test_a_broadcast_stored_before_the_bounds_existed_breaks_no_read(site: Site) -> None:
    """An older version stored what the boundary now refuses: control characters, an expiry at the end of the
    calendar. Every read route still answers, and the public documents are valid XML."""
    before = site.app.max_position()
    hostile = "Bão\x00số\x1b[31m 9\uffff"
    content = Content(title=hostile, text=hostile + "\r\n\x85", audio="https://example.org/\x1b.mp3",
                      priority="emergency", target_areas=["00595"], target_endpoints=[], scope=["00595"],
                      channels=["speaker", "portal", "app"], schedule_at=[datetime(9999, 12, 31, 23, tzinfo=UTC)],
                      repeats=3, expires_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), drill=False)  # fmt: skip
    item = Broadcast.draft(content, by=site.app.staff("lan.nguyen"))
    item.submit(by=site.app.staff("lan.nguyen"))
    item.approve(by=site.app.staff("hung.tran"), now=datetime.now(UTC))
    site.app.save_new(item, what="an old broadcast")
    site.broadcasts.append(str(item.id))
    read_everything(site, before)
    view = site.client.request("GET", f"/api/v1/broadcasts/{item.id}", token=site.tokens["mai.le"]).json()
    assert view["expires_at"] == "9999-12-31T23:59:59+00:00"
    cap = site.client.request("GET", f"/cap/{item.id}.xml")
    assert cap.status == 200 and b"B\xc3\xa3os\xe1\xbb\x91[31m 9" in cap.body
    atom = site.client.request("GET", "/feeds/alerts.atom").body
    assert str(item.id).encode() in atom


# -- the property: random valid-looking writes, then every read ------------------------------------------------------

ODD = st.sampled_from(
    ["", " ", "\t", "x" * 201, "y" * 5001, "a\x00b", "\x1b[2J", "\uffff", "\ufdd0", "\U0010ffff", "\x85", "\x7f",
     "\r\n", "\u200b\ufeff", "A\u0301", "𝔘𝔫𝔦", "‮evil", "<b>&amp;</b>", "]]>", "' \" &"]
)  # fmt: skip
# Text a person could type (any assigned, non-control character), or something odd.
TYPED = st.text(st.characters(exclude_categories=("Cc", "Cs", "Co", "Cn")), min_size=1, max_size=60).filter(str.strip)
ODD_TEXT = st.one_of(ODD, st.lists(st.one_of(ODD, st.text(max_size=8)), min_size=1, max_size=4).map("".join))
EXTREME = st.sampled_from(
    [END_OF_TIME, "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
     "9999-12-31T16:59:59+00:00", "2026-02-30T00:00:00+07:00", "not a time", "2099-01-01T00:00:00"]
)  # fmt: skip
# A relative time is a number of seconds from the moment of the request.
SOON = st.integers(120, 29 * 86400)
ODD_TIME = st.one_of(EXTREME, st.integers(-3600, 60), st.integers(31 * 86400, 10**6 * 86400))
ODD_URL = st.one_of(
    st.sampled_from(["https://example.org/\x00", "ftp://example.org/a.mp3", "https://exa mple.org/", ""]),
    st.integers(2030, 2100).map(lambda n: "https://example.org/" + "a" * n),
)


def _time(value: str | int) -> str:
    return value if isinstance(value, str) else (datetime.now(UTC) + timedelta(seconds=value)).isoformat()


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A message that is mostly plausible: each field is odd about one time in four."""

    def pick(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
        return draw(odd if draw(st.integers(0, 3)) == 3 else usual)

    expires = pick(SOON, ODD_TIME)
    body: dict[str, Any] = {
        "title": pick(TYPED, ODD_TEXT),
        "text": pick(TYPED, ODD_TEXT),
        "priority": draw(st.sampled_from(["emergency", "priority", "normal"])),
        "targets": {"areas": draw(st.lists(st.sampled_from(WARDS), min_size=1, max_size=2))},
        "channels": ["speaker", "portal", "app"],
        "expires_at": expires,
    }
    if draw(st.booleans()):
        before_expiry = st.integers(60, expires - 60) if isinstance(expires, int) and expires > 120 else SOON
        times = pick(
            st.lists(before_expiry, max_size=3), st.one_of(st.lists(ODD_TIME, max_size=3), st.just([600] * 60))
        )
        body["schedule"] = {"at": times, "repeats": pick(st.integers(1, 10), st.integers(-2, 12) | st.just(2**63 - 1))}
    if draw(st.booleans()):
        body["audio_url"] = pick(st.just("https://example.org/a.mp3"), ODD_URL)
    return body


def _materialise(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if "expires_at" in out:
        out["expires_at"] = _time(out["expires_at"])
    if "schedule" in out:
        out["schedule"] = {**out["schedule"], "at": [_time(t) for t in out["schedule"]["at"]]}
    return out


def _cap_time(value: str | int) -> str:
    if isinstance(value, str):
        return value.replace("+00:00", "-00:00")
    return (datetime.now(UTC) + timedelta(seconds=value)).astimezone(ICT).isoformat(timespec="seconds")


def _cap(body: dict[str, Any]) -> bytes:
    expires = _cap_time(body.get("expires_at", 7200))
    doc = alert(identifier=f"PROP-{next(_ids)}", infos=(info(headline=escape(body["title"])),))
    # The builder's own expiry is replaced by the drawn one, and the description by the drawn text.
    text = doc.decode("utf-8")
    start, end = text.index("<expires>") + 9, text.index("</expires>")
    text = text[:start] + expires + text[end:]
    start, end = text.index("<description>") + 13, text.index("</description>")
    text = text[:start] + escape(body["text"]) + text[end:]
    return text.encode("utf-8")


def _write(site: Site, kind: str, body: dict[str, Any]) -> list[str]:
    """One write; returns the broadcasts it created (none when it was refused, which must have stored nothing)."""
    c, drafter, approver = site.client, site.tokens["lan.nguyen"], site.tokens["hung.tran"]
    before = site.app.max_position()
    if kind == "post":
        reply = c.json("POST", "/api/v1/broadcasts", _materialise(body), drafter)
    elif kind == "patch" and site.broadcasts:
        bid = site.broadcasts[len(site.broadcasts) // 2]
        reply = c.json("PATCH", f"/api/v1/broadcasts/{bid}", _materialise(body), drafter)
    elif kind in ("hook", "patch"):
        reply = c.signed(HOOK, orjson.dumps(_materialise(body)), site.hook_secret, f"prop-{next(_ids)}")
    else:
        doc = _cap(body)
        reply = c.signed("/api/v1/cap", doc, site.cap_secret, f"prop-{next(_ids)}", content_type="application/cap+xml")
    event(f"{kind}: {reply.status}")  # --hypothesis-show-statistics tells how many writes were accepted
    if refused_storing_nothing(site, reply, before):
        return []
    answer = reply.json()
    created = answer.get("broadcast_ids") or [answer.get("broadcast_id") or answer["id"]]
    for bid in created:
        # Approval makes it public (feeds, /cap/{id}.xml); a refusal (expired, wrong state) is fine, if clean.
        for action, token in (("submit", drafter), ("approve", approver)):
            before = site.app.max_position()
            refused_storing_nothing(site, c.json("POST", f"/api/v1/broadcasts/{bid}/{action}", None, token), before)
    return [str(UUID(b)) for b in created]


WRITE = st.tuples(st.sampled_from(["post", "patch", "hook", "cap"]), bodies())


@settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(writes=st.lists(WRITE, min_size=1, max_size=4))
def test_random_valid_looking_writes_never_5xx_and_never_break_a_read(
    site: Site, writes: list[tuple[str, dict[str, Any]]]
) -> None:
    since = site.app.max_position()
    for kind, body in writes:
        site.broadcasts += _write(site, kind, body)
    read_everything(site, since)
