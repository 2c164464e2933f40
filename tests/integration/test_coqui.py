"""coqui-tts engine with a tiny randomly initialised Vietnamese VITS, built here and loaded like a real one.

The audio is noise: these tests check format, sample rate, duration bounds, the cache and failure handling,
never how it sounds. Needs the `coqui` extra (CI installs it); skipped with the reason otherwise.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import soundfile

from keng.adapters.tts.base import EngineUnavailable, TTSConfig
from keng.adapters.tts.render import RenderConfig, Renderer
from tests.conftest import IN_CI

COQUI_MISSING = importlib.util.find_spec("TTS") is None
if COQUI_MISSING and IN_CI:
    raise RuntimeError("CI=true but coqui-tts is not installed: CI must install the coqui extra and run these tests")

pytestmark = [
    pytest.mark.coqui,
    pytest.mark.skipif(
        COQUI_MISSING, reason="coqui-tts is not installed (pip install 'keng[coqui]' to run the coqui tests)"
    ),
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from keng.adapters.tts.random_vits import build_random_vits

    return build_random_vits(tmp_path_factory.mktemp("vits"), tiny=True)


def _config(store: Path, model: tuple[Path, Path], keep_wav: bool = False) -> RenderConfig:
    tts = TTSConfig(
        engine="coqui",
        voice="",
        coqui_model=model[0],
        coqui_config=model[1],
        coqui_device="cpu",
        keep_wav=keep_wav,
    )
    return RenderConfig(store_root=store, tts=tts)


def test_checkpoint_loads_and_renders_a_decodable_mp3(
    tmp_path: Path, tiny_model: tuple[Path, Path], renderer: Renderer
) -> None:
    text = "Ủy ban nhân dân phường thông báo: bão số 3 đổ bộ lúc 14h ngày 12/9."
    [asset] = renderer.render_bulletin(text, "priority", ["speaker"], _config(tmp_path, tiny_model, keep_wav=True))
    assert asset.engine == "coqui" and asset.failed == ()
    data, rate = soundfile.read(str(asset.path), dtype="int16", always_2d=True)
    assert rate == 22050 and data.shape[1] == 1
    assert asset.duration_s is not None and 0.2 < asset.duration_s < 120
    assert abs(data.shape[0] / rate - asset.duration_s) < 0.2
    wav, wav_rate = soundfile.read(str(tmp_path / f"{asset.asset_hash}.wav"), dtype="int16")
    assert wav_rate == 22050 and len(wav) / wav_rate == pytest.approx(asset.duration_s, abs=0.001)


def test_second_request_is_a_cache_hit_without_synthesis(
    tmp_path: Path, tiny_model: tuple[Path, Path], renderer: Renderer
) -> None:
    config = _config(tmp_path, tiny_model)
    [first] = renderer.render_bulletin("Mất điện lúc 8h", "normal", ["speaker"], config)
    store = renderer.store(tmp_path, 64)
    renders = store.renders
    [second] = renderer.render_bulletin("Mất điện lúc 8h", "normal", ["speaker"], config)
    assert second.asset_hash == first.asset_hash and store.renders == renders


def test_coqui_and_espeak_assets_of_one_text_are_distinct(
    tmp_path: Path, tiny_model: tuple[Path, Path], renderer: Renderer
) -> None:
    coqui = renderer.render_bulletin("Xin chào", "normal", ["speaker"], _config(tmp_path, tiny_model))[0]
    espeak = renderer.render_bulletin("Xin chào", "normal", ["speaker"], RenderConfig(store_root=tmp_path))[0]
    assert coqui.asset_hash != espeak.asset_hash


def test_model_vocabulary_reports_characters_it_would_drop(tiny_model: tuple[Path, Path]) -> None:
    from keng.adapters.tts.coqui import CoquiSynthesizer

    engine = CoquiSynthesizer(tiny_model[0], tiny_model[1], "cpu")
    assert engine.unsupported("xin chào bà con") == set()
    assert engine.unsupported("gọi 114 ★") == {"1", "4", "★"}


def test_missing_model_file_is_engine_unavailable(tmp_path: Path) -> None:
    from keng.adapters.tts.coqui import CoquiSynthesizer

    with pytest.raises(EngineUnavailable, match="model file not found"):
        CoquiSynthesizer(tmp_path / "absent.pth", tmp_path / "config.json")


def test_corrupt_checkpoint_fails_by_name_and_an_emergency_falls_back_to_espeak(
    tmp_path: Path, tiny_model: tuple[Path, Path], renderer: Renderer
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.pth").write_bytes(b"not a checkpoint")
    (broken / "config.json").write_bytes(tiny_model[1].read_bytes())
    model = (broken / "model.pth", broken / "config.json")
    [asset] = renderer.render_bulletin("Sơ tán ngay", "emergency", ["speaker"], _config(tmp_path / "s", model))
    assert asset.engine == "espeak"
    assert asset.failed[0][0] == "coqui" and "cannot load model" in asset.failed[0][1]


@pytest.mark.parametrize("bf16", [True, False])
def test_cpu_precision_is_chosen_and_both_give_finite_speech(tiny_model: tuple[Path, Path], bf16: bool) -> None:
    import numpy as np

    from keng.adapters.tts.coqui import CoquiSynthesizer

    engine = CoquiSynthesizer(tiny_model[0], tiny_model[1], "cpu", cpu_bf16=bf16)
    audio = engine.synthesize(["xin chào bà con tổ dân phố"], voice="", speed=1.0)
    assert engine.precision == ("bfloat16" if bf16 else "float32")
    assert audio.samples.size > 0 and np.isfinite(audio.samples.astype(np.float64)).all()
