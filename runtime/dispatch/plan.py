"""What the dispatcher's loop delivers: targets, plans, the reactions of the log follower, and the play commands.

Split from runtime/dispatch/model.py (which folds the log and writes): these are plain values built there and consumed
by the loop (runtime/dispatch/dispatcher.py, runtime/dispatch/live.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from keng.adapters.mqtt import protocol as proto
from keng.domain.broadcast import Broadcast
from keng.domain.dispatch import Dispatch
from keng.domain.programme import volume_for
from keng.domain.values import Priority

CHARS_PER_SECOND = 14.0  # spoken Vietnamese, for the duration of text that has no rendered audio yet


@dataclass(frozen=True)
class Target:
    """One commandable endpoint of a dispatch."""

    code: str
    cls: str
    ward: str
    cellular: bool


@dataclass
class Plan:
    """What the loop needs to deliver one dispatch (built from the log; `states` and `first_at` as recorded)."""

    dispatch_id: str
    broadcast_id: str
    priority: str
    rank: int
    expires_at: datetime
    reference_at: datetime
    targets: dict[str, Target]
    group_topics: list[str]
    direct: list[str]
    commands: dict[str, bytes]
    sha256: str
    states: dict[str, str] = field(default_factory=dict)
    first_at: dict[str, datetime] = field(default_factory=dict)
    retries: int = 0
    resumed: bool = False
    play_s: float = 0.0


@dataclass(frozen=True)
class Deliver:
    plan: Plan


@dataclass(frozen=True)
class Arm:
    broadcast_id: UUID
    at: datetime


@dataclass(frozen=True)
class Cancel:
    broadcast_id: UUID
    plans: list[Plan]


@dataclass(frozen=True)
class Known:
    code: str
    online: bool | None


Reaction = Deliver | Arm | Cancel | Known


def play_commands(
    b: Broadcast, d: Dispatch, classes: set[str], audio_url: Callable[[str, datetime], str]
) -> tuple[dict[str, bytes], str, float]:
    """The encoded `play`/`display` command per endpoint class, the content hash devices must report, and the
    duration of one playback."""
    render = next((r for r in reversed(b.renders) if r["revision"] == b.revision and r["channel"] == "speaker"), None)
    # Devices report the SHA-256 of the bytes they played; the URL addresses the asset by its store key.
    sha = (
        (render.get("content_sha256") or render["asset_hash"])
        if render
        else hashlib.sha256(b.text.encode()).hexdigest()
    )
    duration = float(render["duration_s"] or 0) if render else round(len(b.text) / CHARS_PER_SECOND, 1)
    common: dict[str, Any] = {
        "broadcast_id": str(b.id),
        "dispatch_id": str(d.id),
        "seq": 1,
        "priority": b.priority,
        "rank": Priority(b.priority).rank,
        "title": b.title,
        "text": b.announced_text,
        "audio_url": audio_url(render["asset_hash"], b.expires_at) if render else None,
        "sha256": sha,
        "duration_s": duration,
        "repeats": b.repeats,
        "volume": volume_for(b.priority),
        "expires_at": b.expires_at,
        "issued_at": d.created_on,
        "drill": b.drill,
    }
    commands = {cls: proto.encode(proto.play_command(cls=cls, **common)) for cls in classes}
    return commands, sha, duration
