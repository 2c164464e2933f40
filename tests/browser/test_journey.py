"""The issue's "done means", in one browser journey: a ward official signs in on a phone, composes an emergency for
her ward, sends it for approval and cannot approve it herself; the ward's approver approves it from the queue on a
desktop; back on the phone, the live view reaches "played" on every simulated device of the ward, in Vietnamese.
Two screenshots of this journey, cropped, are the README's (docs/img/console-*.png, copied by hand from
test-artefacts/)."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.browser.conftest import ARTEFACTS, Console

LIVE_TIMEOUT_MS = 90_000


def test_a_ward_official_composes_on_a_phone_gets_approval_and_watches_it_play(
    phone: Console, desktop: Console
) -> None:
    title = f"Cảnh báo ngập úng {uuid.uuid4().hex[:6]}"
    page = phone.sign_in("tuan.do")
    expect(page.get_by_role("heading", name="Tổng quan")).to_be_visible()
    page.get_by_role("link", name="Soạn tin", exact=True).click()
    page.get_by_label("Tiêu đề").fill(title)
    page.get_by_label("Nội dung bản tin").fill(
        "Mưa lớn từ 14h đến 18h ngày 02/12, mực nước có thể lên 0,5 m tại TDP số 1. Đề nghị bà con kê cao đồ đạc."
    )
    expect(page.locator("#spoken")).to_contain_text("mười bốn giờ")
    page.get_by_label("Khẩn cấp").check()
    page.locator("#area-00595").check()
    phone.shot("journey-1-compose")
    page.get_by_role("button", name="Lưu và gửi duyệt").click()
    expect(page.get_by_role("status").filter(has_text="Đã gửi bản tin đi duyệt.")).to_be_visible()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    assert page.get_by_role("button", name="Duyệt bản tin").count() == 0  # she drafted it, and holds no approver role
    broadcast_url = page.url.split("?")[0]
    phone.shot("journey-2-submitted")

    approver = desktop.sign_in("ha.vu")
    approver.get_by_role("link", name="Chờ duyệt", exact=True).click()
    approver.locator("#queue").get_by_role("link", name=title).click()
    approver.get_by_role("button", name="Duyệt bản tin").click()
    expect(approver.get_by_role("status").filter(has_text="Đã duyệt bản tin.")).to_be_visible()
    desktop.shot("journey-3-approved")

    page.goto(broadcast_url)
    page.wait_for_function(
        """() => { const s = document.querySelector('#live-summary');
                   return s && Number(s.dataset.targeted) > 0 && s.dataset.played === s.dataset.targeted; }""",
        timeout=LIVE_TIMEOUT_MS,
    )
    summary = page.locator("#live-summary")
    expect(summary).to_contain_text("Đã phát xong trên tất cả")
    assert int(summary.get_attribute("data-targeted") or 0) > 1
    phone.shot("journey-4-played")
    approver.goto(broadcast_url)
    approver.wait_for_function(
        """() => { const s = document.querySelector('#live-summary');
                   return s && Number(s.dataset.targeted) > 0 && s.dataset.played === s.dataset.targeted; }""",
        timeout=LIVE_TIMEOUT_MS,
    )
    desktop.shot("journey-4-played")
    for name in ("journey-1-compose-phone", "journey-4-played-desktop"):  # the README's pictures (docs/img/)
        assert (ARTEFACTS / "screenshots" / f"{name}.png").stat().st_size > 10_000
