"""Neural voices through coqui-tts (the `coqui` extra): a VITS/XTTS checkpoint plus its config.json.

Loaded once per instance, on first use, through `TTS.utils.synthesizer.Synthesizer`, the path a real
checkpoint takes; the GPU is used when present (or as configured), the CPU otherwise. Inference is
serialised per instance. Nothing is downloaded: a missing model is an `EngineUnavailable` error, not a
fetch.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from keng.adapters.tts.base import Audio, EngineUnavailable, SynthesisFailed, concat_with_pauses, float_to_int16

log = structlog.get_logger(__name__)


def coqui_installed() -> bool:
    """True when the `TTS` package (coqui-tts) can be imported here."""
    return importlib.util.find_spec("TTS") is not None


def pick_device(requested: str | None) -> str:
    """ "cuda" when requested or available, else "cpu"."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_bf16() -> bool:
    """True when the processor has bfloat16 instructions (Linux: AVX512-BF16 or AMX-BF16 in /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _run_in_bfloat16(model: Any) -> None:
    """Wrap the model's `inference` in CPU bfloat16 autocast, handing back float32 tensors (coqui converts its
    outputs to numpy, which has no bfloat16). The weights stay float32; only the matrix and convolution kernels run
    in bfloat16, which oneDNN accelerates on CPUs with bf16 instructions."""
    import torch

    inference = model.inference

    def inference_bf16(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = inference(*args, **kwargs)
        if isinstance(out, dict):
            return {k: v.float() if torch.is_tensor(v) and v.dtype == torch.bfloat16 else v for k, v in out.items()}
        return out

    model.inference = inference_bf16


class CoquiSynthesizer:
    """A coqui-tts model on disk: `model_path` (.pth) and `config_path` (config.json)."""

    name = "coqui"

    def __init__(
        self,
        model_path: Path | None,
        config_path: Path | None,
        device: str | None = None,
        pause_s: float = 0.3,
        cpu_bf16: bool | None = None,
    ) -> None:
        if not coqui_installed():
            raise EngineUnavailable(self.name, "coqui-tts is not installed (pip install 'keng[coqui]')")
        if model_path is None:
            raise EngineUnavailable(self.name, "no model configured (set KENG_TTS_MODEL to a .pth checkpoint)")
        config_path = config_path or model_path.with_name("config.json")
        for label, path in (("model", model_path), ("config", config_path)):
            if not path.is_file():
                raise EngineUnavailable(self.name, f"{label} file not found: {path}")
        self.model_path = model_path
        self.config_path = config_path
        self.requested_device = device
        self.pause_s = pause_s
        self.cpu_bf16 = cpu_bf16
        self.precision = "float32"
        self._lock = threading.Lock()
        self._synth: Any = None
        self._cased = False
        self.device = ""

    def _load(self) -> Any:
        if self._synth is None:
            from TTS.utils.synthesizer import Synthesizer

            started = time.perf_counter()
            self.device = pick_device(self.requested_device)
            try:
                self._synth = Synthesizer(
                    tts_checkpoint=self.model_path,
                    tts_config_path=self.config_path,
                    use_cuda=self.device == "cuda",
                )
            except Exception as exc:  # a corrupt or incompatible checkpoint: name it, never crash the caller
                raise SynthesisFailed(self.name, f"cannot load model {self.model_path}: {exc}") from exc
            if self.device == "cpu" and (self.cpu_bf16 if self.cpu_bf16 is not None else cpu_has_bf16()):
                _run_in_bfloat16(self._synth.tts_model)
                self.precision = "bfloat16"
            log.info(
                "coqui_loaded",
                model=str(self.model_path),
                device=self.device,
                precision=self.precision,
                sample_rate=self._synth.output_sample_rate,
                load_ms=round((time.perf_counter() - started) * 1000),
            )
        return self._synth

    def vocabulary(self) -> set[str]:
        """Characters the model's tokenizer knows (others are dropped silently by coqui)."""
        with self._lock:
            tokenizer = getattr(self._load().tts_model, "tokenizer", None)
        vocab = getattr(getattr(tokenizer, "characters", None), "vocab", None)
        return set(vocab) if vocab else set()

    def unsupported(self, text: str) -> set[str]:
        vocab = self.vocabulary()
        if not vocab:
            return set()
        cased = any(ch.isupper() for ch in vocab)
        return {ch for ch in (text if cased else text.lower()) if ch not in vocab and not ch.isspace()}

    def synthesize(self, chunks: Sequence[str], voice: str, speed: float) -> Audio:
        with self._lock:
            synth = self._load()
            model = synth.tts_model
            if hasattr(model, "length_scale"):
                model.length_scale = 1.0 / max(0.5, min(speed, 2.0))
            vocab = getattr(getattr(getattr(model, "tokenizer", None), "characters", None), "vocab", None) or []
            self._cased = any(ch.isupper() for ch in vocab)  # a lower-case vocabulary would drop capitals
            speaker = voice if getattr(synth.tts_model, "num_speakers", 0) > 1 else None
            parts: list[npt.NDArray[np.int16]] = []
            try:
                for chunk in chunks:
                    text = chunk if self._cased else chunk.lower()
                    wave = synth.tts(text, speaker_name=speaker, split_sentences=False)
                    parts.append(float_to_int16(np.asarray(wave, dtype=np.float32)))
            except Exception as exc:
                raise SynthesisFailed(self.name, f"{type(exc).__name__}: {exc}") from exc
            rate = int(synth.output_sample_rate)
        audio = concat_with_pauses(parts, rate, self.pause_s)
        if audio.samples.size == 0:
            raise SynthesisFailed(self.name, "no audio produced")
        return audio
