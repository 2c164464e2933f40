"""Content-addressed audio: one file set per SHA-256 of (prepared text, engine, voice, settings).

`AudioStore.get_or_create(key, render)` renders and encodes at most once per key: concurrent callers in one
process wait on the first caller's future (single-flight), and an `fcntl` lock file extends that to other
processes sharing the directory. Files are written to a temporary name and renamed, so a reader never sees
half a file. Each asset is `<hash>.mp3` (MPEG-1 Layer III via lameenc, mono), optionally `<hash>.wav`, and
`<hash>.json` (duration, engine, voice, sample rate) that `lookup` reads to answer hash -> path, size, mime,
duration without decoding.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import threading
import wave
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import lameenc
import structlog

from keng.adapters.private_files import FILE_MODE, private_dir, write_private
from keng.adapters.tts.base import Audio

log = structlog.get_logger(__name__)

MIME = {"mp3": "audio/mpeg", "wav": "audio/wav"}
_HEX64 = frozenset("0123456789abcdef")


def content_key(prepared_text: str, engine: str, voice: str, settings: str) -> str:
    """SHA-256 (hex) of the prepared text and what shapes its sound; the asset's name and ETag."""
    payload = "\x1f".join(("keng-audio-v1", prepared_text, engine, voice, settings))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AssetInfo:
    """What a device, an event or an HTTP response needs to know about one stored file."""

    key: str
    path: Path
    size: int
    mime: str
    duration_s: float
    engine: str
    sample_rate: int


def encode_mp3(audio: Audio, bitrate_kbps: int = 64, quality: int = 2) -> bytes:
    """Encode mono 16-bit PCM to MP3 (lameenc; `quality` is LAME's, 0 best and slowest to 9)."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(audio.sample_rate)
    encoder.set_channels(1)
    encoder.set_quality(quality)
    return bytes(encoder.encode(audio.samples.tobytes()) + encoder.flush())


def encode_wav(audio: Audio) -> bytes:
    """Encode mono 16-bit PCM to a RIFF WAV."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(audio.sample_rate)
        writer.writeframes(audio.samples.tobytes())
    return out.getvalue()


def lookup(root: Path, key: str, fmt: str = "mp3") -> AssetInfo | None:
    """Return the stored asset for a hash, or None. Rejects anything that is not a 64-hex-digit hash."""
    if len(key) != 64 or not set(key) <= _HEX64 or fmt not in MIME:
        return None
    path = root / f"{key}.{fmt}"
    meta_path = root / f"{key}.json"
    try:
        meta = json.loads(meta_path.read_text())
        size = path.stat().st_size
    except (FileNotFoundError, ValueError):
        return None
    return AssetInfo(
        key=key,
        path=path,
        size=size,
        mime=MIME[fmt],
        duration_s=float(meta["duration_s"]),
        engine=str(meta["engine"]),
        sample_rate=int(meta["sample_rate"]),
    )


class AudioStore:
    """A directory of content-addressed audio assets with single-flight creation."""

    def __init__(self, root: Path, mp3_bitrate_kbps: int = 64, mp3_quality: int = 2) -> None:
        self.root = root
        self.mp3_bitrate_kbps = mp3_bitrate_kbps
        self.mp3_quality = mp3_quality
        self.renders = 0  # syntheses actually run by this instance (benchmarks and tests read it)
        self._guard = threading.Lock()
        self._inflight: dict[str, Future[AssetInfo]] = {}
        private_dir(root)

    def lookup(self, key: str, fmt: str = "mp3") -> AssetInfo | None:
        return lookup(self.root, key, fmt)

    def get_or_create(
        self,
        key: str,
        engine: str,
        voice: str,
        render: Callable[[], Audio],
        keep_wav: bool = False,
        text: str = "",
    ) -> AssetInfo:
        """Return the asset for key, calling render() and encoding only if no caller has done so already."""
        found = self._lookup_complete(key, keep_wav)
        if found is not None:
            return found
        with self._guard:
            future = self._inflight.get(key)
            leader = future is None
            if future is None:
                future = Future()
                self._inflight[key] = future
        if not leader:
            return future.result()
        try:
            info = self._create_locked(key, engine, voice, render, keep_wav, text)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(info)
            return info
        finally:
            with self._guard:
                self._inflight.pop(key, None)

    def _lookup_complete(self, key: str, keep_wav: bool) -> AssetInfo | None:
        info = lookup(self.root, key)
        if info is None or (keep_wav and not (self.root / f"{key}.wav").exists()):
            return None
        return info

    def _create_locked(
        self, key: str, engine: str, voice: str, render: Callable[[], Audio], keep_wav: bool, text: str
    ) -> AssetInfo:
        with os.fdopen(os.open(self.root / f".{key}.lock", os.O_WRONLY | os.O_CREAT, FILE_MODE), "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process may be rendering the same key
            found = self._lookup_complete(key, keep_wav)
            if found is not None:
                return found
            audio = render()
            self.renders += 1
            write_private(self.root / f"{key}.mp3", encode_mp3(audio, self.mp3_bitrate_kbps, self.mp3_quality))
            if keep_wav:
                write_private(self.root / f"{key}.wav", encode_wav(audio))
            meta = {
                "duration_s": round(audio.duration_s, 3),
                "engine": engine,
                "voice": voice,
                "sample_rate": audio.sample_rate,
                "text": text,
            }
            write_private(self.root / f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())
        info = lookup(self.root, key)
        if info is None:  # pragma: no cover - the files were just written
            raise RuntimeError(f"asset {key} vanished after writing")
        log.info("audio_stored", key=key, engine=engine, duration_s=info.duration_s, bytes=info.size)
        return info
