"""What the dispatcher's loop delivers: targets, plans, the reactions of the log follower, and the play commands.

Split from runtime/dispatch/model.py (which folds the log and writes): these are plain values built there and consumed
by the loop (runtime/dispatch/dispatcher.py, runtime/dispatch/live.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from keng.adapters.mqtt import protocol as proto
from keng.domain.broadcast import Broadcast
from keng.domain.dispatch import Dispatch
from keng.domain.programme import volume_for
from keng.domain.records import DispatchItem
from keng.domain.values import Priority


@dataclass(frozen=True)
class Target:
    """One commandable endpoint of a dispatch; `display` is a board's resolution (None: a speaker, or a board that
    shows text only)."""

    code: str
    cls: str
    ward: str
    cellular: bool
    display: tuple[int, int] | None = None

    @property
    def key(self) -> str:
        """Which of the plan's commands goes to this endpoint's own topic: a board gets only its own page."""
        if self.cls != proto.BOARD:
            return self.cls
        return f"{proto.BOARD}@{self.display[0]}x{self.display[1]}" if self.display else f"{proto.BOARD}@text"


@dataclass
class Plan:
    """What the loop needs to deliver one dispatch (built from the log; `states` and `first_at` as recorded).

    `commands` holds the encoded command of the current item per key: `speaker`, `board` (group topics: every board
    variant) and `board@<w>x<h>` / `board@text` (one endpoint's own topic, Target.key). `accepted` holds, per item
    `seq`, the hashes a `played` or `displayed` ack may report."""

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
    seq: int = 1
    accepted: dict[int, frozenset[str]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    first_at: dict[str, datetime] = field(default_factory=dict)
    retries: int = 0
    resumed: bool = False
    play_s: float = 0.0
    partition: str = ""  # the broadcast's partition key (runtime/dispatch/partitions.py): whose work it is

    @property
    def classes(self) -> set[str]:
        """The endpoint classes (speaker, board) this dispatch commands."""
        return {key.partition("@")[0] for key in self.commands}


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
    cls: str = ""  # speaker or board: where a notice to it goes


Reaction = Deliver | Arm | Cancel | Known
URL = Callable[[str, datetime], str]


def play_commands(
    b: Broadcast, d: Dispatch, item: DispatchItem, targets: Iterable[Target], audio_url: URL, board_url: URL
) -> tuple[dict[str, bytes], float]:
    """The encoded `play`/`display` commands of a dispatch item (Plan.commands), and the duration of one playback.
    Everything comes from the recorded item (its files are addressed by their hashes), never from the broadcast's
    latest render: a resend or a resumed dispatch sends the same bytes as the first publish, links aside."""
    common: dict[str, Any] = {
        "broadcast_id": str(b.id),
        "dispatch_id": str(d.id),
        "seq": item["seq"],
        "priority": b.priority,
        "rank": Priority(b.priority).rank,
        "title": b.title,
        "text": b.announced_text,
        "text_sha256": item["text_sha256"],
        "repeats": b.repeats,
        "volume": volume_for(b.priority),
        "expires_at": b.expires_at,
        "issued_at": d.created_on,
        "drill": b.drill,
    }
    keys = {t.key for t in targets}
    commands: dict[str, bytes] = {}
    audio = item["audio"]
    duration = float(audio["duration_s"]) if audio else 0.0
    if proto.SPEAKER in keys:
        if audio is None:
            raise ValueError(f"item {item['seq']} of dispatch {d.id} has no audio for its speakers")
        ref = proto.audio_ref(
            url=audio_url(audio["key"], b.expires_at),
            sha256=audio["sha256"],
            duration_s=duration,
            fmt=audio["format"],
        )
        commands[proto.SPEAKER] = proto.encode(proto.play_command(cls=proto.SPEAKER, audio=ref, **common))
    board_keys = sorted(k for k in keys if k.startswith(proto.BOARD))
    if board_keys:
        variants = {
            f"{proto.BOARD}@{v['width']}x{v['height']}": proto.board_variant(
                width=v["width"],
                height=v["height"],
                image_url=board_url(f"{v['image_sha256']}.png", b.expires_at),
                image_sha256=v["image_sha256"],
                layout_url=board_url(f"{v['layout_sha256']}.json", b.expires_at),
                layout_sha256=v["layout_sha256"],
            )
            for v in item["boards"]
        }
        group = [variants[k] for k in sorted(variants)]
        commands[proto.BOARD] = proto.encode(proto.play_command(cls=proto.BOARD, variants=group, **common))
        for key in board_keys:
            own = [variants[key]] if key in variants else []
            commands[key] = proto.encode(proto.play_command(cls=proto.BOARD, variants=own, **common))
    return commands, duration
