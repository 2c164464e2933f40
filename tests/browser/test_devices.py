"""The devices pages in Chromium: health per ward on a map and in tables, a ward member's narrower view, one device's
history after it dropped off the network and came back (status messages published to the site's broker, as a device
does), the "offline during" question and its CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.browser.conftest import Console, Site

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DEVICE = "00601-T02-IP1"  # an IP speaker: the simulated fleet connects it


def endpoints(site: Site, ward: str | None = None) -> list[dict[str, Any]]:
    args = ["endpoint", "list", "--json", *(["--ward", ward] if ward else [])]
    return list(json.loads(site.home.run(*args).stdout))


def publish_status(site: Site, code: str, state: str, **extra: str) -> None:
    message = json.dumps({"v": 1, "endpoint": code, "state": state, **extra})
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(site.broker.port), "-q", "1", "-r",
                    "-t", f"keng/v1/status/{code}", "-m", message], check=True, timeout=20)  # fmt: skip


def wait_for(page: Any, url: str, check: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url)
        if check(page):
            return
        assert time.monotonic() < deadline, f"{url}: the page never showed the expected state"
        time.sleep(0.5)


def test_the_devices_page_lists_the_wards_and_maps_every_readable_device(console: Console, site: Site) -> None:
    page = console.sign_in("lan.nguyen")
    page.get_by_role("link", name="Thiết bị", exact=True).click()
    assert page.get_by_role("heading", name="Thiết bị", level=1).is_visible()
    # The simulated fleet connects as the site starts: wait until some devices are online (for a telling picture).
    wait_for(page, "/console/devices", lambda p: p.locator("svg.map .dev-online").count() > 50, 180)
    everything = endpoints(site)
    wards = {e["ward"] for e in everything}
    rows = page.locator("#ward-table tbody tr")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.ward)")) == sorted(wards)  # 13 wards + district
    co_nhue = page.locator('#ward-table tr[data-ward="00595"]')
    assert co_nhue.locator("td").first.inner_text() == str(sum(e["ward"] == "00595" for e in everything))
    the_map = page.get_by_role("img", name="Bản đồ")
    assert the_map.is_visible()
    located = [e for e in everything if e["lat"] is not None]
    assert page.locator("svg.map .dev").count() == len(located)
    assert page.locator("svg.map .dev title").count() == len(located)
    assert page.locator("svg.map text.place").count() == 13
    assert f"{len(located)} thiết bị" in (the_map.get_attribute("aria-label") or "")
    assert page.locator(".legend li").count() == 5
    console.shot("devices")
    page.locator("#ward-table").get_by_role("link", name="Phường Thượng Cát").click()
    assert page.locator("#group-table tbody tr").count() >= 10  # its residential groups
    assert page.locator("svg.map .dev").count() == sum(e["ward"] == "00595" and e["lat"] is not None
                                                       for e in everything)  # fmt: skip
    console.shot("devices-ward")


def test_a_ward_member_sees_only_her_wards_devices(desktop: Console, site: Site) -> None:
    page = desktop.sign_in("ha.vu")
    page.goto("/console/devices")
    codes = page.locator("svg.map .dev").evaluate_all("ms => ms.map(m => m.dataset.code)")
    mine = [e for e in endpoints(site) if e["ward"] in ("00595", "021")]  # her ward, and the district's own boards
    assert sorted(codes) == sorted(e["code"] for e in mine if e["lat"] is not None)
    assert all(c.startswith(("00595-", "021-")) for c in codes)
    assert page.locator("#device-table tbody tr").count() == len(mine)
    assert page.locator("#group-table").is_visible()  # one ward: its groups at once
    assert page.goto("/console/devices/00598-T01-IP1").status == 404
    assert page.goto("/console/devices?ward=00598").status == 400
    desktop.shot("devices-ward-member")


def test_a_device_that_went_offline_shows_it_in_its_history_and_in_the_offline_window(desktop: Console,
                                                                                    site: Site) -> None:  # fmt: skip
    page = desktop.sign_in("minh.pham")
    url = f"/console/devices/{DEVICE}"
    wait_for(page, url, lambda p: p.locator("#device-status").inner_text() == "Trực tuyến")  # the fleet connected it
    start = datetime.now(VN).replace(second=0, microsecond=0)
    publish_status(site, DEVICE, "offline", reason="powered-off")
    wait_for(page, url, lambda p: p.locator("#device-status").inner_text() == "Mất kết nối")
    time.sleep(1.5)
    publish_status(site, DEVICE, "online")
    wait_for(page, url, lambda p: p.locator("#device-status").inner_text() == "Trực tuyến")
    history = page.locator("#history tbody tr")
    events = history.evaluate_all("rs => rs.map(r => r.dataset.event)")
    assert events[:2] == ["Endpoint.CameOnline", "Endpoint.WentOffline"] and events[-1] == "Endpoint.Registered"
    assert "thiết bị tắt nguồn" in history.nth(1).inner_text()
    desktop.shot("device-history")

    end = datetime.now(VN).replace(second=0, microsecond=0) + timedelta(minutes=1)
    page.goto("/console/devices")
    page.get_by_label("Từ (giờ Việt Nam)").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Đến (giờ Việt Nam)").fill(end.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Tra cứu thiết bị mất kết nối").click()
    assert page.locator("#offline-summary").is_visible()
    listed = page.locator("#offline-table tbody th").all_inner_texts()
    assert DEVICE in listed
    desktop.shot("devices-offline-during")
    with page.expect_download() as info:
        page.get_by_role("link", name="Tải kết quả (CSV)").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][:3] == ["Mã thiết bị", "Loại thiết bị", "Mã phường"]
    assert sorted(r[0] for r in rows[1:]) == sorted(listed)
    mine = next(r for r in rows[1:] if r[0] == DEVICE)
    assert mine[1] == "Loa IP" and mine[2] == "00601" and 0 < float(mine[6]) < 120


def test_bad_dates_and_parameters_answer_a_vietnamese_4xx_page(desktop: Console) -> None:
    page = desktop.sign_in("lan.nguyen")
    bad = page.goto("/console/devices?start=2026-12-02T10:00&end=2026-12-01T10:00")
    assert bad.status == 400 and "phải sau" in page.get_by_role("alert").inner_text()
    desktop.shot("devices-bad-window")
    for path in ("/console/devices?start=hôm-qua&end=2026-12-01T10:00", "/console/devices?status=ngủ",
                 "/console/devices?format=csv", "/console/devices?zoom=3", "/console/devices/khong-co"):  # fmt: skip
        assert 400 <= page.goto(path).status < 500, path
