"""`keng render BROADCAST_ID`: render a broadcast for every channel it goes to, and record what was rendered.

Each asset becomes a `Broadcast.Rendered` event (channel, content hash, duration, engine); an engine failure becomes a
`Broadcast.RenderFailed` event naming the engine and the reason, and the broadcast itself is left intact. For an
emergency the renderer falls back to the embedded espeak voice rather than producing nothing.
"""

from __future__ import annotations

import argparse
import hashlib

import structlog

from keng.runtime.bootstrap import build_renderer, open_app, render_config
from keng.runtime.cli.output import CommandError, print_json, print_table
from keng.runtime.config import Settings
from keng.services import broadcasts

log = structlog.get_logger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keng render`."""
    p = sub.add_parser("render", help="render a broadcast for all its channels (audio, board images, text)")
    p.add_argument("id", help="broadcast id (or a unique prefix)")
    p.add_argument("--engine", choices=["espeak", "coqui"], default=None, help="default: $KENG_TTS_ENGINE, else espeak")
    p.add_argument("--voice", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_render)


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    # The audio stack (numpy, scipy, the engines) loads only for this command, not for every `keng` invocation.
    from keng.adapters.tts.render import RenderFailed

    app = open_app(settings, create=False)
    bid = broadcasts.resolve_id(app, args.id)
    item = app.broadcast(bid)
    renderer = build_renderer()
    try:
        assets = renderer.render_bulletin(
            item.announced_text, item.priority, item.channels, render_config(settings, args.engine, args.voice)
        )
    except RenderFailed as failure:
        item.record_render_failure(channel="speaker", engine=failure.engine, reason=failure.reason)
        app.save_changes(item)
        log.warning("render.failed", broadcast_id=str(bid), engine=failure.engine, reason=failure.reason)
        raise CommandError("Không tạo được âm thanh (recorded as RenderFailed)", str(failure)) from failure
    finally:
        renderer.close()
    for asset in assets:
        for engine, reason in asset.failed:
            item.record_render_failure(channel=asset.channel, engine=engine, reason=reason)
        item.record_render(
            channel=asset.channel,
            asset_hash=asset.asset_hash,
            duration_s=asset.duration_s,
            engine=asset.engine,
            content_sha256=hashlib.sha256(asset.path.read_bytes()).hexdigest(),
        )
    app.save_changes(item)
    rows = [
        {
            "channel": a.channel,
            "engine": a.engine,
            "sha256": a.asset_hash,
            "mime": a.mime,
            "bytes": a.size,
            "duration_s": a.duration_s,
            "path": str(a.path),
        }
        for a in assets
    ]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["kênh (channel)", "engine", "sha256", "mime", "bytes", "giây (s)"],
            [
                [
                    r["channel"],
                    r["engine"],
                    str(r["sha256"])[:16],
                    r["mime"],
                    r["bytes"],
                    "" if r["duration_s"] is None else f"{r['duration_s']:.1f}",
                ]
                for r in rows
            ],
        )
    return 0
