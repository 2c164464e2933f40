"""What several commands build from their arguments and settings: the broker address, the programme, the rendering
configuration. `serve`, `dispatch run`, `simulate` and `render` import these from here, not from each other."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.mqtt.broker import BrokerAddress, parse_broker_url
from domain.programme import SAMPLE_SLOTS, Programme, parse_slots
from runtime.config import Settings

if TYPE_CHECKING:
    from adapters.tts.render import RenderConfig


def broker_from(arg: str | None, default: str | None = None) -> BrokerAddress | None:
    """The broker address from an argument, `KENG_MQTT`, or a default; None for the embedded broker."""
    url = arg or os.environ.get("KENG_MQTT") or default
    return parse_broker_url(url) if url else None


def programme_from(slots: str | None) -> Programme:
    """The programme for every ward (per-ward slots are a `Programme(by_ward=...)` for integrators)."""
    return Programme(default=parse_slots(slots) if slots else SAMPLE_SLOTS)


def render_config(settings: Settings, engine: str, voice: str | None) -> RenderConfig:
    """Rendering settings from the environment (KENG_TTS_MODEL / KENG_TTS_CONFIG for coqui)."""
    from adapters.boards import BoardProfile
    from adapters.tts.base import TTSConfig
    from adapters.tts.render import RenderConfig

    model, config = os.environ.get("KENG_TTS_MODEL"), os.environ.get("KENG_TTS_CONFIG")
    tts = TTSConfig(
        engine=engine,
        voice=voice or ("vi" if engine == "espeak" else ""),
        coqui_model=Path(model) if model else None,
        coqui_config=Path(config) if config else None,
    )
    return RenderConfig(store_root=settings.data_dir / "assets", tts=tts, board=BoardProfile())
