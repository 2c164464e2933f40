"""The render worker of `keng serve`: speaker audio for every live broadcast, as soon as it is submitted.

It watches the catalogue of current states (folded incrementally from the log) for broadcasts that go to speakers and
have no audio for their current revision, renders them off the event loop, and records `Rendered` (with the SHA-256 of
the bytes) or `RenderFailed`. Rendering at submission means the audio is usually ready when an approver approves, so
the dispatcher can put its URL, hash and duration into the `play` command; an emergency that is approved first still
goes out (the dispatcher sends the text), and its repeats get the audio.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import structlog

from keng.adapters.store.app import Keng
from keng.adapters.store.errors import ConcurrencyConflict
from keng.adapters.tts.render import RenderConfig, Renderer, RenderFailed
from keng.domain.broadcast import LIVE_STATES, Broadcast
from keng.domain.values import BroadcastState
from keng.projections.catalog import Catalog

log = structlog.get_logger(__name__)
LIVE = tuple(s for s in LIVE_STATES if s is not BroadcastState.DRAFT)  # a draft may change: render it once submitted


def needs_audio(b: Broadcast) -> bool:
    """A live broadcast for speakers with neither audio nor a recorded failure for its current revision."""
    if b.state not in LIVE or "speaker" not in b.channels:
        return False
    done = any(r["channel"] == "speaker" and r["revision"] == b.revision for r in b.renders)
    return not done and not any(f.get("revision", b.revision) == b.revision for f in b.render_failures)


def render_one(app: Keng, b: Broadcast, renderer: Renderer, config: RenderConfig) -> None:
    """Render one broadcast's speaker audio and record the outcome (retried once on a concurrent change)."""
    try:
        (asset,) = renderer.render_bulletin(b.announced_text, b.priority, ["speaker"], config)
    except RenderFailed as failure:
        outcome: tuple[str, ...] = ("failed", failure.engine, failure.reason)
    except Exception as e:  # an engine crash is recorded as a failure of that engine, never lost
        outcome = ("failed", config.tts.engine, f"{type(e).__name__}: {e}")
    else:
        outcome = (
            "ok",
            asset.asset_hash,
            str(asset.duration_s),
            asset.engine,
            hashlib.sha256(Path(asset.path).read_bytes()).hexdigest(),
        )
    for _ in range(2):
        item = app.broadcast(b.id)
        if item.revision != b.revision:
            return  # revised meanwhile: the next pass renders the new text
        if outcome[0] == "failed":
            item.record_render_failure(channel="speaker", engine=outcome[1], reason=outcome[2])
        else:
            item.record_render(
                channel="speaker",
                asset_hash=outcome[1],
                duration_s=float(outcome[2]),
                engine=outcome[3],
                content_sha256=outcome[4],
            )
        try:
            app.save_changes(item)
        except ConcurrencyConflict:
            continue
        log.info("render.recorded", broadcast_id=str(b.id), outcome=outcome[0])
        return


async def run_renderer(app: Keng, renderer: Renderer, config: RenderConfig, *, poll_s: float = 0.3) -> None:
    """Render with the process's renderer (runtime/bootstrap.py builds it) until cancelled."""
    catalog = Catalog()
    while True:
        await asyncio.to_thread(lambda: catalog.fold(app.read_events(catalog.position)))
        for b in [b for b in catalog.of_type(Broadcast) if needs_audio(b)]:
            try:
                await asyncio.to_thread(render_one, app, b, renderer, config)
            except Exception:
                log.exception("render.crashed", broadcast_id=str(b.id))  # recorded per broadcast; the loop goes on
        await asyncio.sleep(poll_s)
