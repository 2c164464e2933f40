"""Loudness normalisation to an integrated-loudness target (ITU-R BS.1770-4, via pyloudnorm).

Speech is scaled to the configured LUFS target; peaks that would pass the ceiling (-1 dBFS) go through a
soft-knee limiter instead of lowering the whole clip, and the gain is re-measured (up to three rounds) so the
result lands within about 0.5 LU of the target. Clips shorter than one 400 ms measurement block are
peak-normalised (BS.1770 cannot measure them).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyloudnorm

from keng.adapters.tts.base import Audio

PEAK_CEILING_DBFS = -1.0
_CEILING = 10.0 ** (PEAK_CEILING_DBFS / 20.0)
_KNEE = 0.6 * _CEILING


def measure_lufs(audio: Audio) -> float:
    """Integrated loudness of the clip in LUFS (-inf for silence)."""
    meter = pyloudnorm.Meter(audio.sample_rate)
    return float(meter.integrated_loudness(audio.samples.astype(np.float64) / 32768.0))


def _soft_limit(wave: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Linear below the knee, tanh-shaped between knee and ceiling: never above the ceiling."""
    magnitude = np.abs(wave)
    over = magnitude > _KNEE
    if not np.any(over):
        return wave
    limited = wave.copy()
    span = _CEILING - _KNEE
    limited[over] = np.sign(wave[over]) * (_KNEE + span * np.tanh((magnitude[over] - _KNEE) / span))
    return limited


def normalise_loudness(audio: Audio, target_lufs: float | None) -> Audio:
    """Return the clip at target_lufs (None: unchanged), never peaking above -1 dBFS."""
    if target_lufs is None or audio.samples.size == 0:
        return audio
    source = audio.samples.astype(np.float64) / 32768.0
    peak = float(np.max(np.abs(source)))
    if peak == 0.0:
        return audio
    if audio.duration_s < 0.4:
        result = source * (_CEILING / peak)
    else:
        meter = pyloudnorm.Meter(audio.sample_rate)
        gain = 1.0
        result = source
        for _ in range(3):
            loudness = meter.integrated_loudness(result)
            if not np.isfinite(loudness) or abs(loudness - target_lufs) < 0.5:
                break
            gain *= 10.0 ** ((target_lufs - loudness) / 20.0)
            result = _soft_limit(source * gain)
    scaled = np.clip(np.round(result * 32768.0), -32768, 32767).astype(np.int16)
    return Audio(samples=scaled, sample_rate=audio.sample_rate)
