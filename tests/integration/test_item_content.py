"""runtime/dispatch/content.py with the real voice, a real render process and real files: an item's audio is a real
MP3 whose hash is that of the file; a voice that cannot speak the text gives the alert tone (never silence, never
the text's hash); a render process that dies is replaced by rendering in the dispatcher's own process."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from keng.adapters.audio_store import lookup
from keng.adapters.mqtt.protocol import text_sha256
from keng.adapters.tts.tone import TONE_ENGINE
from keng.runtime.dispatch.content import ItemContent

TEXT = "Cảnh báo khẩn cấp: nước sông dâng nhanh, bà con di chuyển lên chỗ cao."


@pytest.fixture
def content(tmp_path: Path) -> Iterator[ItemContent]:
    made = ItemContent(tmp_path / "assets")
    made.warm()
    yield made
    made.close()


def test_audio_is_a_stored_mp3_named_by_its_key_and_hashed_by_its_bytes(content: ItemContent) -> None:
    audio, failure = content.audio(TEXT, "emergency")
    assert failure is None and audio["engine"] == "espeak" and audio["format"] == "mp3"
    info = lookup(content.assets_dir, audio["key"])
    assert info is not None and abs(info.duration_s - audio["duration_s"]) < 0.01 and audio["duration_s"] > 2
    assert hashlib.sha256(info.path.read_bytes()).hexdigest() == audio["sha256"] != text_sha256(TEXT)
    assert content.audio(TEXT, "emergency") == (audio, None) and content.renders == 1  # made once


def test_a_text_the_voice_cannot_speak_gets_the_alert_tone_and_the_reason(content: ItemContent) -> None:
    audio, failure = content.audio("!!! ... !!!", "emergency")
    assert audio["engine"] == TONE_ENGINE and failure is not None and "nothing speakable" in failure[1]
    info = lookup(content.assets_dir, audio["key"])
    assert info is not None and hashlib.sha256(info.path.read_bytes()).hexdigest() == audio["sha256"]


def test_a_render_process_that_dies_is_replaced_by_rendering_here(content: ItemContent) -> None:
    first, _ = content.audio(TEXT, "emergency")
    assert content._pool is not None
    for pid in list(content._pool._processes):  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
    second, failure = content.audio(TEXT + " Lặp lại.", "emergency")
    assert failure is None and second["engine"] == "espeak" and second["key"] != first["key"]
    assert content._in_process
    page = content.page(TEXT, "emergency", (256, 128))
    assert (content.boards_dir / f"{page['image_sha256']}.png").exists()
