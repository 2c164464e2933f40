"""Audio served to devices (signed links) and staff (tokens): ETag = the asset hash, ranges, digests, refusals."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.adapters.tts.render import RenderConfig, Renderer
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.services.access import issue_token
from keng.services.inventory import install_sample
from tests.http_server import Client, serve


@pytest.fixture
def audio_server(tmp_path: Path, renderer: Renderer) -> Iterator[tuple[Client, Services, str, str, bytes]]:
    app = Keng(env=locate_store(None, tmp_path).env)
    install_sample(app)
    token = issue_token(app, staff="mai.le", label="audio", by="admin")
    (asset,) = renderer.render_bulletin(
        "Thông báo: ngày mai cắt điện từ 8 giờ.", "normal", ["speaker"], RenderConfig(store_root=tmp_path / "assets")
    )
    services = Services(
        app=app, secrets=SecretStore(tmp_path), settings=load_settings(data_dir=str(tmp_path), environ={})
    )
    with serve(services) as client:
        yield client, services, token, asset.asset_hash, asset.path.read_bytes()
    app.close()


def test_a_signed_link_serves_the_file_with_its_hash_and_digest(audio_server) -> None:  # type: ignore[no-untyped-def]
    client, services, _, key, data = audio_server
    query = services.audio_links.query(key, datetime.now(UTC) + timedelta(hours=1))
    reply = client.request("GET", f"/audio/{key}?{query}")
    assert reply.status == 200 and reply.body == data
    assert reply.headers["etag"] == f'"{key}"' and reply.headers["content-type"] == "audio/mpeg"
    assert reply.headers["repr-digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
    assert client.request("GET", f"/audio/{key}?{query}", headers={"If-None-Match": f'"{key}"'}).status == 304


def test_byte_ranges_resume_a_download(audio_server) -> None:  # type: ignore[no-untyped-def]
    client, _, token, key, data = audio_server
    part = client.request("GET", f"/audio/{key}", headers={"Range": "bytes=100-199"}, token=token)
    assert part.status == 206 and part.body == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = client.request("GET", f"/audio/{key}", headers={"Range": "bytes=-50"}, token=token)
    assert tail.status == 206 and tail.body == data[-50:]
    assert client.request("GET", f"/audio/{key}", headers={"Range": f"bytes={len(data)}-"}, token=token).status == 416


def test_audio_is_refused_without_a_valid_link_or_token(audio_server) -> None:  # type: ignore[no-untyped-def]
    client, services, _, key, _ = audio_server
    assert client.request("GET", f"/audio/{key}").status == 401
    expired = services.audio_links.query(key, datetime.now(UTC) - timedelta(seconds=1))
    assert client.request("GET", f"/audio/{key}?{expired}").status == 403
    other = services.audio_links.query("0" * 64, datetime.now(UTC) + timedelta(hours=1))
    assert client.request("GET", f"/audio/{key}?{other}").status == 403
    assert client.request("GET", f"/audio/{key}?exp=99999999999&sig=00").status == 403
    assert client.request("GET", f"/audio/{key}?exp=99999999999&sig=%C3%A9").status == 403  # not ASCII: not a 500


def test_unknown_or_malformed_keys_are_404(audio_server) -> None:  # type: ignore[no-untyped-def]
    client, _, token, _, _ = audio_server
    assert client.request("GET", f"/audio/{'a' * 64}", token=token).status == 404
    assert client.request("GET", "/audio/..%2f..%2fkeng.db", token=token).status == 404


def test_board_pages_are_served_to_signed_links_and_staff_by_their_hash(audio_server) -> None:  # type: ignore[no-untyped-def]
    from keng.runtime.dispatch.content import ItemContent

    client, services, token, _, _ = audio_server
    content = ItemContent(services.settings.data_dir / "assets")
    page = content.page("Cảnh báo: nước sông Hồng lên nhanh.", "emergency", (256, 128))
    image, layout = f"{page['image_sha256']}.png", f"{page['layout_sha256']}.json"
    later = datetime.now(UTC) + timedelta(hours=1)
    reply = client.request("GET", f"/board/{image}?{services.audio_links.query(page['image_sha256'], later)}")
    assert reply.status == 200 and reply.headers["content-type"] == "image/png"
    assert hashlib.sha256(reply.body).hexdigest() == page["image_sha256"]
    assert reply.headers["etag"] == f'"{page["image_sha256"]}"'
    as_staff = client.request("GET", f"/board/{layout}", token=token)
    assert as_staff.status == 200 and as_staff.json()["width"] == 256 and as_staff.json()["label"] == "KHẨN CẤP"
    assert client.request("GET", f"/board/{layout}", headers={"If-None-Match": as_staff.headers["etag"]},
                          token=token).status == 304  # fmt: skip
    # a link for one file opens no other; no link and no token: 401; names that are no page: 404
    other = services.audio_links.query(page["image_sha256"], later)
    assert client.request("GET", f"/board/{layout}?{other}").status == 403
    assert client.request("GET", f"/board/{image}").status == 401
    for name in (f"{'a' * 64}.png", "..%2f..%2fkeng.db", f"{page['image_sha256']}.mp3", "KEY"):
        assert client.request("GET", f"/board/{name}", token=token).status == 404, name
    content.close()
