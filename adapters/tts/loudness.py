"""Loudness normalisation to an integrated-loudness target (ITU-R BS.1770-4, via pyloudnorm).

Speech is normalised to the configured LUFS target, then limited so that no sample peaks above -1 dBFS; the
limit wins over the target for very dynamic clips. Clips shorter than one 400 ms measurement block are
peak-normalised instead (BS.1770 cannot measure them).
"""

from __future__ import annotations

import numpy as np
import pyloudnorm

from adapters.tts.base import Audio

PEAK_CEILING_DBFS = -1.0


def measure_lufs(audio: Audio) -> float:
    """Integrated loudness of the clip in LUFS (-inf for silence)."""
    meter = pyloudnorm.Meter(audio.sample_rate)
    return float(meter.integrated_loudness(audio.samples.astype(np.float64) / 32768.0))


def normalise_loudness(audio: Audio, target_lufs: float | None) -> Audio:
    """Return the clip scaled to target_lufs (None: unchanged), never peaking above -1 dBFS."""
    if target_lufs is None or audio.samples.size == 0:
        return audio
    wave = audio.samples.astype(np.float64) / 32768.0
    peak = float(np.max(np.abs(wave)))
    if peak == 0.0:
        return audio
    gain = 1.0
    if audio.duration_s >= 0.4:
        loudness = pyloudnorm.Meter(audio.sample_rate).integrated_loudness(wave)
        if np.isfinite(loudness):
            gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    else:
        gain = 10.0 ** (PEAK_CEILING_DBFS / 20.0) / peak
    ceiling = 10.0 ** (PEAK_CEILING_DBFS / 20.0)
    gain = min(gain, ceiling / peak)
    scaled = np.clip(wave * gain * 32768.0, -32768, 32767).astype(np.int16)
    return Audio(samples=scaled, sample_rate=audio.sample_rate)
