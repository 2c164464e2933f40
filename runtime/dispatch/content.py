"""The content of a dispatch item, made before its first publish: the speakers' audio file and one page per board
resolution (domain/dispatch.py `ItemSent` records their hashes).

No silent speaker: when the broadcast has no speaker render of its current revision (an emergency auto-approved before
the render worker ran, a dispatcher that runs without one), the embedded espeak-ng voice renders it here, on the
dispatch path, into the asset store the render worker and `GET /audio/<key>` use, and the model records it as
`Broadcast.Rendered` like any render. Should even that fail (nothing speakable, the library missing), a stock alert
tone stands in (adapters/tts/tone.py) and the failure is recorded as `Broadcast.RenderFailed`: a speaker command
always carries a real file, and a device is never told to play a text's hash as audio.

Board pages (adapters/boards.py) are stored under their own SHA-256 in `<assets>/boards/`, which `GET /board/<sha256>
.png|.json` serves to signed links. Everything here is content-addressed and deterministic, so a page or a file made
twice is the same bytes; `prepare` makes them ahead, in a background thread, when a broadcast is submitted (the
approval then finds them ready), and `make` waits for one already being made rather than making it twice.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from keng.adapters.private_files import private_dir, write_private
from keng.domain.broadcast import Broadcast
from keng.domain.display import Resolution
from keng.domain.records import DispatchItem, ItemAudio, ItemBoard

log = structlog.get_logger(__name__)
T = TypeVar("T")
MEMO = 256  # recent bulletins' files (per text, priority and resolution) kept in memory by their hashes
AUDIO_FORMAT = "mp3"


@dataclass
class ItemParts:
    """An item ready to record and send, and what to record on the broadcast with it."""

    item: DispatchItem
    renders: list[dict[str, Any]] = field(default_factory=list)  # Broadcast.record_render keyword arguments
    failures: list[dict[str, str]] = field(default_factory=list)  # Broadcast.record_render_failure keyword arguments


def text_sha256(text: str) -> str:
    """The `text_sha256` of a command: SHA-256 of the UTF-8 bytes of its `text`."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


class _Memo:
    """Single-flight, bounded memo of futures: the first caller of a key makes it, later ones wait for that."""

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
    """Makes items' files: audio through the process's Renderer (espeak-ng unless told otherwise), board pages, the
    alert tone. Blocking (the dispatcher calls it on its store thread); `prepare` works in a thread of its own."""

    def __init__(self, assets_dir: Path, *, renderer: Any | None = None, config: Any | None = None) -> None:
        self.assets_dir = assets_dir
        self.boards_dir = assets_dir / "boards"
        self._renderer = renderer
        self._own_renderer = renderer is None
        self._config = config
        self._audio = _Memo()
        self._pages = _Memo()
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keng-item-content")
        self.renders = 0  # audio and pages made here (tests and metrics read it)

    # -- the render stack, loaded on first use ------------------------------------------------------------------

    @property
    def renderer(self) -> Any:
        if self._renderer is None:
            from keng.adapters.tts.render import Renderer

            self._renderer = Renderer()
        return self._renderer

    @property
    def config(self) -> Any:
        if self._config is None:
            from keng.adapters.tts.base import TTSConfig
            from keng.adapters.tts.render import RenderConfig

            self._config = RenderConfig(store_root=self.assets_dir, tts=TTSConfig(engine="espeak", voice="vi"))
        return self._config

    def warm(self) -> None:
        """Load the voice, the encoder and the board font now, so that the first emergency does not wait for them."""
        try:
            self.renderer.engine(self.config.tts)
            from keng.adapters import boards

            boards.render_board_page("Sẵn sàng", "emergency", 64, 32)
        except Exception as e:  # a missing voice is handled per item (the alert tone); start anyway
            log.warning("dispatch.content_warm_failed", error=f"{type(e).__name__}: {e}")

    def close(self) -> None:
        """Stop the background thread; close the renderer if it is this object's own."""
        self._ahead.shutdown(wait=False, cancel_futures=True)
        if self._own_renderer and self._renderer is not None:
            self._renderer.close()

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
                audio, rendered, failure = self._audio.get(
                    ("audio", b.announced_text, b.priority), lambda: self._render_audio(b.announced_text, b.priority)
                )
                if failure is not None:
                    parts.failures.append({"channel": "speaker", "engine": failure[0], "reason": failure[1]})
                if rendered:
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
        parts.item["boards"] = [self.page(b.announced_text, b.priority, res) for res in sorted(set(resolutions))]
        parts.item["at"] = at.isoformat()
        return parts

    def prepare(self, b: Broadcast, *, speakers: bool, resolutions: Iterable[Resolution]) -> None:
        """Make the files of a submitted broadcast ahead of its approval, in the background (nothing is recorded)."""
        text, priority, res = b.announced_text, b.priority, sorted(set(resolutions))
        need_audio = speakers and current_render(b) is None

        def ahead() -> None:
            try:
                if need_audio:
                    self._audio.get(("audio", text, priority), lambda: self._render_audio(text, priority))
                for r in res:
                    self.page(text, priority, r)
            except Exception as e:
                log.warning("dispatch.prepare_failed", broadcast_id=str(b.id), error=f"{type(e).__name__}: {e}")

        self._ahead.submit(ahead)

    # -- files ----------------------------------------------------------------------------------------------------

    def page(self, text: str, priority: str, resolution: Resolution) -> ItemBoard:
        """The page of a bulletin for boards of one resolution: rendered and stored once, then remembered."""
        return self._pages.get(
            ("page", text, priority, resolution), lambda: self._render_page(text, priority, resolution)
        )

    def _render_page(self, text: str, priority: str, resolution: Resolution) -> ItemBoard:
        from keng.adapters.boards import render_board_page

        image, layout = render_board_page(text, priority, *resolution)
        shas = []
        private_dir(self.boards_dir)
        for data, suffix in ((image, "png"), (layout, "json")):
            sha = hashlib.sha256(data).hexdigest()
            path = self.boards_dir / f"{sha}.{suffix}"
            if not path.exists():
                write_private(path, data)
            shas.append(sha)
        self.renders += 1
        return ItemBoard(width=resolution[0], height=resolution[1], image_sha256=shas[0], layout_sha256=shas[1])

    def _render_audio(self, text: str, priority: str) -> tuple[ItemAudio, bool, tuple[str, str] | None]:
        """(audio, whether it was rendered here, the voice's failure when the alert tone stands in)."""
        from keng.adapters.tts.render import RenderFailed

        config = self.config
        try:
            (asset,) = self.renderer.render_bulletin(text, priority, ["speaker"], config)
        except RenderFailed as e:
            failure = (e.engine, e.reason)
        except Exception as e:  # text the voice refuses, an engine crash: the tone, never silence
            failure = (config.tts.engine, f"{type(e).__name__}: {e}"[:1000])
        else:
            self.renders += 1
            sha = hashlib.sha256(Path(asset.path).read_bytes()).hexdigest()
            audio = ItemAudio(
                key=asset.asset_hash,
                sha256=sha,
                duration_s=float(asset.duration_s or 0.0),
                format=AUDIO_FORMAT,
                engine=asset.engine,
            )
            log.info("dispatch.audio_rendered", key=asset.asset_hash, engine=asset.engine, duration_s=asset.duration_s)
            return audio, True, (asset.failed[0] if asset.failed else None)
        log.warning("dispatch.audio_failed_alert_tone", engine=failure[0], reason=failure[1])
        return self._tone(), True, failure

    def _tone(self) -> ItemAudio:
        from keng.adapters.audio_store import content_key
        from keng.adapters.tts.tone import TONE_ENGINE, TONE_VERSION, alert_tone

        store = self.renderer.store(self.config.store_root, self.config.tts.mp3_bitrate_kbps)
        key = content_key(TONE_VERSION, TONE_ENGINE, "", "")
        info = store.get_or_create(key, TONE_ENGINE, "", alert_tone, text="")
        return ItemAudio(
            key=key,
            sha256=hashlib.sha256(info.path.read_bytes()).hexdigest(),
            duration_s=info.duration_s,
            format=AUDIO_FORMAT,
            engine=TONE_ENGINE,
        )
