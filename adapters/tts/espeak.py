"""The embedded espeak-ng voice, loaded from the `espeakng-loader` wheel (library and data, Vietnamese
included).

libespeak-ng keeps its state in process globals (voice, rate, callback), so one lock serialises every call
in a process; a synthesis takes milliseconds, so the lock is not a bottleneck. Called through ctypes: the
loader package only locates the library, and no maintained wrapper on the registry synthesises through it to
memory.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import espeakng_loader
import numpy as np
import numpy.typing as npt
import structlog

from keng.adapters.tts.base import Audio, EngineUnavailable, SynthesisFailed, concat_with_pauses

log = structlog.get_logger(__name__)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_NORMAL_WPM = 175
VOICES = ("vi", "vi-vn-x-central", "vi-vn-x-south")

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_lock = threading.Lock()


@dataclass
class _Engine:
    lib: ctypes.CDLL
    rate: int
    buffer: list[bytes]
    callback: object  # kept referenced: the library calls it


_state: list[_Engine] = []


def _load() -> _Engine:
    """Load and initialise the library once per process (under the lock)."""
    if not _state:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, ctypes.c_char_p(data), 0)
        if rate <= 0:
            raise EngineUnavailable("espeak", f"espeak_Initialize failed ({rate})")
        buffer: list[bytes] = []

        def on_audio(wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
            if count > 0 and wav:
                buffer.append(ctypes.string_at(wav, count * 2))
            return 0

        callback = _CALLBACK(on_audio)
        lib.espeak_SetSynthCallback(callback)
        _state.append(_Engine(lib=lib, rate=rate, buffer=buffer, callback=callback))
        log.info("espeak_loaded", sample_rate=rate, library=espeakng_loader.get_library_path())
    return _state[0]


class EspeakSynthesizer:
    """espeak-ng Vietnamese voice (22,050 Hz mono)."""

    name = "espeak"

    def __init__(self, pause_s: float = 0.35) -> None:
        self.pause_s = pause_s

    def synthesize(self, chunks: Sequence[str], voice: str, speed: float) -> Audio:
        if voice not in VOICES:
            raise SynthesisFailed(self.name, f"unknown voice {voice!r}; known: {', '.join(VOICES)}")
        with _lock:
            engine = _load()
            lib, rate, buffer = engine.lib, engine.rate, engine.buffer
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise SynthesisFailed(self.name, f"voice {voice!r} is missing from the espeak-ng data")
            lib.espeak_SetParameter(_PARAM_RATE, int(_NORMAL_WPM * max(0.5, min(speed, 2.0))), 0)
            parts: list[npt.NDArray[np.int16]] = []
            for chunk in chunks:
                buffer.clear()
                encoded = chunk.encode("utf-8")
                status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                lib.espeak_Synchronize()
                if status != 0:
                    raise SynthesisFailed(self.name, f"espeak_Synth returned {status}")
                parts.append(np.frombuffer(b"".join(buffer), dtype=np.int16).copy())
            buffer.clear()
        audio = concat_with_pauses(parts, rate, self.pause_s)
        if audio.samples.size == 0:
            raise SynthesisFailed(self.name, "no audio produced")
        return audio

    def unsupported(self, text: str) -> set[str]:
        # espeak reads every letter and spells unknown symbols; the text preparation has removed the rest.
        return set()
