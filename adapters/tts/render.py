"""Render one bulletin for its channels: audio for speakers, image and layout for boards, text for the rest.

`Renderer.render_bulletin` is what `keng render BROADCAST_ID` and the render worker of `keng serve` call, each with the
process's one `Renderer` (built by runtime/bootstrap.py; nothing here is module-level state). It is blocking (run it
in a worker). Failure rule: when the configured engine crashes or times out, `RenderFailed` (engine, reason) is
raised so the caller records a `RenderFailed` event; for an emergency the embedded espeak voice renders
instead, and the asset carries the failure so that both events can be recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import structlog

from keng.adapters.audio_store import AudioStore, content_key
from keng.adapters.boards import BoardProfile, page_count, render_board_png, render_board_text
from keng.adapters.private_files import write_private
from keng.adapters.tts.base import (
    Audio,
    EngineUnavailable,
    SynthesisFailed,
    SynthesisTimeout,
    Synthesizer,
    TTSConfig,
)
from keng.adapters.tts.loudness import normalise_loudness
from keng.domain.values import Priority
from keng.domain.vitext import PreparedText, normalise, prepare

log = structlog.get_logger(__name__)

AUDIO_CHANNELS = frozenset({"speaker", "ip-speaker", "audio"})
BOARD_CHANNELS = frozenset({"eboard", "board"})
TEXT_CHANNELS = frozenset({"portal", "app", "text"})
PRIORITIES = tuple(Priority)
MAX_BOARD_PAGES = 20


class TextTooLong(ValueError):
    """The text is over the configured limit; refused before any work."""


class RenderFailed(RuntimeError):
    """The configured engine failed; `engine` and `reason` go into the `RenderFailed` event."""

    def __init__(self, engine: str, reason: str) -> None:
        super().__init__(f"render failed on {engine}: {reason}")
        self.engine = engine
        self.reason = reason


@dataclass(frozen=True)
class RenderConfig:
    """Everything rendering needs; built by the composition root."""

    store_root: Path
    tts: TTSConfig = field(default_factory=TTSConfig)
    board: BoardProfile = field(default_factory=BoardProfile)


@dataclass(frozen=True)
class RenderedAsset:
    """One channel's asset. `failed` lists (engine, reason) pairs that were replaced by a fallback."""

    channel: str
    asset_hash: str
    path: Path
    duration_s: float | None
    engine: str
    mime: str
    size: int
    unspeakable: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()


def load_engine(config: TTSConfig) -> Synthesizer:
    """Load the engine a configuration names (slow for coqui: the model is read); raise EngineUnavailable."""
    if config.engine == "espeak":
        from keng.adapters.tts.espeak import EspeakSynthesizer

        return EspeakSynthesizer()
    if config.engine == "coqui":
        from keng.adapters.tts.coqui import CoquiSynthesizer

        return CoquiSynthesizer(
            config.coqui_model, config.coqui_config, config.coqui_device, cpu_bf16=config.coqui_cpu_bf16
        )
    raise EngineUnavailable(config.engine, "unknown engine (known: espeak, coqui)")


class Renderer:
    """The render stack of one process, built once by the composition root and handed to whoever renders: the loaded
    engines (a neural model takes seconds to load), the synthesis threads, one AudioStore per directory (concurrent
    renders share its single-flight) and the prepared texts of recent bulletins (an emergency is played again and
    again). `make_engine` is the seam for tests' recording engines."""

    def __init__(self, *, make_engine: Callable[[TTSConfig], Synthesizer] = load_engine, workers: int = 2) -> None:
        self.make_engine = make_engine
        self._engines: dict[tuple[object, ...], Synthesizer] = {}
        self._stores: dict[tuple[Path, int, int], AudioStore] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keng-tts")
        # Repeats of a bulletin skip preparation. PreparedText is immutable.
        self._prepare = lru_cache(maxsize=512)(prepare)

    def close(self) -> None:
        """Let running syntheses finish; no new ones start."""
        self._pool.shutdown(wait=False)

    def store(self, root: Path, mp3_bitrate_kbps: int, mp3_quality: int = 2) -> AudioStore:
        """The AudioStore of a directory (one per directory and encoding in this renderer)."""
        with self._lock:
            key = (root, mp3_bitrate_kbps, mp3_quality)
            return self._stores.setdefault(key, AudioStore(root, mp3_bitrate_kbps, mp3_quality))

    def engine(self, config: TTSConfig) -> Synthesizer:
        """The (loaded once) engine for the configuration; raise EngineUnavailable with the reason."""
        key = (config.engine, config.coqui_model, config.coqui_config, config.coqui_device, config.coqui_cpu_bf16)
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = self._engines[key] = self.make_engine(config)
        return engine

    def check_text(self, text: str, config: TTSConfig) -> PreparedText:
        """Refuse over-long text before any work, then prepare it (TextRefused when nothing is speakable)."""
        if len(text) > config.max_text_chars:
            raise TextTooLong(f"text has {len(text)} characters; the limit is {config.max_text_chars}")
        return self._prepare(text)

    def synthesize(self, prepared: PreparedText, config: TTSConfig) -> Audio:
        """Synthesise and loudness-normalise in a worker thread, bounded by config.timeout_s."""
        engine = self.engine(config)
        future = self._pool.submit(engine.synthesize, prepared.chunks, config.voice, config.speed)
        try:
            audio = future.result(timeout=config.timeout_s)
        except FutureTimeout as exc:
            # The worker cannot be killed; it finishes in the background and its result is dropped.
            raise SynthesisTimeout(engine.name, f"no audio after {config.timeout_s:g} s") from exc
        except SynthesisFailed:
            raise
        except Exception as exc:  # an engine bug: still a named failure, never a crash of the caller
            raise SynthesisFailed(engine.name, f"{type(exc).__name__}: {exc}") from exc
        return normalise_loudness(audio, config.loudness_lufs)

    def render_audio(self, prepared: PreparedText, config: TTSConfig, store: AudioStore) -> RenderedAsset:
        """Render (or find) the bulletin's audio in the store; raise SynthesisFailed on engine failure."""
        key = content_key(prepared.text, config.engine, config.voice, config.settings_fingerprint())
        info = store.get_or_create(
            key,
            config.engine,
            config.voice,
            lambda: self.synthesize(prepared, config),
            keep_wav=config.keep_wav,
            text=prepared.text,
        )
        return RenderedAsset(
            channel="speaker",
            asset_hash=key,
            path=info.path,
            duration_s=info.duration_s,
            engine=config.engine,
            mime=info.mime,
            size=info.size,
            unspeakable=prepared.unspeakable,
        )

    def render_bulletin(
        self, text: str, priority: str, channels: Sequence[str], config: RenderConfig
    ) -> list[RenderedAsset]:
        """Render the bulletin for each channel; see the module docstring for the failure and fallback rule."""
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r} (known: {', '.join(PRIORITIES)})")
        unknown = [c for c in channels if c not in AUDIO_CHANNELS | BOARD_CHANNELS | TEXT_CHANNELS]
        if unknown:
            raise ValueError(f"unknown channels: {', '.join(unknown)}")
        prepared = self.check_text(text, config.tts)
        store = self.store(config.store_root, config.tts.mp3_bitrate_kbps, config.tts.mp3_quality)
        assets: list[RenderedAsset] = []
        for channel in channels:
            if channel in AUDIO_CHANNELS:
                asset = self._audio_with_fallback(prepared, priority, config, store)
                assets.append(replace(asset, channel=channel))
            elif channel in BOARD_CHANNELS:
                assets.extend(_board_assets(text, priority, channel, config))
            else:
                data = normalise(text).encode("utf-8")
                assets.append(_stored(data, "txt", "text/plain; charset=utf-8", channel, "text", config.store_root))
        return assets

    def _audio_with_fallback(
        self, prepared: PreparedText, priority: str, config: RenderConfig, store: AudioStore
    ) -> RenderedAsset:
        try:
            return self.render_audio(prepared, config.tts, store)
        except SynthesisFailed as exc:
            log.warning("render_failed", engine=exc.engine, reason=exc.reason, priority=priority)
            if priority != Priority.EMERGENCY or config.tts.engine == "espeak":
                raise RenderFailed(exc.engine, exc.reason) from exc
            fallback = replace(config.tts, engine="espeak", voice="vi")
            try:
                asset = self.render_audio(prepared, fallback, store)
            except SynthesisFailed as second:
                raise RenderFailed(second.engine, f"{second.reason} (after {exc.engine}: {exc.reason})") from second
            return replace(asset, failed=((exc.engine, exc.reason),))


def _stored(data: bytes, suffix: str, mime: str, channel: str, engine: str, store_root: Path) -> RenderedAsset:
    """Write bytes under their own SHA-256 (atomically, once) and describe them."""
    key = hashlib.sha256(data).hexdigest()
    path = store_root / f"{key}.{suffix}"
    if not path.exists():
        write_private(path, data)
    return RenderedAsset(
        channel=channel, asset_hash=key, path=path, duration_s=None, engine=engine, mime=mime, size=len(data)
    )


def _board_assets(text: str, priority: str, channel: str, config: RenderConfig) -> list[RenderedAsset]:
    """The layout as JSON (for boards that draw text) and one PNG per page (for boards that show images)."""
    layout = render_board_text(text, priority, config.board)
    body = json.dumps({"board": config.board.name, **layout.as_dict()}, ensure_ascii=False).encode()
    assets = [_stored(body, "json", "application/json", channel, "board", config.store_root)]
    for page in range(min(page_count(layout), MAX_BOARD_PAGES)):
        png = render_board_png(layout, config.board, page)
        assets.append(_stored(png, "png", "image/png", channel, "board", config.store_root))
    return assets
