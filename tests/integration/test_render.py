"""Renderer.render_bulletin: limits, channels, and the failure/fallback rule, with recording fake engines."""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from keng.adapters.tts.base import Audio, EngineUnavailable, SynthesisFailed, TTSConfig
from keng.adapters.tts.render import RenderConfig, Renderer, RenderFailed, TextTooLong
from keng.domain.vitext import prepare


class FakeEngine:
    """Records what it was asked to speak; fails or stalls on request."""

    def __init__(self, name: str, fail: str | None = None, stall_s: float = 0.0) -> None:
        self.name = name
        self.fail = fail
        self.stall_s = stall_s
        self.spoken: list[tuple[str, ...]] = []

    def synthesize(self, chunks: Sequence[str], voice: str, speed: float) -> Audio:
        self.spoken.append(tuple(chunks))
        time.sleep(self.stall_s)
        if self.fail == "crash":
            raise MemoryError("CUDA out of memory")
        return Audio(samples=(np.random.default_rng(0).normal(0, 3000, 16000)).astype(np.int16), sample_rate=16000)

    def unsupported(self, text: str) -> set[str]:
        return set()


@pytest.fixture
def engines() -> dict[str, FakeEngine]:
    return {"espeak": FakeEngine("espeak"), "coqui": FakeEngine("coqui")}


@pytest.fixture
def renderer(engines: dict[str, FakeEngine]) -> Iterator[Renderer]:
    def make(config: TTSConfig) -> FakeEngine:
        if config.engine not in engines:
            raise EngineUnavailable(config.engine, "unknown engine")
        return engines[config.engine]

    renderer = Renderer(make_engine=make)
    yield renderer
    renderer.close()


def _config(tmp_path: Path, **tts: object) -> RenderConfig:
    return RenderConfig(store_root=tmp_path, tts=TTSConfig(**tts))  # type: ignore[arg-type]


def test_every_channel_gets_its_assets(tmp_path: Path, engines: dict[str, FakeEngine], renderer: Renderer) -> None:
    text = "Bão số 3 đổ bộ lúc 14h. " * 12
    assets = renderer.render_bulletin(text, "priority", ["speaker", "eboard", "portal"], _config(tmp_path))
    speaker = [a for a in assets if a.channel == "speaker"]
    board = [a for a in assets if a.channel == "eboard"]
    [portal] = [a for a in assets if a.channel == "portal"]
    assert len(speaker) == 1 and speaker[0].mime == "audio/mpeg"
    assert speaker[0].duration_s == pytest.approx(1.0)
    assert board[0].mime == "application/json"
    layout = json.loads(board[0].path.read_text())
    assert layout["label"] == "ƯU TIÊN" and layout["scroll"] is True
    pngs = [a for a in board if a.mime == "image/png"]
    assert len(pngs) > 1 and all(a.path.read_bytes()[:4] == b"\x89PNG" for a in pngs)
    assert portal.path.read_text() == text
    [spoken] = engines["espeak"].spoken
    assert spoken == prepare(text).chunks
    assert spoken[0].startswith("Bão số ba đổ bộ lúc mười bốn giờ. Bão số ba")


def test_text_assets_of_composed_and_decomposed_text_are_one(tmp_path: Path, renderer: Renderer) -> None:
    text = "Ủy ban nhân dân phường thông báo"
    first = renderer.render_bulletin(text, "normal", ["portal"], _config(tmp_path))[0]
    second = renderer.render_bulletin(unicodedata.normalize("NFD", text), "normal", ["app"], _config(tmp_path))[0]
    assert first.asset_hash == second.asset_hash


def test_over_long_text_is_refused_before_any_work(
    tmp_path: Path, engines: dict[str, FakeEngine], renderer: Renderer
) -> None:
    with pytest.raises(TextTooLong, match="5001 characters; the limit is 5000"):
        renderer.render_bulletin("a" * 5001, "emergency", ["speaker"], _config(tmp_path))
    assert engines["espeak"].spoken == []
    assert list(tmp_path.iterdir()) == []


def test_engine_crash_on_a_normal_bulletin_raises_render_failed_with_engine_and_reason(
    tmp_path: Path, engines: dict[str, FakeEngine], renderer: Renderer
) -> None:
    engines["coqui"].fail = "crash"
    with pytest.raises(RenderFailed) as caught:
        renderer.render_bulletin("Lịch cắt điện", "normal", ["speaker"], _config(tmp_path, engine="coqui"))
    assert caught.value.engine == "coqui"
    assert "CUDA out of memory" in caught.value.reason
    assert engines["espeak"].spoken == []


def test_emergency_falls_back_to_espeak_and_carries_the_failure(
    tmp_path: Path, engines: dict[str, FakeEngine], renderer: Renderer
) -> None:
    engines["coqui"].fail = "crash"
    [asset] = renderer.render_bulletin(
        "Cháy lớn tại TDP 5", "emergency", ["speaker"], _config(tmp_path, engine="coqui")
    )
    assert asset.engine == "espeak"
    assert asset.failed == (("coqui", "MemoryError: CUDA out of memory"),)
    assert engines["espeak"].spoken == [("Cháy lớn tại tổ dân phố năm",)]


def test_engine_timeout_is_a_named_failure(tmp_path: Path, engines: dict[str, FakeEngine], renderer: Renderer) -> None:
    engines["coqui"].stall_s = 1.0
    started = time.perf_counter()
    with pytest.raises(RenderFailed, match=r"coqui: no audio after 0.2 s|no audio after 0.2 s"):
        renderer.render_bulletin("Thông báo", "priority", ["speaker"], _config(tmp_path, engine="coqui", timeout_s=0.2))
    assert time.perf_counter() - started < 0.9


def test_unknown_engine_on_an_emergency_still_produces_audio(tmp_path: Path, renderer: Renderer) -> None:
    [asset] = renderer.render_bulletin("Sơ tán ngay", "emergency", ["speaker"], _config(tmp_path, engine="piper"))
    assert asset.engine == "espeak" and asset.failed == (("piper", "unknown engine"),)


@pytest.mark.parametrize(
    ("priority", "channels", "message"),
    [
        ("urgent", ["speaker"], "unknown priority"),
        ("normal", ["fax"], "unknown channels: fax"),
    ],
)
def test_bad_arguments_are_refused(
    tmp_path: Path, renderer: Renderer, priority: str, channels: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        renderer.render_bulletin("Thông báo", priority, channels, _config(tmp_path))


def test_synthesis_failed_names_engine_and_reason() -> None:
    error = SynthesisFailed("coqui", "model missing")
    assert (error.engine, error.reason, str(error)) == ("coqui", "model missing", "coqui: model missing")
