"""The inbound page in Chromium: a signed city-source message and a CAP alert, as their senders post them to the
running site, listed with their outcomes for an auditor; a resend of the same message adds nothing."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlparse

import orjson

from tests.browser.conftest import Console, Site
from tests.http_server import Client, Reply
from tests.unit.cap_builders import alert


def client(site: Site) -> Client:
    return Client(urlparse(site.base).port or 80)


def post(site: Site, path: str, body: bytes, secret: str, message_id: str, content_type: str) -> Reply:
    """Post a signed message; a new integration is known to the service within its cache's few seconds."""
    deadline = time.monotonic() + 15
    while True:
        reply = client(site).signed(path, body, secret, message_id, content_type=content_type)
        if reply.status != 401 or time.monotonic() > deadline:
            return reply
        time.sleep(0.5)


def test_a_city_source_message_and_a_cap_alert_are_listed_with_their_outcomes(console: Console, site: Site) -> None:
    tag = uuid.uuid4().hex[:8]
    secret = site.home.run("integration", "add", f"city-{tag}", "--jurisdiction", "021").stdout.split()[0]
    body = orjson.dumps({"title": f"Lịch cắt điện {tag}", "text": "Cắt điện từ 8 giờ đến 11 giờ sáng mai tại tổ 1.",
                         "priority": "normal", "targets": {"areas": ["00595"]}})  # fmt: skip
    first = post(site, "/api/v1/hooks/city-source", body, secret, f"city-{tag}-1", "application/json")
    assert first.status == 202, first.body
    again = client(site).signed("/api/v1/hooks/city-source", body, secret, f"city-{tag}-1")
    assert again.status == 202 and again.headers.get("idempotent-replayed") == "true"
    sender = f"kttv-{tag}@hanoi.gov.vn"  # a sender belongs to one integration: one of its own for each run
    cap_secret = site.home.run("integration", "add", f"kttv-{tag}", "--kind", "cap", "--jurisdiction", "021",
                               "--sender", sender).stdout.split()[0]  # fmt: skip
    actual = post(site, "/api/v1/cap", alert(identifier=f"ALERT-{tag}", sender=sender), cap_secret, f"cap-{tag}-1",
                  "application/cap+xml")  # fmt: skip
    assert actual.status == 202, actual.body
    test_only = post(site, "/api/v1/cap", alert(identifier=f"TEST-{tag}", sender=sender, status="Test"), cap_secret,
                     f"cap-{tag}-2", "application/cap+xml")  # fmt: skip
    assert test_only.status == 202, test_only.body

    page = console.sign_in("mai.le")
    page.get_by_role("link", name="Tin đến", exact=True).click()
    assert page.get_by_role("heading", name="Tin đến", level=1).is_visible()
    city = page.locator(f'#inbound-table tr[data-key="city-{tag}-1"]')
    assert city.count() == 1  # the resend was answered with the first outcome and recorded nothing
    assert city.get_attribute("data-outcome") == "accepted" and "Đã tiếp nhận" in city.inner_text()
    assert f"city-{tag}" in city.inner_text()
    cap = page.locator(f'#inbound-table tr[data-key*=",ALERT-{tag},"]')
    assert cap.count() == 1 and cap.get_attribute("data-outcome") == "accepted"
    recorded = page.locator(f'#inbound-table tr[data-key*=",TEST-{tag},"]')
    assert recorded.get_attribute("data-outcome") == "recorded" and "Chỉ ghi nhận" in recorded.inner_text()
    console.shot("inbound")

    page.get_by_label("Kết quả", exact=True).select_option("recorded")
    page.get_by_role("button", name="Lọc").click()
    outcomes = page.locator("#inbound-table tr[data-outcome]").evaluate_all("rs => rs.map(r => r.dataset.outcome)")
    assert outcomes and set(outcomes) == {"recorded"}
    page.get_by_label("Kết quả", exact=True).select_option("")
    page.get_by_label("Nguồn", exact=True).select_option("city-source")
    page.get_by_role("button", name="Lọc").click()
    city = page.locator(f'#inbound-table tr[data-key="city-{tag}-1"]')
    link = city.get_by_role("link", name=f"Lịch cắt điện {tag}")
    assert (link.get_attribute("href") or "").startswith("/console/broadcasts/")
    assert page.locator(f'#inbound-table tr[data-key*=",ALERT-{tag},"]').count() == 0


def test_only_auditors_and_admins_see_inbound_messages(desktop: Console) -> None:
    page = desktop.sign_in("lan.nguyen")
    assert page.get_by_role("link", name="Tin đến", exact=True).count() == 0
    assert page.goto("/console/inbound").status == 403
    desktop.context.clear_cookies()
    page = desktop.sign_in("admin")
    assert page.goto("/console/inbound").status == 200
    for path in ("/console/inbound?page=0", "/console/inbound?page=x", "/console/inbound?source=fax",
                 "/console/inbound?page=100000"):  # fmt: skip
        assert 400 <= page.goto(path).status < 500, path
