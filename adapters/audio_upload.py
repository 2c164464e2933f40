"""Validation of recorded audio uploaded by operators: type, size, duration and that it really decodes.

Each refusal raises `UploadRefused` with a reason an operator can act on. Decoding uses soundfile
(libsndfile, which reads WAV, MP3, OGG/Opus and FLAC), so a file that only looks right is caught.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile

ALLOWED = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac"}
_MAGIC = (
    (b"ID3", "mp3"),
    (b"\xff\xfb", "mp3"),
    (b"\xff\xf3", "mp3"),
    (b"\xff\xf2", "mp3"),
    (b"RIFF", "wav"),
    (b"OggS", "ogg"),
    (b"fLaC", "flac"),
)


class UploadRefused(ValueError):
    """The upload cannot be used; the message says why."""


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 20 * 1024 * 1024
    min_duration_s: float = 0.5
    max_duration_s: float = 15 * 60.0


@dataclass(frozen=True)
class UploadInfo:
    kind: str
    mime: str
    size: int
    duration_s: float
    sample_rate: int
    channels: int


def sniff(data: bytes) -> str | None:
    """The container type from the file's first bytes, or None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return "wav" if kind == "wav" and data[8:12] != b"WAVE" else kind
    return None


def validate_upload(data: bytes, filename: str = "", limits: UploadLimits | None = None) -> UploadInfo:
    """Check an uploaded recording and return what it is; raise UploadRefused with the reason otherwise."""
    limits = limits or UploadLimits()
    if not data:
        raise UploadRefused("the file is empty")
    if len(data) > limits.max_bytes:
        raise UploadRefused(f"the file has {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes")
    kind = sniff(data)
    if kind is None:
        raise UploadRefused(f"not an audio file of an accepted type ({', '.join(sorted(ALLOWED))})")
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix and suffix in ALLOWED and suffix != kind:
        raise UploadRefused(f"the file is named .{suffix} but its content is {kind}")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise UploadRefused(f"the {kind} file cannot be decoded: {exc}") from exc
    frames, channels = samples.shape
    if frames == 0 or rate <= 0:
        raise UploadRefused(f"the {kind} file decodes to no audio")
    duration = frames / rate
    if duration < limits.min_duration_s:
        raise UploadRefused(f"the recording lasts {duration:.2f} s; the minimum is {limits.min_duration_s:g} s")
    if duration > limits.max_duration_s:
        raise UploadRefused(f"the recording lasts {duration:.0f} s; the maximum is {limits.max_duration_s:.0f} s")
    if not np.any(samples):
        raise UploadRefused("the recording is silent")
    return UploadInfo(
        kind=kind,
        mime=ALLOWED[kind],
        size=len(data),
        duration_s=round(duration, 3),
        sample_rate=int(rate),
        channels=int(channels),
    )
