"""The content of a dispatch item, made before its first publish: the speakers' audio file and one page per board
resolution (domain/dispatch.py `ItemSent` records their hashes).

No silent speaker: when the broadcast has no speaker render of its current revision (an emergency auto-approved before
the render worker ran, a dispatcher that runs without one), the embedded espeak-ng voice renders it here, on the
dispatch path, into the asset store the render worker and `GET /audio/<key>` use, and the model records it as
`Broadcast.Rendered` like any render. Should even that fail (nothing speakable, the voice missing, no answer within
AUDIO_WAIT_S), a stock alert tone stands in (adapters/tts/tone.py) and the failure is recorded as
`Broadcast.RenderFailed`: a speaker command always carries a real file, and a device is never told to play a text's
hash as audio.

Board pages (adapters/boards.py) are stored under their own SHA-256 in `<assets>/boards/`, which `GET /board/<sha256>
.png|.json` serves to signed links. Everything is content-addressed and deterministic, so a file made twice is the same
bytes; `prepare` makes a submitted broadcast's files ahead of its approval, and `make` waits for one already being made
rather than making it twice.

Where the work runs: in a render process of its own (DESIGN.md section 8), started with the dispatcher and warmed
while it catches up with the log, so that the voice, the loudness filter (scipy, ~100 MB) and the board font stay out of
the dispatcher, and a render never holds its event loop. `keng serve` hands its in-process render stack instead (its
render worker has it loaded already).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from keng.adapters.mqtt.protocol import text_sha256
from keng.adapters.private_files import private_dir, write_private
from keng.domain.broadcast import Broadcast
from keng.domain.display import Resolution
from keng.domain.records import DispatchItem, ItemAudio, ItemBoard

log = structlog.get_logger(__name__)
T = TypeVar("T")
MEMO = 256  # recent bulletins' files (per text, priority and resolution) remembered by their hashes
AUDIO_FORMAT = "mp3"
AUDIO_WAIT_S = 10.0  # an emergency waits no longer for its voice: the alert tone goes instead
PAGE_WAIT_S = 30.0
DISPATCH_MP3_QUALITY = 5  # LAME's "good, fast": on the dispatch path (adapters/tts/base.py TTSConfig.mp3_quality)
Failure = tuple[str, str]  # (engine, reason)


@dataclass
class ItemParts:
    """An item ready to record and send, and what to record on the broadcast with it."""

    item: DispatchItem
    renders: list[dict[str, Any]] = field(default_factory=list)  # Broadcast.record_render keyword arguments
    failures: list[dict[str, str]] = field(default_factory=list)  # Broadcast.record_render_failure keyword arguments


def current_render(b: Broadcast) -> ItemAudio | None:
    """The broadcast's latest speaker render of its current revision, as an item's audio (None when there is none,
    or only one recorded before renders carried the hash of their bytes)."""
    for r in reversed(b.renders):
        if r["channel"] == "speaker" and r["revision"] == b.revision and r.get("content_sha256"):
            return ItemAudio(
                key=r["asset_hash"],
                sha256=str(r["content_sha256"]),
                duration_s=float(r["duration_s"] or 0.0),
                format=AUDIO_FORMAT,
                engine=r["engine"],
            )
    return None


# -- the work itself: in the render process (module state there), or in this one with a given render stack ---------

_stack: dict[str, Any] = {}  # the render process's Renderer and RenderConfig, per asset directory


def _espeak(assets_dir: str) -> tuple[Any, Any]:
    if assets_dir not in _stack:
        from keng.adapters.tts.base import TTSConfig
        from keng.adapters.tts.render import RenderConfig, Renderer

        tts = TTSConfig(engine="espeak", voice="vi", mp3_quality=DISPATCH_MP3_QUALITY)
        config = RenderConfig(store_root=Path(assets_dir), tts=tts)
        _stack[assets_dir] = (Renderer(), config)
    renderer, config = _stack[assets_dir]
    return renderer, config


def _follow_parent(parent: int, log_format: str = "auto", log_level: str = "info") -> None:
    """The render process's initializer: log as the dispatcher does (JSON lines on stderr in production), and end the
    process when the dispatcher that started it is gone (even SIGKILLed)."""
    import time

    from keng.runtime.logs import configure_logging

    configure_logging(log_format, log_level)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="keng-render-parent", daemon=True).start()


def warm_job(assets_dir: str) -> None:
    """Load the voice, the loudness filter, the encoder and the board font, and run each once (the first render of
    a process took 20-30 ms longer than the next ones): run once in the render process."""
    from keng.adapters import boards

    audio_job("Sẵn sàng phát.", "normal", assets_dir)  # a short file, stored like any other
    boards.render_board_page("Sẵn sàng", "emergency", 64, 32)


def audio_job(
    text: str, priority: str, assets_dir: str, renderer: Any = None, config: Any = None
) -> tuple[ItemAudio | None, Failure | None]:
    """Render a bulletin's speaker audio: (the audio, or None when the voice failed; the voice's failure, if any)."""
    from keng.adapters.tts.render import RenderFailed

    if renderer is None:
        renderer, config = _espeak(assets_dir)
    try:
        (asset,) = renderer.render_bulletin(text, priority, ["speaker"], config)
    except RenderFailed as e:
        return None, (e.engine, e.reason)
    except Exception as e:  # text the voice refuses, an engine crash: the tone, never silence
        return None, (config.tts.engine, f"{type(e).__name__}: {e}"[:1000])
    audio = ItemAudio(
        key=asset.asset_hash,
        sha256=hashlib.sha256(Path(asset.path).read_bytes()).hexdigest(),
        duration_s=float(asset.duration_s or 0.0),
        format=AUDIO_FORMAT,
        engine=asset.engine,
    )
    return audio, (asset.failed[0] if asset.failed else None)


def page_job(text: str, priority: str, resolution: Resolution, boards_dir: str) -> ItemBoard:
    """Render a bulletin's page for boards of one resolution and store its image and layout under their hashes."""
    from keng.adapters.boards import render_board_page

    image, layout = render_board_page(text, priority, *resolution)
    shas = []
    private_dir(Path(boards_dir))
    for data, suffix in ((image, "png"), (layout, "json")):
        sha = hashlib.sha256(data).hexdigest()
        path = Path(boards_dir) / f"{sha}.{suffix}"
        if not path.exists():
            write_private(path, data)
        shas.append(sha)
    return ItemBoard(width=resolution[0], height=resolution[1], image_sha256=shas[0], layout_sha256=shas[1])


def tone_job(assets_dir: str) -> ItemAudio:
    """The stored alert tone (numpy and the MP3 encoder only: cheap to make here when the render process is gone)."""
    from keng.adapters.audio_store import AudioStore, content_key
    from keng.adapters.tts.tone import TONE_ENGINE, TONE_VERSION, alert_tone

    key = content_key(TONE_VERSION, TONE_ENGINE, "", "")
    info = AudioStore(Path(assets_dir)).get_or_create(key, TONE_ENGINE, "", alert_tone)
    return ItemAudio(
        key=key,
        sha256=hashlib.sha256(info.path.read_bytes()).hexdigest(),
        duration_s=info.duration_s,
        format=AUDIO_FORMAT,
        engine=TONE_ENGINE,
    )


class _Memo:
    """Single-flight, bounded memo: the first caller of a key makes it, later ones wait for that result."""

    def __init__(self, size: int = MEMO) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._futures: OrderedDict[tuple[Any, ...], Future[Any]] = OrderedDict()

    def get(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        with self._lock:
            future = self._futures.get(key)
            leader = future is None
            if future is None:
                future = self._futures[key] = Future()
                while len(self._futures) > self.size:
                    self._futures.popitem(last=False)
            else:
                self._futures.move_to_end(key)
        if not leader:
            result: T = future.result()
            return result
        try:
            value = make()
        except BaseException as exc:
            with self._lock:
                self._futures.pop(key, None)  # a failure is not remembered: the next caller tries again
            future.set_exception(exc)
            raise
        future.set_result(value)
        return value


class ItemContent:
    """Makes items' files. `make` blocks (the dispatcher calls it on its store thread); `prepare` works in a thread of
    its own. Given a `renderer` and its `config`, audio renders in this process with them; otherwise in the render
    process (espeak-ng, voice `vi`, the render worker's settings, so the same files)."""

    def __init__(
        self,
        assets_dir: Path,
        *,
        renderer: Any | None = None,
        config: Any | None = None,
        log_format: str = "auto",
        log_level: str = "info",
    ) -> None:
        self.assets_dir = assets_dir
        self._log = (log_format, log_level)  # the render process's logging (runtime/logs.py)
        self.boards_dir = assets_dir / "boards"
        self._renderer, self._config = renderer, config
        self._audio = _Memo()
        self._pages = _Memo()
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keng-item-content")
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._in_process = False  # no render process could be started: jobs run in this one, on `_local`
        self._local = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keng-render-local")
        self.renders = 0  # audio and pages made for this dispatcher (tests and metrics read it)
        self.warmed: Future[Any] | None = None

    def _process(self) -> ProcessPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_follow_parent,
                    initargs=(os.getpid(), *self._log),
                )
            return self._pool

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """A job for the render process, or for this process once none could be started or one broke (heavier and
        sharing this process's CPU, but the same content)."""
        if not self._in_process:
            try:
                return self._process().submit(fn, *args)
            except OSError as e:
                self._local_from_now(e)
        return self._local.submit(fn, *args)

    def _local_from_now(self, why: BaseException) -> None:
        self._in_process = True
        log.error("dispatch.render_process_unavailable", error=f"{type(why).__name__}: {why}"[:300])
        with self._pool_lock:
            broken, self._pool = self._pool, None
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)

    def _run(self, timeout: float, fn: Callable[..., T], *args: Any) -> T:
        """Run a job in the render process (or, once that broke, in this one)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            result: T = self._submit(fn, *args).result(timeout=timeout)
        except BrokenProcessPool as e:  # killed, out of memory, or a script that spawns it without a main guard
            self._local_from_now(e)
            result = self._local.submit(fn, *args).result(timeout=timeout)
        return result

    def warm(self) -> None:
        """Start the render process and load the voice and the board font there, in the background (`warmed` is done
        once it is; an item that comes earlier waits for it: about 1-2 s after start-up)."""
        if self._renderer is None:
            self.warmed = self._submit(warm_job, str(self.assets_dir))
        elif self._config is not None:
            self.warmed = self._ahead.submit(self._renderer.engine, self._config.tts)

    def close(self) -> None:
        """Stop the background thread and the render process."""
        self._ahead.shutdown(wait=False, cancel_futures=True)
        self._local.shutdown(wait=False, cancel_futures=True)
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- items ----------------------------------------------------------------------------------------------------

    def make(
        self, b: Broadcast, *, seq: int, speakers: bool, resolutions: Iterable[Resolution], at: datetime
    ) -> ItemParts:
        """Item `seq` of the broadcast's current revision: its text hash, the speakers' audio (the current render, else
        rendered now) when it goes to speakers, and a page per board resolution."""
        parts = ItemParts(
            item=DispatchItem(seq=seq, text_sha256=text_sha256(b.announced_text), audio=None, boards=[], at="")
        )
        if speakers:
            audio = current_render(b)
            if audio is None:
                audio, failure = self.audio(b.announced_text, b.priority)
                if failure is not None:
                    parts.failures.append({"channel": "speaker", "engine": failure[0], "reason": failure[1]})
                parts.renders.append(
                    {
                        "channel": "speaker",
                        "asset_hash": audio["key"],
                        "duration_s": audio["duration_s"],
                        "engine": audio["engine"],
                        "content_sha256": audio["sha256"],
                    }
                )
            parts.item["audio"] = audio
        for res in sorted(set(resolutions)):
            try:
                parts.item["boards"].append(self.page(b.announced_text, b.priority, res))
            except Exception as e:  # boards of that resolution get the text (they show it themselves)
                log.error(
                    "dispatch.board_page_failed", resolution=f"{res[0]}x{res[1]}", error=f"{type(e).__name__}: {e}"
                )
        parts.item["at"] = at.isoformat()
        return parts

    def prepare(self, b: Broadcast, *, speakers: bool, resolutions: Iterable[Resolution]) -> None:
        """Make the files of a submitted broadcast ahead of its approval, in the background (nothing is recorded)."""
        text, priority, res = b.announced_text, b.priority, sorted(set(resolutions))
        need_audio = speakers and current_render(b) is None

        def ahead() -> None:
            try:
                if need_audio:
                    self.audio(text, priority)
                for r in res:
                    self.page(text, priority, r)
            except Exception as e:
                log.warning("dispatch.prepare_failed", broadcast_id=str(b.id), error=f"{type(e).__name__}: {e}")

        self._ahead.submit(ahead)

    # -- files ----------------------------------------------------------------------------------------------------

    def audio(self, text: str, priority: str) -> tuple[ItemAudio, Failure | None]:
        """A bulletin's audio, made once (the alert tone when the voice fails), and the voice's failure if any."""
        return self._audio.get(("audio", text, priority), lambda: self._make_audio(text, priority))

    def _make_audio(self, text: str, priority: str) -> tuple[ItemAudio, Failure | None]:
        try:
            if self._renderer is not None:
                audio, failure = audio_job(text, priority, str(self.assets_dir), self._renderer, self._config)
            else:
                audio, failure = self._run(AUDIO_WAIT_S, audio_job, text, priority, str(self.assets_dir))
        except Exception as e:  # the render process broke, or took too long
            audio, failure = None, ("espeak", f"render process: {type(e).__name__}: {e}"[:1000])
        if audio is None:
            assert failure is not None
            log.warning("dispatch.audio_failed_alert_tone", engine=failure[0], reason=failure[1])
            audio = tone_job(str(self.assets_dir))
        else:
            self.renders += 1
            log.info(
                "dispatch.audio_rendered", key=audio["key"], engine=audio["engine"], duration_s=audio["duration_s"]
            )
        return audio, failure

    def page(self, text: str, priority: str, resolution: Resolution) -> ItemBoard:
        """The page of a bulletin for boards of one resolution: rendered and stored once, then remembered."""
        return self._pages.get(
            ("page", text, priority, resolution), lambda: self._make_page(text, priority, resolution)
        )

    def _make_page(self, text: str, priority: str, resolution: Resolution) -> ItemBoard:
        args = (text, priority, resolution, str(self.boards_dir))
        page = page_job(*args) if self._renderer is not None else self._run(PAGE_WAIT_S, page_job, *args)
        self.renders += 1
        return page
