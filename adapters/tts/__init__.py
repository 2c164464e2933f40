"""Text-to-speech: the `Synthesizer` port, engines (espeak, coqui), loudness, bulletin rendering."""

from keng.adapters.tts.base import (
    Audio,
    EngineUnavailable,
    SynthesisFailed,
    SynthesisTimeout,
    Synthesizer,
    TTSConfig,
)

__all__ = ["Audio", "EngineUnavailable", "SynthesisFailed", "SynthesisTimeout", "Synthesizer", "TTSConfig"]
