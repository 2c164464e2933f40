"""A stock alert tone: what a speaker is sent when no voice could render a bulletin (the engine failed, the text has
nothing speakable), so that a speaker command always carries a real file and an emergency is never silent."""

from __future__ import annotations

import numpy as np

from keng.adapters.tts.base import Audio

TONE_ENGINE = "alert-tone"
TONE_VERSION = "v1"  # part of the stored key: change it when the sound changes
SAMPLE_RATE = 16_000


def alert_tone(beeps: int = 3, beep_s: float = 0.6, gap_s: float = 0.25) -> Audio:
    """Beeps alternating 880 and 660 Hz, with short fades so that they do not click, about -6 dBFS."""
    t = np.arange(int(beep_s * SAMPLE_RATE)) / SAMPLE_RATE
    fade = np.minimum(1.0, np.minimum(t, beep_s - t) / 0.02)
    gap = np.zeros(int(gap_s * SAMPLE_RATE))
    parts: list[np.ndarray] = []
    for i in range(beeps):
        tone = np.sin(2 * np.pi * (880.0 if i % 2 == 0 else 660.0) * t) * fade * 0.5
        parts.extend((tone, gap))
    samples = (np.concatenate(parts) * 32767).astype(np.int16)
    return Audio(samples=samples, sample_rate=SAMPLE_RATE)
