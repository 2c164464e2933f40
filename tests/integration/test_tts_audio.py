"""Real audio: espeak-ng through Renderer.render_bulletin and the CLI, decoded back and measured; upload validation."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile

from keng.adapters.audio_store import encode_mp3, encode_wav, lookup
from keng.adapters.audio_upload import UploadLimits, UploadRefused, sniff, validate_upload
from keng.adapters.tts.base import Audio, TTSConfig
from keng.adapters.tts.loudness import measure_lufs
from keng.adapters.tts.render import RenderConfig, Renderer
from keng.runtime.cli.main import main as keng

BULLETIN = (
    "UBND phường Hòa Bình thông báo: do ảnh hưởng của bão số 3, từ 14h ngày 12/9/2024 sẽ cắt điện "
    "toàn bộ TDP 5. Đề nghị bà con chủ động chằng chống nhà cửa. Liên hệ 0912.345.678."
)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    return data, rate


def test_espeak_mp3_decodes_to_mono_22khz_with_plausible_duration_and_loudness(
    tmp_path: Path, renderer: Renderer
) -> None:
    config = RenderConfig(store_root=tmp_path, tts=TTSConfig(keep_wav=True))
    [asset] = renderer.render_bulletin(BULLETIN, "emergency", ["speaker"], config)
    assert sniff(asset.path.read_bytes()) == "mp3"  # MPEG-2 Layer III frame sync at 22,050 Hz
    data, rate = _decode(asset.path)
    assert rate == 22050 and data.shape[1] == 1
    decoded_s = data.shape[0] / rate
    assert 8.0 < decoded_s < 30.0  # about 60 syllables at 3-6 syllables a second
    assert decoded_s == pytest.approx(asset.duration_s, abs=0.2)  # MP3 adds at most a frame or two
    wav = lookup(tmp_path, asset.asset_hash, "wav")
    assert wav is not None
    wav_data, wav_rate = _decode(wav.path)
    assert wav_rate == 22050 and wav_data.shape[0] / wav_rate == pytest.approx(asset.duration_s, abs=0.001)
    loudness = measure_lufs(Audio(samples=wav_data[:, 0].copy(), sample_rate=wav_rate))
    assert loudness == pytest.approx(-16.0, abs=1.5)


def test_same_bulletin_in_decomposed_unicode_hits_the_same_asset_without_rendering(
    tmp_path: Path, renderer: Renderer
) -> None:
    config = RenderConfig(store_root=tmp_path)
    [first] = renderer.render_bulletin(BULLETIN, "normal", ["speaker"], config)
    store = renderer.store(tmp_path, 64)
    before = store.renders
    [second] = renderer.render_bulletin(unicodedata.normalize("NFD", BULLETIN), "normal", ["speaker"], config)
    assert second.asset_hash == first.asset_hash
    assert store.renders == before


def test_faster_speed_gives_shorter_audio_and_a_different_asset(tmp_path: Path, renderer: Renderer) -> None:
    normal = renderer.render_bulletin(BULLETIN, "normal", ["speaker"], RenderConfig(store_root=tmp_path))[0]
    fast = renderer.render_bulletin(
        BULLETIN, "normal", ["speaker"], RenderConfig(store_root=tmp_path, tts=TTSConfig(speed=1.5))
    )[0]
    assert fast.asset_hash != normal.asset_hash
    assert fast.duration_s is not None and normal.duration_s is not None
    assert fast.duration_s < normal.duration_s * 0.85


@pytest.mark.parametrize("voice", ["vi", "vi-vn-x-central", "vi-vn-x-south"])
def test_every_vietnamese_espeak_voice_speaks(tmp_path: Path, voice: str, renderer: Renderer) -> None:
    [asset] = renderer.render_bulletin(
        "Xin chào bà con",
        "normal",
        ["speaker"],
        RenderConfig(store_root=tmp_path, tts=TTSConfig(voice=voice)),
    )
    assert asset.duration_s is not None and 0.5 < asset.duration_s < 5


@pytest.mark.parametrize("suffix", [".mp3", ".wav"])
def test_cli_say_writes_a_decodable_file(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"out{suffix}"
    assert keng(["--data", str(tmp_path / "data"), "tts", "say", "Bão số 3 đổ bộ lúc 14h 🌊", "-o", str(out)]) == 0
    data, rate = _decode(out)
    assert rate == 22050 and 1.0 < data.shape[0] / rate < 8.0
    captured = capsys.readouterr()
    assert "removed characters no voice can speak: 🌊" in captured.err


def _tone_audio(seconds: float, rate: int = 16000) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio(samples=(np.sin(2 * np.pi * 300 * t) * 9000).astype(np.int16), sample_rate=rate)


def test_valid_uploads_are_described() -> None:
    mp3 = validate_upload(encode_mp3(_tone_audio(3.0)), "ghi-am.mp3")
    wav = validate_upload(encode_wav(_tone_audio(2.0)), "ghi-am.wav")
    assert (mp3.kind, mp3.mime, mp3.sample_rate, mp3.channels) == ("mp3", "audio/mpeg", 16000, 1)
    assert mp3.duration_s == pytest.approx(3.0, abs=0.15)
    assert (wav.kind, wav.duration_s) == ("wav", 2.0)


def test_corrupt_uploads_are_refused_with_the_reason() -> None:
    wav = encode_wav(_tone_audio(2.0))
    with pytest.raises(UploadRefused, match="the file is empty"):
        validate_upload(b"")
    with pytest.raises(UploadRefused, match="not an audio file of an accepted type"):
        validate_upload(b"%PDF-1.7 not audio", "ghi-am.mp3")
    with pytest.raises(UploadRefused, match=r"named \.mp3 but its content is wav"):
        validate_upload(wav, "ghi-am.mp3")
    with pytest.raises(UploadRefused, match="cannot be decoded"):
        validate_upload(wav[:12] + b"\x00" * 40, "ghi-am.wav")
    with pytest.raises(UploadRefused, match="the limit is 1,000 bytes"):
        validate_upload(wav, "ghi-am.wav", UploadLimits(max_bytes=1000))
    with pytest.raises(UploadRefused, match=r"the minimum is 0\.5 s"):
        validate_upload(encode_wav(_tone_audio(0.2)), "ngan.wav")
    with pytest.raises(UploadRefused, match=r"the maximum is 1 s"):
        validate_upload(wav, "dai.wav", UploadLimits(max_duration_s=1.0))
    silent = Audio(samples=np.zeros(16000, dtype=np.int16), sample_rate=16000)
    with pytest.raises(UploadRefused, match="silent"):
        validate_upload(encode_wav(silent), "im-lang.wav")


def test_mp3_encoding_round_trips_through_a_decoder() -> None:
    audio = _tone_audio(1.5)
    data, rate = soundfile.read(io.BytesIO(encode_mp3(audio)), dtype="int16")
    assert rate == 16000 and abs(len(data) / rate - 1.5) < 0.1
