"""The operator API and the city-source webhook over real HTTP, on SQLite and PostgreSQL.

Every refusal is a precise 4xx problem document, and the event count stays as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.services.access import add_integration, issue_token
from tests.exposition import samples, with_an_empty_label
from tests.http_server import Client, serve

DRAFT = {
    "title": "Thông báo phun thuốc",
    "text": "Phun thuốc diệt muỗi ngày 28/11.",
    "priority": "normal",
    "targets": {"areas": ["00595"]},
}
HOOK = "/api/v1/hooks/city-source"


@pytest.fixture
def api(sample_app: Keng, tmp_path: Path) -> Iterator[tuple[Client, dict[str, str], Keng]]:
    settings = load_settings(data_dir=str(tmp_path), environ={})
    secrets = SecretStore(tmp_path)
    creds = {
        h: issue_token(sample_app, staff=h, label="test", by="admin")
        for h in ("lan.nguyen", "hung.tran", "minh.pham", "ha.vu", "mai.le", "tuan.do")
    }
    creds["secret"] = add_integration(
        sample_app, secrets, name="city-source", kind="city-source", jurisdiction=["00595", "00601"], by="admin"
    )
    services = Services(app=sample_app, secrets=secrets, settings=settings, max_body_bytes=64 * 1024)
    with serve(services) as client:
        yield client, creds, sample_app


def problem(reply: object, status: int, *fragments: str) -> None:
    assert reply.status == status, (reply.status, reply.body)  # type: ignore[attr-defined]
    assert reply.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    doc = reply.json()  # type: ignore[attr-defined]
    assert doc["status"] == status and b"Traceback" not in reply.body  # type: ignore[attr-defined]
    for fragment in fragments:
        assert fragment in doc["detail"], doc


def test_operator_takes_a_broadcast_through_approval(api: tuple[Client, dict[str, str], Keng]) -> None:
    client, t, _ = api
    created = client.json("POST", "/api/v1/broadcasts", DRAFT, t["lan.nguyen"])
    assert created.status == 201 and created.headers["location"].endswith(created.json()["id"])
    bid = created.json()["id"]
    assert client.json("POST", f"/api/v1/broadcasts/{bid}/submit", None, t["lan.nguyen"]).status == 200
    approved = client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, t["ha.vu"])
    assert approved.status == 200 and approved.json()["state"] == "approved"
    revised = client.json("PATCH", f"/api/v1/broadcasts/{bid}", {"text": "Lịch mới: ngày 29/11."}, t["lan.nguyen"])
    assert revised.json()["state"] == "submitted" and revised.json()["approved"] is False
    listed = client.json("GET", "/api/v1/broadcasts?state=submitted", None, t["mai.le"])
    assert [b["id"] for b in listed.json()] == [bid]
    assert len(client.json("GET", "/api/v1/endpoints?ward=00595", None, t["mai.le"]).json()) > 0


def test_refusals_are_precise_and_store_nothing(api: tuple[Client, dict[str, str], Keng]) -> None:
    client, t, app = api
    mine = client.json("POST", "/api/v1/broadcasts", {**DRAFT, "targets": {"areas": ["00598"]}}, t["minh.pham"])
    bid = mine.json()["id"]
    client.json("POST", f"/api/v1/broadcasts/{bid}/submit", None, t["minh.pham"])
    before = app.max_position()
    problem(
        client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, t["minh.pham"]), 403, "approver-is-not-drafter"
    )
    problem(client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, t["ha.vu"]), 403, "approver-area-scope")
    problem(client.json("POST", "/api/v1/broadcasts", DRAFT, t["mai.le"]), 403, "drafter role is required")
    problem(client.json("POST", f"/api/v1/broadcasts/{bid}/reject", {}, t["hung.tran"]), 422, "reason")
    problem(client.json("POST", f"/api/v1/broadcasts/{bid}/cancel", None, None), 401, "Bearer")
    problem(client.json("GET", "/api/v1/broadcasts", None, "keng_not-a-real-token"), 401, "not known")
    problem(client.json("GET", "/api/v1/broadcasts/not-an-id", None, t["mai.le"]), 404)
    problem(
        client.json("POST", "/api/v1/broadcasts", {**DRAFT, "targets": {"areas": ["99999"]}}, t["lan.nguyen"]),
        422,
        "99999",
    )
    problem(
        client.request(
            "POST", "/api/v1/broadcasts", b"{bad json", {"Content-Type": "application/json"}, t["lan.nguyen"]
        ),
        400,
        "malformed JSON",
    )
    problem(
        client.request("POST", "/api/v1/broadcasts", b"x=1", {"Content-Type": "text/plain"}, t["lan.nguyen"]),
        415,
        "application/json",
    )
    problem(
        client.request(
            "POST",
            "/api/v1/broadcasts",
            b"[" + b"1," * 40000 + b"1]",
            {"Content-Type": "application/json"},
            t["lan.nguyen"],
        ),
        413,
    )
    assert app.max_position() == before


def test_problems_are_in_vietnamese_when_the_client_asks_for_it(api: tuple[Client, dict[str, str], Keng]) -> None:
    client, t, _ = api
    json = {"Content-Type": "application/json"}
    forbidden = ("POST", "/api/v1/broadcasts", orjson.dumps(DRAFT), t["mai.le"])  # an auditor drafts: 403
    past = {**DRAFT, "expires_at": "2020-01-01T00:00:00+00:00"}  # well-formed, refused by the domain: 422
    invalid = ("POST", "/api/v1/broadcasts", orjson.dumps(past), t["lan.nguyen"])
    for accept in ("vi", "vi-VN,vi;q=0.9,en;q=0.8", "en;q=0.5, vi-VN"):
        for (method, path, body, token), status, title in (
            (forbidden, 403, "Không có quyền thực hiện"),
            (invalid, 422, "Dữ liệu không hợp lệ"),
        ):
            reply = client.request(method, path, body, {**json, "Accept-Language": accept}, token)
            problem(reply, status)
            doc = reply.json()
            assert reply.headers["content-language"] == "vi" and doc["title"] == title, (accept, doc)
            assert doc["detail"].startswith(f"{title} — "), doc
    for accept in (None, "en", "en-GB,en;q=0.9,vi;q=0.8", "fr, vi;q=0", "vi;q=bad"):
        headers = json if accept is None else {**json, "Accept-Language": accept}
        for (method, path, body, token), status, title in (
            (forbidden, 403, "Forbidden"),
            (invalid, 422, "Invalid value"),
        ):
            reply = client.request(method, path, body, headers, token)
            problem(reply, status)
            doc = reply.json()
            assert reply.headers["content-language"] == "en" and doc["title"] == title, (accept, doc)
            assert doc["detail"].isascii(), doc  # the English detail, with no Vietnamese lead-in
    english = client.request(*forbidden[:3], json, forbidden[3]).json()
    vietnamese = client.request(*forbidden[:3], {**json, "Accept-Language": "vi"}, forbidden[3]).json()
    assert english["type"] == vietnamese["type"] == "urn:keng:problem:forbidden"
    assert vietnamese["detail"].endswith(english["detail"])  # the rule's own words stay, after the headline


def test_webhook_creates_a_submitted_broadcast_once(api: tuple[Client, dict[str, str], Keng]) -> None:
    client, t, app = api
    body = orjson.dumps(
        {"title": "Cảnh báo lũ", "text": "Nước sông lên cao.", "priority": "emergency", "targets": {"areas": ["00601"]}}
    )
    first = client.signed(HOOK, body, t["secret"], "city-2026-11-27-001")
    assert first.status == 202
    outcome = first.json()
    item = app.broadcast(__import__("uuid").UUID(outcome["broadcast_id"]))
    assert (item.state, item.source_kind, item.source_ref, item.drafted_by) == (
        "submitted",
        "city-source",
        "city-2026-11-27-001",
        "integration:city-source",
    )
    position = app.max_position()
    again = client.signed(HOOK, body, t["secret"], "city-2026-11-27-001")
    assert again.status == 202 and again.json() == outcome and again.headers["idempotent-replayed"] == "true"
    problem(client.signed(HOOK, body + b" ", t["secret"], "city-2026-11-27-001"), 422, "different body")
    assert app.max_position() == position


def test_webhook_bad_input_matrix(api: tuple[Client, dict[str, str], Keng]) -> None:
    client, t, app = api
    secret = t["secret"]
    good = orjson.dumps(DRAFT)
    before = app.max_position()
    now = int(time.time())
    problem(client.signed(HOOK, b'{"title": ', secret, "m1"), 400, "malformed JSON")
    problem(client.signed(HOOK, good, secret, "m2", content_type="text/plain"), 415)
    problem(client.signed(HOOK, b'{"title":"' + b"x" * 70000 + b'"}', secret, "m3"), 413)
    problem(client.request("POST", HOOK, good, {"Content-Type": "application/json"}), 401, "missing header")
    garbled = {
        "Content-Type": "application/json",
        "webhook-id": "m4",
        "webhook-timestamp": str(now),
        "webhook-signature": "v1,@@not-base64@@",
    }
    problem(client.request("POST", HOOK, good, garbled), 401, "not base64")
    problem(client.signed(HOOK, good, "whsec_" + "QUJD" * 11, "m5"), 401, "no signature matches")
    problem(client.signed(HOOK, good, secret, "m6", timestamp=now - 301), 401, "in the past")
    problem(client.signed(HOOK, good, secret, "m7", timestamp=now + 301), 401, "in the future")
    problem(client.signed(HOOK, orjson.dumps({**DRAFT, "targets": {"areas": ["00000"]}}), secret, "m8"), 422, "00000")
    problem(
        client.signed(HOOK, orjson.dumps({**DRAFT, "targets": {"areas": ["00598"]}}), secret, "m9"),
        422,
        "outside its jurisdiction: 00598",
    )
    problem(client.signed(HOOK, orjson.dumps({**DRAFT, "priority": "urgent"}), secret, "m10"), 422, "urgent")
    problem(client.signed(HOOK, orjson.dumps({**DRAFT, "extra": 1}), secret, "m11"), 422, "unknown field")
    assert app.max_position() == before


def test_live_stream_carries_state_changes_from_a_position(api: tuple[Client, dict[str, str], Keng]) -> None:
    import http.client

    client, t, app = api
    start = app.max_position()
    bid = client.json("POST", "/api/v1/broadcasts", DRAFT, t["lan.nguyen"]).json()["id"]
    client.json("POST", f"/api/v1/broadcasts/{bid}/submit", None, t["lan.nguyen"])
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
    conn.request("GET", f"/api/v1/stream?since={start}", headers={"Authorization": f"Bearer {t['mai.le']}"})
    reply = conn.getresponse()
    assert reply.status == 200 and reply.getheader("Content-Type", "").startswith("text/event-stream")
    seen: list[str] = []
    while len(seen) < 2:
        line = reply.fp.readline().decode().strip()
        if line.startswith("data: "):
            seen.append(orjson.loads(line[6:])["type"])
    conn.close()
    assert seen == ["Broadcast.Drafted", "Broadcast.SubmittedForApproval"]
    problem(client.request("GET", "/api/v1/stream"), 401)
    problem(client.request("GET", "/api/v1/stream?since=abc", token=t["mai.le"]), 400, "log position")


def test_metrics_carry_the_process_and_no_series_with_an_empty_label(api: tuple[Client, dict[str, str], Keng]) -> None:
    client, t, _ = api
    client.json("GET", "/api/v1/broadcasts", None, t["mai.le"])
    problem(client.signed(HOOK, b'{"title": ', t["secret"], "metrics-1"), 400)  # counted under its outcome
    reply = client.request("GET", "/metrics")
    assert reply.status == 200
    names = {s.name for s in samples(reply.body)}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "python_info"} <= names
    assert {"keng_http_requests_total", "keng_webhook_outcomes_total"} <= names
    assert with_an_empty_label(reply.body) == []
