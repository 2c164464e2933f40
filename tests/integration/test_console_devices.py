"""The console's devices and inbound pages without a browser: the app in process (aiohttp's test client) over a
sample-district store, signed in with a token; status changes and inbound messages made through the services."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from keng.adapters.secrets import SecretStore
from keng.adapters.signing import sign
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.broadcast import Broadcast
from keng.domain.endpoint import Endpoint
from keng.domain.standing_orders import StandingOrder
from keng.runtime.config import load_settings
from keng.runtime.console import devicemap
from keng.runtime.console.pages.devices import duration_vi, status_of
from keng.runtime.http.app import create_app
from keng.runtime.http.services import Services
from keng.services.access import add_integration, issue_token
from keng.services.inventory import install_sample


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Keng, Path, dict[str, str], str]]:
    tmp = tmp_path_factory.mktemp("console-devices")
    app = Keng(env=locate_store(None, tmp).env)
    install_sample(app, reorganise=False)  # the 2022 codes (before the reorganisation)
    handles = ("admin", "ha.vu", "lan.nguyen", "mai.le", "hung.tran")
    tokens = {h: issue_token(app, staff=h, label="test", by="admin") for h in handles}
    secret = add_integration(app, SecretStore(tmp), name="city-source", kind="city-source", jurisdiction=["021"],
                             by="admin")  # fmt: skip
    # Some history: one device goes offline and comes back, another reports a fault.
    e = app.endpoint("00595-T01-IP1")
    e.came_online()
    e.went_offline("powered-off")
    app.save_changes(e)
    e.came_online()
    app.save_changes(e)
    f = app.endpoint("00598-T01-IP1")
    f.report_fault("loa rè", severity="broken", by="admin")
    app.save_changes(f)
    yield app, tmp, tokens, secret
    app.close()


@pytest.fixture
async def client(store: tuple[Keng, Path, dict[str, str], str]) -> AsyncIterator[TestClient[Any, Any]]:
    app, tmp, _, _ = store
    services = Services(app=app, secrets=SecretStore(tmp), settings=load_settings(data_dir=str(tmp), environ={}),
                        standing_orders=[StandingOrder("thông báo thường", frozenset({"city-source"}))],
                        ratify_within=timedelta(0))  # fmt: skip
    async with TestClient(TestServer(create_app(services))) as c:
        yield c


async def sign_in(client: TestClient[Any, Any], token: str) -> None:
    client.session.cookie_jar.clear()
    form = await (await client.get("/console/sign-in")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    fields = {"csrf": csrf.group(1), "token": token, "next": "/console/"}
    done = await client.post("/console/sign-in/token", data=fields, allow_redirects=False)
    assert done.status in (302, 303), await done.text()


def marks(html: str) -> list[str]:
    return re.findall(r'class="dev dev-(\w+)" data-code="([^"]+)"', html)  # type: ignore[return-value]


async def test_devices_page_counts_maps_and_scopes(client: TestClient[Any, Any], store: Any) -> None:
    tokens = store[2]
    await sign_in(client, tokens["lan.nguyen"])
    page = await client.get("/console/devices")
    html = await page.text()
    assert page.status == 200, html
    found = marks(html)
    svg = html.split('<svg class="map"')[1].split("</svg>")[0]
    assert len(found) == svg.count("<title>") and len(found) > 400  # every device with coordinates, one mark each
    assert 'role="img"' in html and "Phường Thượng Cát" in html
    assert ("fault", "00598-T01-IP1") in [(s, c) for s, c in found]
    await sign_in(client, tokens["ha.vu"])
    html = await (await client.get("/console/devices")).text()
    codes = [c for _, c in marks(html)]
    assert codes and all(c.startswith(("00595-", "021-")) for c in codes)
    assert "00598-T01-IP1" not in html
    assert (await client.get("/console/devices/00598-T01-IP1")).status == 404


async def test_device_history_and_offline_window(client: TestClient[Any, Any], store: Any) -> None:
    _, _, tokens, _ = store
    await sign_in(client, tokens["lan.nguyen"])
    page = await client.get("/console/devices/00595-T01-IP1")
    html = await page.text()
    assert page.status == 200, html
    assert html.count('data-event="Endpoint.CameOnline"') == 2 and "Mất kết nối" in html and "tắt nguồn" in html
    reply = await client.get("/console/devices?start=2000-01-01T00:00&end=2199-01-01T00:00")
    html = await reply.text()
    assert reply.status == 200 and "00595-T01-IP1" in html.split('id="offline-table"')[1]
    got = await client.get("/console/devices?start=2000-01-01T00:00&end=2199-01-01T00:00&format=csv")
    assert got.status == 200 and got.content_type == "text/csv"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO((await got.read()).decode("utf-8-sig"))))
    assert rows[0][0] == "Mã thiết bị" and [r[0] for r in rows[1:]] == ["00595-T01-IP1"]


@pytest.mark.parametrize(
    "path",
    [
        "/console/devices?ward=99999",
        "/console/devices?kind=toaster",
        "/console/devices?status=sleepy",
        "/console/devices?nope=1",
        "/console/devices?ward=00595&ward=00598",
        "/console/devices?start=yesterday&end=2026-01-01T00:00",
        "/console/devices?start=2026-01-02T00:00&end=2026-01-01T00:00",
        "/console/devices?start=2026-01-02T00:00",
        "/console/devices?start=0001-01-01T00:00&end=2026-01-01T00:00",
        "/console/devices?format=csv",
        "/console/devices?start=2026-01-01T00:00&end=2026-01-02T00:00&format=pdf",
        "/console/devices/no-such-device",
        "/console/devices/" + "x" * 300,
        "/console/devices/00595-T01-IP1?x=1",
        "/console/inbound?page=0",
        "/console/inbound?page=abc",
        "/console/inbound?page=999",
        "/console/inbound?source=fax",
        "/console/inbound?outcome=maybe",
        "/console/devices?asof=notatime",
    ],
)
async def test_bad_parameters_get_a_4xx_page(client: TestClient[Any, Any], store: Any, path: str) -> None:
    await sign_in(client, store[2]["admin"])
    reply = await client.get(path)
    assert 400 <= reply.status < 500, (path, reply.status)
    assert "text/html" in reply.content_type


async def test_inbound_lists_accepted_messages_for_auditors_only(client: TestClient[Any, Any], store: Any) -> None:
    _, _, tokens, secret = store
    body = orjson.dumps({"title": "Tin đến thử nghiệm", "text": "Mất nước từ 8 giờ sáng mai tại tổ 1.",
                         "priority": "normal", "targets": {"areas": ["00595"]}})  # fmt: skip
    for _ in range(2):
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "webhook-id": "fast-1", "webhook-timestamp": str(ts),
                   "webhook-signature": sign(secret, "fast-1", ts, body)}  # fmt: skip
        reply = await client.post("/api/v1/hooks/city-source", data=body, headers=headers)
        assert reply.status == 202, await reply.text()
    await sign_in(client, tokens["lan.nguyen"])
    assert (await client.get("/console/inbound")).status == 403
    await sign_in(client, tokens["mai.le"])
    html = await (await client.get("/console/inbound")).text()
    assert html.count('data-key="fast-1"') == 1 and 'data-outcome="accepted"' in html
    assert "Tin đến thử nghiệm" in html
    ratify = html.split('id="ratify-table"')[1].split("</table>")[0]  # approved by the standing order, overdue at once
    assert "Tin đến thử nghiệm" in ratify and "thông báo thường" in ratify and "Quá hạn" in ratify
    html = await (await client.get("/console/inbound?outcome=duplicate")).text()
    assert 'data-key="fast-1"' not in html


def test_map_marks_have_a_shape_per_status_and_a_title() -> None:
    def outline(status: str) -> tuple[str, str]:
        name, attrs = devicemap.shape(status, 10, 10)
        return name, re.sub(r"[-0-9. ]+", "", attrs.get("d", ""))  # the element and its path commands

    assert len({outline(s) for s in devicemap.DRAW_ORDER}) == len(devicemap.DRAW_ORDER)  # a shape per status
    svg = devicemap.draw([devicemap.Mark("A<1", 21.0, 105.7, "online", "A<1 & co")], [], label="x", empty="none")
    assert "<title>A&lt;1 &amp; co</title>" in svg and 'data-marks="1"' in svg
    assert devicemap.draw([], [], label="x", empty="không có").startswith('<p class="muted">')


def test_status_and_durations() -> None:
    e = Endpoint.register(code="X1", kind="ip-speaker", ward="00595", group=None, technology="ip", by="admin")
    assert status_of(e) == "unknown"
    e.came_online()
    assert status_of(e) == "online"
    e.report_fault("rè", severity="degraded", by="admin")
    assert status_of(e) == "fault"
    assert duration_vi(45) == "45 giây" and duration_vi(3725) == "1 giờ 2 phút"
    assert duration_vi(90061) == "1 ngày 1 giờ 1 phút"


async def test_as_of_pages_show_the_past(client: TestClient[Any, Any], store: Any) -> None:
    app, _, tokens, _ = store
    fault_at = next(e.timestamp for _, e in app.read_events() if type(e).__qualname__ == "Endpoint.FaultReported")
    before = (fault_at - timedelta(microseconds=1)).isoformat()
    await sign_in(client, tokens["mai.le"])
    then = await (await client.get("/console/devices", params={"asof": before})).text()
    now = await (await client.get("/console/devices")).text()
    assert ("fault", "00598-T01-IP1") in marks(now) and ("fault", "00598-T01-IP1") not in marks(then)
    assert "chỉ đọc" in then
    page = await client.get("/console/devices/00598-T01-IP1", params={"asof": before})
    assert page.status == 200 and 'data-event="Endpoint.FaultReported"' not in await page.text()
    assert (await client.get("/console/inbound", params={"asof": before})).status == 200
    await sign_in(client, tokens["lan.nguyen"])
    assert (await client.get("/console/devices", params={"asof": before})).status == 403


async def test_a_standing_order_approval_is_ratified_or_retracted_from_its_page(
    client: TestClient[Any, Any], store: Any
) -> None:
    app, _, tokens, secret = store
    for key in ("order-1", "order-2"):
        body = orjson.dumps({"title": f"Thông báo {key}", "text": "Cắt điện từ 8 giờ sáng mai tại tổ 1.",
                             "priority": "normal", "targets": {"areas": ["00595"]}})  # fmt: skip
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "webhook-id": key, "webhook-timestamp": str(ts),
                   "webhook-signature": sign(secret, key, ts, body)}  # fmt: skip
        assert (await client.post("/api/v1/hooks/city-source", data=body, headers=headers)).status == 202
    ids = {b.title: b.id for b in app.aggregates_of(Broadcast.Drafted).values()}
    first, second = ids["Thông báo order-1"], ids["Thông báo order-2"]
    await sign_in(client, tokens["lan.nguyen"])  # a drafter: neither button
    html = await (await client.get(f"/console/broadcasts/{first}")).text()
    assert "Rút lại phê duyệt tự động" not in html and "Xác nhận phê duyệt tự động" not in html
    page = await client.get(f"/console/broadcasts/{first}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert csrf
    refused = await client.post(f"/console/broadcasts/{first}/retract", data={"csrf": csrf.group(1), "reason": "x"})
    assert refused.status == 403 and not app.broadcast(first).approvals[0].get("retracted_by")
    await sign_in(client, tokens["hung.tran"])
    html = await (await client.get(f"/console/broadcasts/{first}")).text()
    assert "Rút lại phê duyệt tự động" in html and "Xác nhận phê duyệt tự động" in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    no_reason = await client.post(f"/console/broadcasts/{first}/retract", data={"csrf": csrf.group(1)})
    assert no_reason.status == 400
    done = await client.post(f"/console/broadcasts/{first}/retract",
                             data={"csrf": csrf.group(1), "reason": "Sai đối tượng nhận tin"})  # fmt: skip
    assert "Đã rút lại phê duyệt theo lệnh thường trực." in await done.text()
    assert app.broadcast(first).approvals[0]["retracted_by"] == "hung.tran"
    assert "Rút lại phê duyệt tự động" in await done.text()  # in its history, and no button is left
    assert 'action="/console/broadcasts/' + str(first) + '/ratify"' not in await done.text()
    done = await client.post(f"/console/broadcasts/{second}/ratify", data={"csrf": csrf.group(1)})
    assert "Đã xác nhận phê duyệt theo lệnh thường trực." in await done.text()
    assert app.broadcast(second).approvals[0].get("ratified_by") == "hung.tran"
