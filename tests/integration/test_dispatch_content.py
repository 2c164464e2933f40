"""What commands carry, end to end over a real broker and the real HTTP service: a board fetches the page rendered for
its resolution (signed link), checks its hash and acknowledges `displayed` with it; a text-only board shows the text;
a speaker command always carries a real audio file (rendered on the dispatch path when no render exists yet); a
refused ack is answered on the device's own topic."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.wire import WireLink
from keng.adapters.secrets import SecretStore
from keng.domain.broadcast import Broadcast
from keng.domain.endpoint import Endpoint
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from tests.contract import Taps
from tests.http_server import Client, serve
from tests.integration.conftest import Mosquitto
from tests.integration.harness import WARD, Harness

pytestmark = pytest.mark.mqtt
TEXT_BOARD = f"{WARD}-T01-TX1"


@pytest.fixture
async def harness(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, mosquitto.address)
    # a board that shows text only, beside the sample's LCD and LED boards
    text_board = Endpoint.register(
        code=TEXT_BOARD, kind="eboard", ward=WARD, group=f"{WARD}-T01", technology="led-4g",
        capabilities=["text-only"], by="admin",
    )  # fmt: skip
    h.app.save_changes(text_board)
    yield h
    await h.close()


@pytest.fixture
def http(harness: Harness) -> Iterator[tuple[Client, Services]]:
    settings = load_settings(data_dir=str(harness.data_dir), environ={})
    services = Services(app=harness.app, secrets=SecretStore(harness.data_dir), settings=settings)
    with serve(services) as client:
        yield client, services


class Observer:
    """Every message on the command topics it subscribes to, decoded."""

    def __init__(self, h: Harness, topics: tuple[str, ...]) -> None:
        assert h.broker is not None
        self.messages: list[tuple[str, Any]] = []
        self.link = WireLink(
            h.broker, client_id="test-observer", subscriptions=topics, on_message=self._on, subscribe_qos=1
        )

    def _on(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, proto.decode(payload)))

    def of(self, op: str) -> list[tuple[str, Any]]:
        return [(t, m) for t, m in self.messages if m.get("op") == op]


@pytest.fixture
async def observer(harness: Harness) -> AsyncIterator[Observer]:
    topics = (proto.area_topic(proto.SPEAKER, WARD), proto.area_topic(proto.BOARD, WARD), f"{proto.PREFIX}/cmd/+/ep/+")
    obs = Observer(harness, topics)
    obs.link.start()
    await asyncio.wait_for(obs.link.connected.wait(), 10)
    yield obs
    await obs.link.close()


def fetch(client: Client, url: str) -> bytes:
    path = url.split(f"127.0.0.1:{client.port}", 1)[1]
    reply = client.request("GET", path)
    assert reply.status == 200, (url, reply.status, reply.body[:200])
    return reply.body


async def test_a_board_fetches_checks_and_acknowledges_the_page_rendered_for_its_resolution(
    harness: Harness, http: tuple[Client, Services], observer: Observer
) -> None:
    h, (client, services) = harness, http
    fleet = await h.start_fleet()
    boards = {code: d for code, d in fleet.devices.items() if d.spec.cls == proto.BOARD}
    resolutions = {d.spec.display for d in boards.values()} - {None}
    assert len(resolutions) >= 2 and boards[TEXT_BOARD].spec.display is None  # LCD and LED, and the text board
    await h.start_dispatcher(audio_base=f"http://127.0.0.1:{client.port}/audio", sign_audio=services.audio_links.query)
    bid = h.broadcast("emergency")
    await h.until(lambda: h.closed(bid), timeout=30)
    d = h.dispatch_of(bid)
    assert d is not None and d.summary["played"] == d.summary["targeted"] == len(fleet.devices)
    [item] = d.items.values()
    pages = {(p["width"], p["height"]): p for p in item["boards"]}
    assert set(pages) == resolutions  # one page per distinct registered resolution
    for code, device in boards.items():
        ack = d.states[code]
        assert ack["state"] == "displayed", (code, ack)
        expected = item["text_sha256"] if device.spec.display is None else pages[device.spec.display]["image_sha256"]
        assert ack["sha256"] == expected and device.fallbacks == 0, (code, ack, device.fallbacks)

    # the display command the boards got: text, its hash, and every page behind signed links
    [(_, display)] = [(t, m) for t, m in observer.of("display") if t == proto.area_topic(proto.BOARD, WARD)]
    b = h.app.broadcast(bid)
    assert display["text"] == b.announced_text and "audio" not in display
    assert display["text_sha256"] == hashlib.sha256(b.announced_text.encode()).hexdigest() == item["text_sha256"]
    assert {(v["width"], v["height"]) for v in display["board"]["variants"]} == resolutions
    for variant in display["board"]["variants"]:
        image = fetch(client, variant["image"]["url"])
        layout = fetch(client, variant["layout"]["url"])
        assert hashlib.sha256(image).hexdigest() == variant["image"]["sha256"]
        assert hashlib.sha256(layout).hexdigest() == variant["layout"]["sha256"]
        with Image.open(io.BytesIO(image)) as png:
            assert png.width == variant["width"] and png.height >= variant["height"]
        assert "exp=" in variant["image"]["url"] and "sig=" in variant["image"]["url"]
        tampered = variant["image"]["url"].replace("sig=", "sig=0")
        assert client.request("GET", tampered.split(str(client.port), 1)[1]).status == 403

    # the speakers' command: a real file, its hash, never the text's
    [(_, play)] = [(t, m) for t, m in observer.of("play") if t == proto.area_topic(proto.SPEAKER, WARD)]
    audio = play["audio"]
    assert audio["format"] == "mp3" and audio["url"] and audio["sha256"] != play["text_sha256"]
    assert hashlib.sha256(fetch(client, audio["url"])).hexdigest() == audio["sha256"] == item["audio"]["sha256"]
    # no render existed at approval (no render worker here): the dispatcher rendered it and recorded it
    renders = [e for e in h.events(Broadcast.Rendered) if e.originator_id == bid]
    assert [(r.channel, r.engine, r.content_sha256) for r in renders] == [("speaker", "espeak", audio["sha256"])]


async def test_a_board_targeted_alone_gets_only_its_own_page_and_clears_it_at_expiry(
    harness: Harness, http: tuple[Client, Services], observer: Observer
) -> None:
    h, (client, services) = harness, http
    fleet = await h.start_fleet()
    lcd = next(d for d in fleet.devices.values() if d.spec.display == (800, 480))
    await h.start_dispatcher(audio_base=f"http://127.0.0.1:{client.port}/audio", sign_audio=services.audio_links.query)
    bid = h.broadcast("emergency", target_areas=[], target_endpoints=[lcd.code], channels=["eboard"], expires_in_s=4)
    await h.until(lambda: h.closed(bid))
    d = h.dispatch_of(bid)
    assert d is not None and d.states[lcd.code]["state"] == "displayed" and lcd.fallbacks == 0
    [(topic, display)] = observer.of("display")
    assert topic == proto.endpoint_topic(proto.BOARD, lcd.code)
    assert [(v["width"], v["height"]) for v in display["board"]["variants"]] == [(800, 480)]
    await h.until(lambda: any(what == "cleared" for what, _, _ in lcd.journal), timeout=10)
    assert not lcd.shown


async def test_cancel_clears_a_board_while_a_speaker_still_plays(
    harness: Harness, http: tuple[Client, Services], observer: Observer
) -> None:
    h, (client, services) = harness, http
    fleet = await h.start_fleet(play_scale=5.0)
    lcd = next(d for d in fleet.devices.values() if d.spec.display == (800, 480))
    speaker = next(d for d in fleet.devices.values() if d.spec.cls == proto.SPEAKER)
    await h.start_dispatcher(audio_base=f"http://127.0.0.1:{client.port}/audio", sign_audio=services.audio_links.query)
    bid = h.broadcast("emergency", target_areas=[], target_endpoints=[lcd.code, speaker.code])
    await h.until(lambda: (d := h.dispatch_of(bid)) is not None and d.states.get(lcd.code, {}).get("state") ==
                  "displayed" and speaker.code in d.states)  # fmt: skip
    from keng.services import broadcasts

    assert broadcasts.cancel(h.app, bid, by="hung.tran", reason="Đã hết hiệu lực") is True
    await h.until(lambda: any(what == "cleared" for what, _, _ in lcd.journal))
    await h.until(lambda: any(what == "stopped" for what, _, _ in speaker.journal))
    clears = observer.of("clear")
    assert [t for t, _ in clears] == [proto.endpoint_topic(proto.BOARD, lcd.code)]
    assert clears[0][1]["seq"] == 2  # after the item on air


async def test_a_refused_ack_is_answered_once_on_the_devices_own_topic(
    harness: Harness, http: tuple[Client, Services], contract_tap: Taps
) -> None:
    h, (client, services) = harness, http
    fleet = await h.start_fleet(play_scale=5.0)  # the speakers are still playing while the test speaks for one
    await h.start_dispatcher(audio_base=f"http://127.0.0.1:{client.port}/audio", sign_audio=services.audio_links.query)
    bid = h.broadcast("emergency")
    await h.until(lambda: (d := h.dispatch_of(bid)) is not None and len(d.states) == len(fleet.devices))
    d = h.dispatch_of(bid)
    assert d is not None
    speaker = next(x for x in fleet.devices.values() if x.spec.cls == proto.SPEAKER)
    assert speaker.link is not None
    for _ in range(3):  # the same refusal three times: one notice
        bad = proto.ack_message(code=speaker.code, dispatch_id=str(d.id), seq=9, state="played", at=datetime.now(UTC))
        contract_tap.excuse(speaker.ack_topic, proto.encode(bad))  # no such item, no hash: broken on purpose
        speaker.link.send(speaker.ack_topic, proto.encode(bad))
    wrong = proto.ack_message(
        code=speaker.code, dispatch_id=str(d.id), seq=1, state="played", at=datetime.now(UTC), sha256="0" * 64
    )
    speaker.link.send(speaker.ack_topic, proto.encode(wrong))  # recorded failed/sha256-mismatch, and told
    await h.until(lambda: sum(speaker.refusals.values()) >= 2)
    await asyncio.sleep(0.5)
    assert speaker.refusals == {"bad-sequence": 1, "sha256-mismatch": 1}
    assert [x for x in fleet.devices.values() if x.refusals and x is not speaker] == []
    assert h.dispatcher is not None and h.dispatcher.metrics["ack_refusals_notified"] == 2
