"""The synthesis port: what every text-to-speech engine offers, its configuration, its audio and its errors.

Engines are blocking and CPU/GPU-bound: callers run them in a worker thread (`asyncio.to_thread`) or a
process, never on the event loop. An engine receives text that `domain.vitext.prepare` has already put into
words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

ENGINES = ("espeak", "coqui")
DEFAULT_LUFS = -16.0
MAX_TEXT_CHARS = 5000


@dataclass(frozen=True)
class TTSConfig:
    """Synthesis settings, built by the composition root (nothing here reads the environment).

    engine: "espeak" (embedded, default) or "coqui" (neural; needs `coqui_model` and `coqui_config`).
    voice: engine voice name; for espeak "vi" (northern), "vi-vn-x-central" or "vi-vn-x-south".
    speed: 1.0 is the engine's normal rate; 0.5..2.0.
    loudness_lufs: integrated loudness target (ITU-R BS.1770 / EBU R128 measurement). -16 LUFS is the common
        target for speech heard over loudspeakers and phones; broadcast TV uses -23. None disables
        normalisation.
    mp3_bitrate_kbps: MP3 bit rate for the IP speakers (mono speech: 48..64 is ample).
    mp3_quality: LAME's algorithm quality, 0 (best, slowest) to 9; 2 by default. The dispatcher's own renders on the
        dispatch path use 5 ("good, fast": a 5 s bulletin in 40 ms instead of 56, its encoding 9 ms instead of 26);
        a value other than 2 is part of the content hash, so the two never share a file.
    keep_wav: also store the 16-bit PCM WAV beside the MP3.
    timeout_s: a synthesis that takes longer fails with `SynthesisTimeout`.
    max_text_chars: longer text is refused before any work.
    """

    engine: str = "espeak"
    voice: str = "vi"
    speed: float = 1.0
    loudness_lufs: float | None = DEFAULT_LUFS
    mp3_bitrate_kbps: int = 64
    mp3_quality: int = 2
    keep_wav: bool = False
    timeout_s: float = 60.0
    max_text_chars: int = MAX_TEXT_CHARS
    coqui_model: Path | None = None
    coqui_config: Path | None = None
    coqui_device: str | None = None  # "cuda", "cpu" or None for "cuda if available"
    # On a CPU: run the model in bfloat16 (autocast). None = when the processor has bf16 instructions (AVX512-BF16 or
    # AMX), where it measured 2.6x faster for a standard VITS (docs/tts.md); False keeps float32.
    coqui_cpu_bf16: bool | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def settings_fingerprint(self) -> str:
        """The settings that change the sound, as a stable string for the content hash."""
        model = str(self.coqui_model) if self.engine == "coqui" else ""
        precision = f";bf16={self.coqui_cpu_bf16}" if self.engine == "coqui" and self.coqui_cpu_bf16 is not None else ""
        quality = f";mp3q={self.mp3_quality}" if self.mp3_quality != 2 else ""
        return f"speed={self.speed:.3f};lufs={self.loudness_lufs};model={model}{precision}{quality}"


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit PCM samples and their rate."""

    samples: npt.NDArray[np.int16]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@runtime_checkable
class Synthesizer(Protocol):
    """A text-to-speech engine.

    `name` identifies the engine in content hashes and `Rendered`/`RenderFailed` events. `synthesize` is
    blocking: it turns already prepared chunks (sentence-bounded, in words) into one mono clip, with a short
    pause between chunks, and raises `SynthesisFailed` (or a subclass) naming the engine and the reason on
    any failure. `unsupported(text)` lists characters of the text the voice would drop silently.
    """

    name: str

    def synthesize(self, chunks: Sequence[str], voice: str, speed: float) -> Audio: ...

    def unsupported(self, text: str) -> set[str]: ...


class SynthesisFailed(RuntimeError):
    """An engine could not render the text; `engine` and `reason` go into the `RenderFailed` event."""

    def __init__(self, engine: str, reason: str) -> None:
        super().__init__(f"{engine}: {reason}")
        self.engine = engine
        self.reason = reason


class SynthesisTimeout(SynthesisFailed):
    """The engine did not finish within the configured time."""


class EngineUnavailable(SynthesisFailed):
    """The engine cannot be used here: its package is not installed, or no model is configured."""


def concat_with_pauses(parts: Sequence[npt.NDArray[np.int16]], sample_rate: int, pause_s: float) -> Audio:
    """Join chunk clips with silence between them."""
    gap = np.zeros(int(sample_rate * pause_s), dtype=np.int16)
    pieces: list[npt.NDArray[np.int16]] = []
    for i, part in enumerate(parts):
        if i:
            pieces.append(gap)
        pieces.append(part)
    joined = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
    return Audio(samples=joined.astype(np.int16, copy=False), sample_rate=sample_rate)


def float_to_int16(wave: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    """Clip float samples in [-1, 1] to 16-bit integers."""
    clipped: npt.NDArray[np.int16] = (np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)
    return clipped
