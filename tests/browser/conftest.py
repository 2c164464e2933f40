"""The console in a real browser: Playwright driving the system's Chromium (Debian's `chromium`, or
KENG_TEST_CHROMIUM) against one real `keng serve` (sample district, SQLite) with a mosquitto broker started on a free
port and `keng simulate` as the fleet. Nothing is downloaded: Playwright's own browsers are never used.

The site and the browser live as long as this package's tests (package scope): Playwright's sync API runs an event
loop in the main thread while it is open, so it must be closed before any later test calls `asyncio.run`.

Without Chromium or Playwright the tests are skipped with the reason, except in CI (CI=true), where they fail.
Screenshots (desktop 1280 px and phone 390 px) go to `test-artefacts/screenshots/` (KENG_TEST_ARTEFACTS), which CI
keeps.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Mosquitto
from tests.keng_process import KENG, KengHome, keng_home

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = os.environ.get("KENG_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTEFACTS = Path(os.environ.get("KENG_TEST_ARTEFACTS", Path(__file__).resolve().parents[2] / "test-artefacts"))
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
STAFF = ("admin", "lan.nguyen", "hung.tran", "minh.pham", "ha.vu", "tuan.do", "mai.le", "khoa.bui")


def password_of(handle: str) -> str:
    """The console password the site gives each sample staff member."""
    return f"Mat-khau-{handle}-2026"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@dataclass
class Site:
    """A running `keng serve` with its broker and simulated fleet."""

    home: KengHome
    base: str
    broker: Mosquitto
    fleet: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if shutil.which("mosquitto") is None:
        unavailable("the mosquitto binary is not installed (apt-get install mosquitto)")
    root = tmp_path_factory.mktemp("console-site")
    home = keng_home(root / "data")
    home.run("init", "--sample", "2022")  # the pages' tests name the 2022 wards (00595, 00601, district 021)
    # A member of their own for the lock-out test, so that locking them out disturbs no other flow.
    home.run(
        "staff", "add", "khoa.bui", "--name", "Bùi Văn Khoa", "--role", "drafter", "--ward", "00595", "--as", "admin"
    )
    for handle in STAFF:
        done = subprocess.run([*KENG, "staff", "password", handle], input=password_of(handle) + "\n", env=home.env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
    tokens = {h: home.run("token", "create", "--staff", h).stdout.split()[0] for h in ("hung.tran", "mai.le")}
    broker = Mosquitto(root)
    fleet: subprocess.Popen[bytes] | None = None
    try:  # whatever started is stopped again, also when a later step fails
        broker.start()
        url = f"mqtt://127.0.0.1:{broker.port}"
        client = home.serve("--broker", url)
        with (root / "fleet.log").open("wb") as fleet_log:
            fleet = subprocess.Popen([*KENG, "simulate", "--broker", url, "--play-scale", "0.001"], env=home.env,
                                     stdout=fleet_log, stderr=subprocess.STDOUT)  # fmt: skip
        yield Site(home, f"http://127.0.0.1:{client.port}", broker, fleet, tokens)
    finally:
        if fleet is not None:
            fleet.terminate()
            fleet.wait(20)
        home.kill()
        broker.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install '.[dev]')")
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set KENG_TEST_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Console:
    """Pages of one browser context (desktop or phone) on the site."""

    def __init__(self, browser: Any, site: Site, viewport: dict[str, int], label: str) -> None:
        phone = viewport == PHONE
        self.context = browser.new_context(viewport=viewport, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
                                           is_mobile=phone, has_touch=phone, base_url=site.base)  # fmt: skip
        self.context.set_default_timeout(15_000)
        self.site, self.label = site, label
        self.page = self.context.new_page()

    def sign_in(self, handle: str, password: str | None = None) -> Any:
        page = self.page
        page.goto("/console/sign-in")
        page.get_by_label("Tên đăng nhập").fill(handle)
        page.get_by_label("Mật khẩu", exact=True).fill(password or password_of(handle))
        page.get_by_role("button", name="Đăng nhập", exact=True).click()
        return page

    def shot(self, name: str) -> Path:
        """A full-page screenshot under test-artefacts/screenshots/ named by the flow and the width."""
        safe = re.sub(r"[^a-z0-9_-]+", "-", name.lower())
        path = ARTEFACTS / "screenshots" / f"{safe}-{self.label}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture(params=[("desktop", DESKTOP), ("phone", PHONE)], ids=["desktop", "phone"])
def console(request: pytest.FixtureRequest, browser: Any, site: Site) -> Iterator[Console]:
    """A fresh browser context (no cookies) at desktop and at phone width."""
    label, viewport = request.param
    c = Console(browser, site, viewport, label)
    yield c
    c.close()


@pytest.fixture
def desktop(browser: Any, site: Site) -> Iterator[Console]:
    c = Console(browser, site, DESKTOP, "desktop")
    yield c
    c.close()


@pytest.fixture
def phone(browser: Any, site: Site) -> Iterator[Console]:
    c = Console(browser, site, PHONE, "phone")
    yield c
    c.close()
