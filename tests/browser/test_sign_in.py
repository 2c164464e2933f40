"""Signing in and out of the console in Chromium: password and token sign-in, lock-out after repeated failures,
CSRF refusals, and "sign out everywhere" ending another browser's session."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Console, Site, password_of


def test_a_staff_member_signs_in_with_a_password_and_out_again(console: Console) -> None:
    page = console.page
    page.goto("/")  # the site's root leads to the console, which asks for a sign-in
    assert "/console/sign-in" in page.url
    console.shot("sign-in")
    page = console.sign_in("lan.nguyen")
    assert page.get_by_role("heading", name="Tổng quan").is_visible()
    assert page.get_by_text("Nguyễn Thị Lan").is_visible()
    console.shot("overview-drafter")
    page.get_by_role("button", name="Đăng xuất", exact=True).click()
    assert "/console/sign-in" in page.url
    page.goto("/console/")
    assert "/console/sign-in" in page.url  # the session is gone


def test_a_wrong_password_is_refused_in_vietnamese_and_names_nothing(desktop: Console) -> None:
    page = desktop.sign_in("lan.nguyen", "not-the-password")
    assert page.get_by_role("alert").inner_text() == "Sai tên đăng nhập hoặc mật khẩu."
    page = desktop.sign_in("nobody.here", "whatever-password")
    assert page.get_by_role("alert").inner_text() == "Sai tên đăng nhập hoặc mật khẩu."


def test_repeated_failures_lock_the_account_even_for_the_right_password(desktop: Console, site: Site) -> None:
    for _ in range(5):
        page = desktop.sign_in("khoa.bui", "wrong-password-123")
    assert "tạm khóa" in page.get_by_role("alert").inner_text()
    desktop.shot("sign-in-locked")
    page = desktop.sign_in("khoa.bui", password_of("khoa.bui"))
    assert "tạm khóa" in page.get_by_role("alert").inner_text()
    assert "/console/sign-in" in page.url
    events = site.home.run("events", "--json").stdout
    assert events.count("Credential.LockedOut") == 1 or '"LockedOut"' in events


def test_sign_in_with_an_api_token(desktop: Console, site: Site) -> None:
    page = desktop.page
    page.goto("/console/sign-in")
    page.get_by_label("Mã truy cập", exact=True).fill(site.tokens["mai.le"])
    page.get_by_role("button", name="Đăng nhập bằng mã").click()
    assert page.get_by_text("Lê Thị Mai").is_visible()


def test_forms_without_the_csrf_token_or_from_another_origin_are_refused(desktop: Console) -> None:
    page = desktop.sign_in("lan.nguyen")
    request: Any = desktop.context.request
    bare = request.post("/console/sign-out-everywhere", form={"x": "1"}, max_redirects=0)
    assert bare.status == 403 and "CSRF" in bare.text()
    csrf = page.locator('input[name="csrf"]').first.input_value()
    foreign = request.post("/console/sign-out-everywhere", form={"csrf": csrf}, max_redirects=0,
                           headers={"Origin": "https://evil.example"})  # fmt: skip
    assert foreign.status == 403
    # Still signed in: neither refused request did anything.
    page.goto("/console/")
    assert page.get_by_role("heading", name="Tổng quan").is_visible()


def test_sign_out_everywhere_ends_the_session_in_another_browser(browser: Any, site: Site) -> None:
    first, second = Console(browser, site, {"width": 1280, "height": 860}, "desktop"), None
    try:
        second = Console(browser, site, {"width": 390, "height": 844}, "phone")
        first.sign_in("minh.pham")
        second.sign_in("minh.pham")
        first.page.get_by_role("button", name="Đăng xuất khỏi mọi thiết bị").click()
        second.page.goto("/console/")
        assert "/console/sign-in" in second.page.url
    finally:
        first.close()
        if second is not None:
            second.close()


def test_signing_in_works_with_the_keyboard_alone(phone: Console) -> None:
    page = phone.page
    page.goto("/console/sign-in")
    for _ in range(10):  # past the skip link and the brand, to the first field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "handle":
            break
    assert page.evaluate("document.activeElement.id") == "handle"
    page.keyboard.type("hung.tran")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(password_of("hung.tran"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/")
    assert page.get_by_text("Trần Văn Hùng").is_visible()
