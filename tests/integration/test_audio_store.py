"""Content keys, single-flight creation and lookup of the audio store (synthesis faked, files real)."""

from __future__ import annotations

import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from keng.adapters.audio_store import AudioStore, content_key, lookup
from keng.adapters.tts.base import Audio
from keng.domain.vitext import prepare


def _tone(seconds: float = 1.0, rate: int = 16000) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio(samples=(np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), sample_rate=rate)


def test_composed_and_decomposed_text_give_the_same_content_key() -> None:
    text = "Ủy ban nhân dân phường Hòa Bình thông báo lúc 7h30"
    keys = {
        content_key(prepare(form).text, "espeak", "vi", "s")
        for form in (text, unicodedata.normalize("NFD", text), text.replace("Hòa", "Hoà"))
    }
    assert len(keys) == 1


@pytest.mark.parametrize("field", ["text", "engine", "voice", "settings"])
def test_any_input_to_the_sound_changes_the_key(field: str) -> None:
    base = {"prepared_text": "xin chào", "engine": "espeak", "voice": "vi", "settings": "speed=1"}
    changed = dict(base)
    changed["prepared_text" if field == "text" else field] += "x"
    assert content_key(**base) != content_key(**changed)


def test_concurrent_requests_for_one_key_render_once(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    calls = 0
    lock = threading.Lock()

    def slow_render() -> Audio:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.2)
        return _tone()

    key = content_key("bão số ba", "espeak", "vi", "")
    with ThreadPoolExecutor(max_workers=16) as pool:
        infos = list(pool.map(lambda _: store.get_or_create(key, "espeak", "vi", slow_render), range(16)))
    assert calls == 1
    assert store.renders == 1
    assert {info.path for info in infos} == {tmp_path / f"{key}.mp3"}


def test_a_second_store_on_the_same_directory_finds_the_asset_without_rendering(tmp_path: Path) -> None:
    key = content_key("mất điện", "espeak", "vi", "")
    AudioStore(tmp_path).get_or_create(key, "espeak", "vi", _tone)
    other = AudioStore(tmp_path)
    info = other.get_or_create(key, "espeak", "vi", lambda: pytest.fail("rendered twice"))
    assert other.renders == 0
    assert info.duration_s == pytest.approx(1.0, abs=0.01)


def test_a_failed_render_reaches_every_waiter_and_leaves_no_asset(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    key = content_key("lỗi", "coqui", "", "")

    def broken() -> Audio:
        time.sleep(0.1)
        raise RuntimeError("engine crashed")

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(store.get_or_create, key, "coqui", "", broken) for _ in range(4)]
        errors = [f.exception() for f in futures]
    assert all(isinstance(e, RuntimeError) and "crashed" in str(e) for e in errors)
    assert lookup(tmp_path, key) is None


def test_lookup_gives_path_size_mime_and_duration(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    key = content_key("thông báo", "espeak", "vi", "")
    store.get_or_create(key, "espeak", "vi", lambda: _tone(2.0), keep_wav=True)
    mp3 = lookup(tmp_path, key)
    wav = lookup(tmp_path, key, "wav")
    assert mp3 is not None and wav is not None
    assert (mp3.mime, wav.mime) == ("audio/mpeg", "audio/wav")
    assert mp3.size == (tmp_path / f"{key}.mp3").stat().st_size
    assert wav.size == 44 + 2 * 32000
    assert mp3.duration_s == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "A" * 64, "0" * 63, "g" * 64])
def test_lookup_refuses_anything_but_a_sha256_hex(tmp_path: Path, bad: str) -> None:
    assert lookup(tmp_path, bad) is None


def test_lookup_of_an_unknown_hash_is_none(tmp_path: Path) -> None:
    assert lookup(tmp_path, "0" * 64) is None
