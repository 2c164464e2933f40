"""The console's broadcast list and compose pages over aiohttp's test client (no browser): drafting, revising and
submitting through the form, the same validation as the API in Vietnamese, previews, and a 4xx page (never a 5xx) for
every bad id, parameter or form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.broadcast import Broadcast
from keng.runtime.config import load_settings
from keng.runtime.console.areamap import area_map, choosable_tree
from keng.runtime.console.compose_form import ComposeForm, FormInvalid
from keng.runtime.http.app import create_app
from keng.runtime.http.services import Services
from keng.services.access import issue_token
from keng.services.inventory import install_sample

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def app(tmp_path: Path) -> Any:
    keng = Keng(env=locate_store(f"sqlite:///{tmp_path / 'keng.db'}", tmp_path).env)
    install_sample(keng, reorganise=False)  # the 2022 codes (before the reorganisation)
    yield keng
    keng.close()


@pytest.fixture
async def server(app: Keng, tmp_path: Path) -> AsyncIterator[TestServer]:
    settings = load_settings(data_dir=str(tmp_path), environ={})
    services = Services(app=app, secrets=SecretStore(tmp_path), settings=settings)
    async with TestServer(create_app(services)) as s:
        yield s


async def signed_in(server: TestServer, app: Keng, handle: str) -> tuple[TestClient, str]:
    token = issue_token(app, staff=handle, label="test", by="admin")
    client = TestClient(server)
    await client.start_server()
    page = await (await client.get("/console/sign-in")).text()
    reply = await client.post("/console/sign-in/token", data={"csrf": CSRF.search(page)[1], "token": token})
    assert reply.status == 200, await reply.text()
    home = await reply.text()
    return client, CSRF.search(home)[1]


def form(csrf: str, **changes: Any) -> list[tuple[str, str]]:
    fields = {
        "csrf": csrf,
        "title": "Lịch tiêm phòng",
        "text": "Tiêm phòng dại cho chó mèo lúc 8h ngày 28/11.",
        "priority": "normal",
        "areas": ["00595-T01"],
        "channels": ["speaker", "eboard"],
        "action": "draft",
    }
    fields.update(changes)
    return [(k, v) for k, vs in fields.items() for v in (vs if isinstance(vs, list) else [vs])]


def broadcasts_titled(app: Keng, title: str) -> list[Broadcast]:
    from keng.projections.catalog import Catalog

    return [b for b in Catalog().fold(app.read_events()).of_type(Broadcast) if b.title == title]


async def test_a_drafter_drafts_revises_and_submits_through_the_form(server: TestServer, app: Keng) -> None:
    client, csrf = await signed_in(server, app, "lan.nguyen")
    try:
        page = await (await client.get("/console/compose")).text()
        assert 'name="areas" value="021"' in page and 'value="00601"' in page  # district-wide: the whole tree
        assert "<svg" in page and 'data-area="00595"' in page
        reply = await client.post("/console/compose", data=form(csrf), allow_redirects=False)
        assert reply.status == 303, await reply.text()
        (item,) = broadcasts_titled(app, "Lịch tiêm phòng")
        assert item.state == "draft" and item.target_areas == ["00595-T01"] and item.channels == ["speaker", "eboard"]
        assert reply.headers["Location"] == f"/console/broadcasts/{item.id}/edit?saved=draft"
        edit = await (await client.get(f"/console/broadcasts/{item.id}/edit?saved=draft")).text()
        assert "Đã lưu bản nháp." in edit and 'value="00595-T01" checked' in edit
        later = (datetime.now(UTC) + timedelta(days=2)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        changed = form(csrf, text="Lịch mới: ngày 29/11.", expires_at=later + "+00:00", action="submit",
                       version=str(item.version), areas=["00595", "00598"], drill="on")  # fmt: skip
        reply = await client.post(f"/console/broadcasts/{item.id}/edit", data=changed, allow_redirects=False)
        assert reply.status == 303, await reply.text()
        item = app.broadcast(item.id)
        assert (item.state, item.text, item.target_areas, item.drill) == (
            "submitted",
            "Lịch mới: ngày 29/11.",
            ["00595", "00598"],
            True,
        )
        listed = await (await client.get("/console/broadcasts?state=submitted")).text()
        assert "Lịch tiêm phòng" in listed and "Chờ duyệt" in listed
    finally:
        await client.close()


async def test_validation_errors_keep_the_input_and_name_the_field(server: TestServer, app: Keng) -> None:
    client, csrf = await signed_in(server, app, "lan.nguyen")
    try:
        before = app.max_position()
        cases = [
            ({"areas": []}, "Địa bàn nhận tin"),
            ({"title": ""}, "Tiêu đề: không được để trống"),
            ({"title": "x" * 300}, "Tiêu đề: dài quá 200 ký tự"),
            ({"repeats": "99"}, "Số lần phát"),
            ({"repeats": "abc"}, "Số lần phát"),
            ({"expires_at": "2020-01-01T08:00"}, "Hết hạn lúc: phải là một thời điểm trong tương lai"),
            ({"schedule_at": "not a time"}, "Thời điểm phát"),
            ({"channels": []}, "Kênh phát"),
            ({"channels": ["fax"]}, "Kênh phát"),
            ({"priority": "urgent"}, "Mức độ"),
            ({"areas": ["99999"]}, "Địa bàn nhận tin"),
            ({"title": "a\x00b"}, "Tiêu đề"),
            ({"text": "   "}, "Nội dung: không được để trống"),
            ({"areas": ["../" + "x" * 70]}, "Địa bàn nhận tin"),
            ({"areas": ["00595"], "endpoints": ["NO-SUCH-ENDPOINT"]}, "Địa bàn nhận tin"),
        ]
        for change, message in cases:
            reply = await client.post("/console/compose", data=form(csrf, **change), allow_redirects=False)
            text = await reply.text()
            assert reply.status == 422, (change, reply.status, text[:500])
            assert message in text, (change, re.findall(r'role="alert"[^>]*>([^<]*)', text))
            assert "text" in change or "Tiêm phòng dại cho chó mèo" in text  # the input is kept
        assert app.max_position() == before
    finally:
        await client.close()


async def test_a_ward_drafter_sees_their_ward_and_cannot_target_another(server: TestServer, app: Keng) -> None:
    client, csrf = await signed_in(server, app, "tuan.do")
    try:
        page = await (await client.get("/console/compose")).text()
        assert 'value="00595"' in page and 'value="00598"' not in page and 'value="021"' not in page
        before = app.max_position()
        reply = await client.post("/console/compose", data=form(csrf, areas=["00598"]), allow_redirects=False)
        assert reply.status == 403 and "Ngoài phạm vi" in await reply.text()
        assert app.max_position() == before
        theirs = broadcasts_titled(app, "x")
        assert theirs == []
    finally:
        await client.close()


async def test_who_may_compose_and_bad_ids_and_params_are_4xx(server: TestServer, app: Keng) -> None:
    auditor, csrf = await signed_in(server, app, "mai.le")
    drafter, dcsrf = await signed_in(server, app, "lan.nguyen")
    ward, _ = await signed_in(server, app, "tuan.do")
    try:
        assert (await auditor.get("/console/compose")).status == 403
        assert (await auditor.post("/console/compose", data=form(csrf))).status == 403
        assert (await auditor.get("/console/broadcasts")).status == 200
        assert "Soạn tin" not in await (await auditor.get("/console/broadcasts")).text()
        for path in ("/console/broadcasts?state=nope", "/console/broadcasts?page=0", "/console/broadcasts?page=x",
                     "/console/broadcasts?bogus=1", "/console/compose?x=1"):  # fmt: skip
            assert (await drafter.get(path)).status == 400, path
        assert (await drafter.get("/console/broadcasts/not-a-uuid/edit")).status == 404
        assert (await drafter.get("/console/broadcasts/00000000-0000-0000-0000-000000000000/edit")).status == 404
        assert (await drafter.get("/console/previews/nothing-here")).status == 404
        big = {"csrf": dcsrf, "text": "a" * 6000}
        assert (await drafter.post("/console/spoken", data=big)).status == 413
        # Another ward's broadcast is unknown to a ward drafter; a district-wide one is theirs to read, not to revise.
        reply = await drafter.post("/console/compose", data=form(dcsrf, title="Toàn quận", areas=["021"]),
                                   allow_redirects=False)  # fmt: skip
        assert reply.status == 303
        (district,) = broadcasts_titled(app, "Toàn quận")
        assert (await ward.get(f"/console/broadcasts/{district.id}/edit")).status == 403
        other = await drafter.post("/console/compose", data=form(dcsrf, title="Phường khác", areas=["00598"]),
                                   allow_redirects=False)  # fmt: skip
        assert other.status == 303
        (elsewhere,) = broadcasts_titled(app, "Phường khác")
        assert (await ward.get(f"/console/broadcasts/{elsewhere.id}/edit")).status == 404
        stale = form(dcsrf, version="7")
        assert (await drafter.post(f"/console/broadcasts/{district.id}/edit", data=stale)).status in (409, 422)
    finally:
        for c in (auditor, drafter, ward):
            await c.close()


async def test_spoken_form_and_previews(server: TestServer, app: Keng) -> None:
    client, csrf = await signed_in(server, app, "lan.nguyen")
    other, _ = await signed_in(server, app, "minh.pham")
    try:
        said = await client.post("/console/spoken", data={"text": "Họp lúc 8h ngày 28/11", "drill": "on"},
                                 headers={"X-CSRF-Token": csrf})  # fmt: skip
        text = await said.text()
        assert said.content_type == "text/plain" and "tám giờ" in text and "diễn tập" in text, text
        reply = await client.post("/console/compose/preview-audio", data={"text": "Xin chào bà con."},
                                  headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert reply.status == 200, await reply.text()
        url = (await reply.json())["url"]
        audio = await client.get(url)
        assert audio.status == 200 and audio.content_type == "audio/mpeg" and len(await audio.read()) > 1000
        assert (await other.get(url)).status == 404  # a preview is its owner's only
        board = await client.post("/console/compose/preview-board", data={"text": "Mất điện 8h-11h.",
                                  "priority": "emergency"}, headers={"X-CSRF-Token": csrf})  # fmt: skip
        urls = (await board.json())["urls"]
        image = await client.get(urls[0])
        assert image.content_type == "image/png" and (await image.read()).startswith(b"\x89PNG")
        empty = await client.post("/console/compose/preview-audio", data={"text": " "}, headers={"X-CSRF-Token": csrf})
        assert empty.status == 422
        assert (await client.post("/console/compose/preview-audio", data={"text": "x"})).status == 403  # no CSRF
    finally:
        await client.close()
        await other.close()


def test_the_form_builds_the_api_body_in_the_display_zone() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    f = ComposeForm(title="T", text="X", areas=["00595"], schedule_at="2030-01-02T08:00", expires_at="2030-01-03T08:00")
    body = f.body(tz)
    assert body["schedule"]["at"] == ["2030-01-02T08:00:00+07:00"] and body["expires_at"].endswith("+07:00")
    fields = f.fields(tz)
    assert fields["schedule_at"][0] == datetime(2030, 1, 2, 1, 0, tzinfo=UTC)
    with pytest.raises(FormInvalid) as e:
        ComposeForm(title="T", text="X").body(tz)
    assert e.value.field == "targets"


def test_the_tree_and_map_of_a_ward_drafter(app: Keng) -> None:
    areas = list(app.area_registry().in_force(app.clock()))
    tree = choosable_tree(areas, app.staff("tuan.do"))
    assert [n.code for n in tree] == ["00595"] and all(c.code.startswith("00595-") for c in tree[0].children)
    drawn = area_map(tree, areas, [], ["00595-T01"])
    assert [w.code for w in drawn.wards] == ["00595"]
    lit = {d.code for d in drawn.dots if d.selected}
    assert lit == {"00595-T01"}
    assert all(0 <= d.x <= drawn.width and 0 <= d.y <= drawn.height for d in drawn.dots + drawn.wards)
    whole = choosable_tree(areas, app.staff("lan.nguyen"))
    assert [n.code for n in whole] == ["021"] and len(whole[0].children) == 13
