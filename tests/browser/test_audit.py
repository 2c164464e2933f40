"""The audit page in the console: a broadcast's and a staff member's timeline, the whole console as of a chosen
instant (read-only, with its banner), the hash chain's verification and the signed checkpoint as a download."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.browser.conftest import Console, Site
from tests.http_server import Client

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def _create(site: Site, title: str, *, submit: bool = False) -> dict[str, Any]:
    """A broadcast drafted (and perhaps submitted) by lan.nguyen through the API."""
    token = site.tokens.get("lan.nguyen") or site.home.run("token", "create", "--staff", "lan.nguyen").stdout.split()[0]
    site.tokens["lan.nguyen"] = token
    client = Client(int(site.base.rsplit(":", 1)[1]))
    body = {"title": title, "text": "Nội dung kiểm toán.", "priority": "normal", "targets": {"areas": ["00595"]}}
    created = client.json("POST", "/api/v1/broadcasts", body, token)
    assert created.status == 201 or created.status == 200, created.body
    view: dict[str, Any] = created.json()
    if submit:
        assert client.json("POST", f"/api/v1/broadcasts/{view['id']}/submit", None, token).status == 200
    return view


def _local(moment: datetime) -> str:
    """A datetime-local field's value (seconds, Vietnam time)."""
    return moment.astimezone(VN).strftime("%Y-%m-%dT%H:%M:%S")


def test_the_timeline_of_a_broadcast_and_of_a_staff_member(console: Console, site: Site) -> None:
    title = f"Kiểm toán dòng thời gian {console.label} {uuid.uuid4().hex[:6]}"
    bid = _create(site, title, submit=True)["id"]
    page = console.sign_in("mai.le")
    page.get_by_role("link", name="Kiểm toán", exact=True).click()
    page.get_by_label("Mã bản tin").fill(bid)
    page.get_by_role("button", name="Xem dòng thời gian của bản tin").click()
    assert page.get_by_role("heading", name=f"Bản tin “{title}”").is_visible()
    rows = page.locator("#timeline-table tbody")
    assert "Soạn bản tin" in rows.inner_text() and "Trình duyệt" in rows.inner_text()
    assert "lan.nguyen" in rows.inner_text()
    console.shot("audit-timeline-broadcast")
    page.get_by_label("Cán bộ").select_option("lan.nguyen")
    page.get_by_role("button", name="Xem dòng thời gian của cán bộ").click()
    assert page.get_by_role("heading", name="Cán bộ Nguyễn Thị Lan (lan.nguyen)").is_visible()
    assert title in page.locator("#timeline-table tbody").inner_text()


def test_the_console_as_of_an_instant_before_and_after_a_broadcast(desktop: Console, site: Site) -> None:
    title = f"Kiểm toán thời điểm {uuid.uuid4().hex[:8]}"
    created = datetime.fromisoformat(_create(site, title)["created_on"]).replace(microsecond=0)
    time.sleep(2.1)  # the "after" instant (created + 2 s) must be in the past
    page = desktop.sign_in("mai.le")
    page.goto("/console/audit")
    page.get_by_label("Thời điểm", exact=True).fill(_local(created - timedelta(seconds=1)))
    page.get_by_role("button", name="Xem tại thời điểm này").click()
    assert "/console/?asof=" in page.url
    assert page.get_by_role("status").filter(has_text="tại thời điểm").is_visible()
    assert page.get_by_text(title).count() == 0
    assert page.locator("main form[method=post]").count() == 0
    assert page.locator("main button").count() == 0
    desktop.shot("audit-as-of-home")
    before = page.url.split("asof=", 1)[1]
    request: Any = desktop.context.request
    listing = request.get(f"/console/broadcasts?asof={before}")
    assert listing.status < 500
    if listing.status == 200:  # the broadcasts list (another page of the console) as of the same instant
        assert title not in listing.text()
    for path in ("/console/reports", "/console/audit", "/console/devices", "/console/reports/kpi.csv"):
        reply = request.get(f"{path}?asof={before}")
        assert reply.status < 500 and reply.status != 403, (path, reply.status)
    page.goto(f"/console/reports?asof={before}")
    assert page.locator(".asof").is_visible() and page.locator("svg#chart-fm_converted").count() == 1
    assert page.locator("main form[method=post]").count() == 0
    page.goto("/console/audit")
    page.get_by_label("Thời điểm", exact=True).fill(_local(created + timedelta(seconds=2)))
    page.get_by_role("button", name="Xem tại thời điểm này").click()
    assert page.locator(".asof").is_visible()
    assert page.get_by_text(title).count() >= 1
    after = page.url.split("asof=", 1)[1]
    listing = request.get(f"/console/broadcasts?asof={after}")
    if listing.status == 200:
        assert title in listing.text()
    bid = _create(site, f"{title} (sau)")["id"]
    refused = request.get(f"/console/audit?broadcast={bid}&asof={after}")
    assert refused.status == 404  # it did not exist then
    page.get_by_role("link", name="Về hiện tại").click()
    assert "asof" not in page.url and page.locator(".asof").count() == 0


def test_a_malformed_instant_gets_a_400_page(desktop: Console) -> None:
    page = desktop.sign_in("mai.le")
    for value in ("not-a-time", "2026-02-30T10:00", "%00"):
        response = page.goto(f"/console/?asof={value}")
        assert response is not None and response.status == 400, value
        assert page.get_by_role("alert").is_visible()


def test_the_chain_is_intact_and_the_checkpoint_downloads(console: Console) -> None:
    page = console.sign_in("mai.le")
    page.goto("/console/audit")
    page.get_by_role("button", name="Kiểm tra chuỗi toàn vẹn").click()
    assert page.get_by_role("heading", name="Kiểm tra chuỗi toàn vẹn").is_visible()
    result = page.locator("#chain-result")
    assert "Toàn vẹn" in result.inner_text() and "Mã khóa ký" in result.inner_text()
    console.shot("audit-chain")
    page.goto("/console/audit")
    assert "Toàn vẹn" in page.locator("#chain-result").inner_text()  # the recent result, on the audit page too
    console.shot("audit")
    with page.expect_download() as info:
        page.get_by_role("link", name="Tải checkpoint (JSON)").click()
    exported = json.loads(Path(info.value.path()).read_bytes())
    assert exported["format"] == "keng-audit-checkpoint/1" and exported["count"] >= 1 and exported["signature"]


def test_audit_parameters_are_checked(desktop: Console) -> None:
    desktop.sign_in("mai.le")
    request: Any = desktop.context.request
    cases = {
        "/console/audit?broadcast=not-a-uuid": 400,
        f"/console/audit?broadcast={uuid.uuid4()}": 404,
        "/console/audit?staff=Bad%20Handle!": 400,
        "/console/audit?staff=nobody.here": 404,
        f"/console/audit?staff=lan.nguyen&broadcast={uuid.uuid4()}": 400,
        "/console/audit?other=1": 400,
        "/console/audit/chain?again=7": 400,
        "/console/audit/checkpoint.json?x=1": 400,
    }
    for path, status in cases.items():
        reply = request.get(path)
        assert reply.status == status, (path, reply.status)
    assert request.get("/console/audit?staff=lan.nguyen").status == 200
