"""One broadcast's page, the approval queue and live dispatch in Chromium: the drafter sees the four-eyes reason
instead of an approve button; an approver finds the broadcast in the queue, reads the revision's diff, approves it,
and watches the live panel (updated by the event stream) until every simulated device has played it; reject with a
reason; cancel behind a confirmation dialog; a ward's approver neither sees nor approves another ward's broadcast.

Broadcasts are created through the operator API with bearer tokens, each with a title of its own (the site is shared).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from tests.browser.conftest import DESKTOP, PHONE, Console, Site

LIVE_TIMEOUT_MS = 90_000


def token(site: Site, handle: str) -> str:
    if handle not in site.tokens:
        site.tokens[handle] = site.home.run("token", "create", "--staff", handle).stdout.split()[0]
    return site.tokens[handle]


def create(site: Site, title: str, *, by: str = "lan.nguyen", ward: str = "00595", submit: bool = True,
           **extra: Any) -> str:  # fmt: skip
    body = {"title": title, "text": "Diễn tập sơ tán khi có cháy tại chợ: bà con đi theo hướng dẫn của tổ dân phố.",
            "priority": "normal", "targets": {"areas": [ward]}, **extra}  # fmt: skip
    client = site.home.client
    created = client.json("POST", "/api/v1/broadcasts", body, token(site, by))
    assert created.status == 201, created.body
    bid = str(created.json()["id"])
    if submit:
        submitted = client.json("POST", f"/api/v1/broadcasts/{bid}/submit", None, token(site, by))
        assert submitted.status == 200, submitted.body
    return bid


def state_of(site: Site, bid: str) -> str:
    return str(site.home.client.json("GET", f"/api/v1/broadcasts/{bid}", None, token(site, "mai.le")).json()["state"])


def titled(label: str, what: str) -> str:
    return f"{what} {label} {uuid.uuid4().hex[:6]}"


def as_other(console: Console, handle: str) -> Console:
    """Another person's browser at the same width as `console`."""
    viewport = PHONE if console.label == "phone" else DESKTOP
    other = Console(console.context.browser, console.site, viewport, console.label)
    other.sign_in(handle)
    return other


def test_the_drafter_cannot_approve_and_the_approver_reviews_approves_and_watches_it_play(console: Console) -> None:
    site = console.site
    title = titled(console.label, "Diễn tập báo cháy")
    bid = create(site, title, priority="emergency", drill=True, schedule={"repeats": 1})
    page = console.sign_in("lan.nguyen")
    page.goto(f"/console/broadcasts/{bid}")
    assert page.get_by_role("heading", name=title, level=1).is_visible()
    assert page.get_by_role("button", name="Duyệt bản tin").count() == 0
    four_eyes = page.locator("#four-eyes")
    assert four_eyes.inner_text() == "Bạn đã soạn/sửa bản tin này nên không thể tự duyệt (nguyên tắc bốn mắt)"
    console.shot("review-broadcast-drafter")
    # The drafter revises (through the API): the approver will see what changed.
    revised = site.home.client.json(
        "PATCH", f"/api/v1/broadcasts/{bid}",
        {"text": "Diễn tập sơ tán khi có cháy tại nhà văn hóa: bà con đi theo hướng dẫn của tổ dân phố."},
        token(site, "lan.nguyen"),
    )  # fmt: skip
    assert revised.status == 200, revised.body
    approver = as_other(console, "hung.tran")
    try:
        page = approver.page
        page.goto("/console/approvals")
        queue = page.locator("#queue")
        assert queue.get_by_role("link", name=title).is_visible()
        approver.shot("review-approvals")
        queue.get_by_role("link", name=title).click()
        assert page.get_by_role("heading", name=title, level=1).is_visible()
        history = page.locator(".event-Revised")
        assert history.get_by_role("heading", name="Sửa bản tin (lần 1)").is_visible()
        assert "chợ" in history.locator("del").first.inner_text()
        assert "nhà văn hóa" in history.locator("ins").first.inner_text()
        assert page.locator("#four-eyes").count() == 0
        approver.shot("review-broadcast-diff")
        page.get_by_role("button", name="Duyệt bản tin").click()
        assert page.get_by_role("status").filter(has_text="Đã duyệt bản tin.").is_visible()
        # The live panel follows the event stream (no reload) until every targeted device has played.
        page.wait_for_function(
            """() => { const s = document.querySelector('#live-summary');
                       return s && Number(s.dataset.targeted) > 0 && s.dataset.played === s.dataset.targeted; }""",
            timeout=LIVE_TIMEOUT_MS,
        )
        summary = page.locator("#live-summary")
        assert summary.inner_text().startswith("Đã phát xong trên tất cả")
        targeted = int(summary.get_attribute("data-targeted") or 0)
        assert targeted > 1
        played_tile = page.locator(".live-tiles .count-played .num")
        assert played_tile.inner_text() == str(targeted)
        rows = page.locator("table.delivery tbody tr")
        assert rows.count() > 1 and page.locator("table.delivery tbody tr.done").count() == rows.count()
        assert page.locator("#budget-verdict").inner_text() in ("trong ngân sách", "vượt ngân sách")
        approver.shot("review-live-complete")
        # Once the renderer has produced the speaker audio, the page offers it over the session.
        deadline = time.time() + 30
        while page.locator("#speaker-audio").count() == 0 and time.time() < deadline:
            time.sleep(1)
            page.reload()
        src = page.locator("#speaker-audio").get_attribute("src")
        assert src, "no speaker audio on the page"
        audio = approver.context.request.get(src)
        assert audio.status == 200 and audio.headers["content-type"] == "audio/mpeg"
    finally:
        approver.close()
    assert state_of(site, bid) in ("dispatching", "completed")


def test_an_approver_rejects_with_a_reason(desktop: Console) -> None:
    site = desktop.site
    title = titled("desktop", "Thông báo cắt điện")
    bid = create(site, title)
    page = desktop.sign_in("hung.tran")
    page.goto(f"/console/broadcasts/{bid}")
    reason = page.get_by_label("Lý do từ chối (bắt buộc)")
    assert reason.get_attribute("required") is not None
    reason.fill("Sai giờ cắt điện, đề nghị kiểm tra lại với điện lực.")
    page.get_by_role("button", name="Từ chối bản tin").click()
    assert page.get_by_role("status").filter(has_text="Đã từ chối bản tin.").is_visible()
    assert page.locator("#end-reason").inner_text() == "Sai giờ cắt điện, đề nghị kiểm tra lại với điện lực."
    assert page.get_by_role("button", name="Duyệt bản tin").count() == 0
    assert state_of(site, bid) == "rejected"


def test_cancel_asks_for_confirmation_first(desktop: Console) -> None:
    site = desktop.site
    title = titled("desktop", "Lịch tiêm chủng")
    bid = create(site, title)
    page = desktop.sign_in("hung.tran")
    page.goto(f"/console/broadcasts/{bid}")
    page.get_by_label("Lý do hủy (bắt buộc)").fill("Đã có lịch mới.")
    questions: list[str] = []

    def dismiss(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Hủy bản tin").click()
    page.wait_for_timeout(500)
    assert questions and title in questions[0] and state_of(site, bid) == "submitted"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Hủy bản tin").click()
    assert page.get_by_role("status").filter(has_text="Đã hủy bản tin.").is_visible()
    assert state_of(site, bid) == "cancelled"
    desktop.shot("review-cancelled")


def test_a_ward_approver_neither_sees_nor_approves_another_wards_broadcast(desktop: Console, phone: Console) -> None:
    site = desktop.site
    title = titled("desktop", "Thông báo phường khác")
    bid = create(site, title, ward="00598")
    page = desktop.sign_in("ha.vu")
    page.goto("/console/approvals")
    assert page.get_by_role("link", name=title).count() == 0
    response = page.goto(f"/console/broadcasts/{bid}")
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="Không tìm thấy").is_visible()
    csrf = page.locator('input[name="csrf"]').first.input_value()
    forged = desktop.context.request.post(f"/console/broadcasts/{bid}/approve", form={"csrf": csrf}, max_redirects=0)
    assert forged.status in (403, 404) and "<h1>" in forged.text()
    assert state_of(site, bid) == "submitted"
    # Bad ids and actions are 4xx pages, never 5xx.
    for path in ("/console/broadcasts/xyz", f"/console/broadcasts/{uuid.uuid4()}", f"/console/broadcasts/{bid}/x"):
        assert 400 <= desktop.context.request.get(path).status < 500, path
    assert 400 <= desktop.context.request.post(f"/console/broadcasts/{bid}/explode", form={"csrf": csrf}).status < 500
    # On a phone, the approval queue and the broadcast page fit the screen.
    ours = create(site, titled("phone", "Thông báo họp tổ"))
    page = phone.sign_in("ha.vu")
    page.goto("/console/approvals")
    page.get_by_role("link", name=re.compile("Thông báo họp tổ phone")).first.click()
    assert page.url.endswith(f"/console/broadcasts/{ours}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, width
    phone.shot("review-broadcast-approver")
