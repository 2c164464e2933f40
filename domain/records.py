"""The shapes of the records that cross module borders: acks, approvals, renders, render failures, render claims,
dispatch items, dispatch summaries.

They are TypedDicts, not classes, because they are what the events store (an ack and a summary are event attributes;
an approval, a render and a render failure are built from one event's attributes and shown as JSON by the API): the
stored event shapes stay as they were, and these types only describe them to the type checker. The string values of
`state` and `priority` are those of domain/values.py's enums.
"""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict


class Ack(TypedDict):
    """One endpoint's word on one command, as `Dispatch.AcksRecorded` stores it (domain/delivery.py checks it)."""

    endpoint: str
    state: str  # an AckState value
    at: str  # the device's time, ISO 8601 with its offset
    seq: NotRequired[int]
    sha256: NotRequired[str]
    reason: NotRequired[str]


class ItemAudio(TypedDict):
    """The audio file of a dispatch item: `key` addresses it in the asset store, `sha256` hashes its bytes (what a
    speaker that played it reports), `engine` made it (`espeak`, `coqui`, `alert-tone` ...)."""

    key: str
    sha256: str
    duration_s: float
    format: str
    engine: str


class ItemBoard(TypedDict):
    """One board variant of a dispatch item: the page rendered at one resolution. The image (PNG) and the layout
    (JSON) are stored under their own SHA-256, which a board that showed the image reports."""

    width: int
    height: int
    image_sha256: str
    layout_sha256: str


class DispatchItem(TypedDict):
    """The content of one item of a dispatch (its `seq`), fixed when it was first sent (`Dispatch.ItemSent`)."""

    seq: int
    text_sha256: str
    audio: ItemAudio | None  # None: the dispatch targets no speaker
    boards: list[ItemBoard]  # one per distinct resolution of its image boards; empty when none
    at: str  # ISO 8601: when it was fixed, before its first publish


class Approval(TypedDict):
    """An approval of one revision: by a person (`by`), or under a standing order (`rule`)."""

    by: str | None
    revision: int
    rule: str | None
    at: datetime
    ratified_by: NotRequired[str]
    retracted_by: NotRequired[str]


class Render(TypedDict):
    """Content rendered for a channel: `asset_hash` addresses the asset, `content_sha256` hashes its bytes."""

    channel: str
    asset_hash: str
    content_sha256: str | None
    duration_s: float | None
    engine: str
    revision: int


class RenderClaim(TypedDict):
    """A render worker's claim on a revision's speaker audio, until its lease ends (domain/broadcast.py)."""

    worker: str
    revision: int
    until: datetime


class RenderFailure(TypedDict):
    """An engine that failed to render a revision for a channel."""

    channel: str
    engine: str
    reason: str
    revision: int


class LatencySummary(TypedDict):
    """Milliseconds from the reference time to the first ack, over the endpoints that acknowledged."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    count: int


class DispatchSummary(TypedDict):
    """How a dispatch wave ended (`Dispatch.Closed`, and `Broadcast.Completed` for the last wave): what each target
    did, and how fast commands arrived. `outcome` is complete, settled, expired or cancelled."""

    outcome: str
    targeted: int
    online: int
    received: int
    playing: int
    played: int
    failed: int
    unreachable: int
    retries: int
    latency_ms: dict[str, LatencySummary]  # by priority


class BudgetVerdict(TypedDict):
    """A dispatch judged against its priority's latency budget (`Dispatch.Judged`): the 99th percentile of the time
    from its reference (approval, or its slot) to each online endpoint's first ack, where an online endpoint that never
    acknowledged counts as late. `late` of `counted` endpoints were later than the budget."""

    priority: str
    budget_ms: int
    p99_ms: float | None  # None: nothing to judge, or the 99th percentile is an endpoint that never acknowledged
    verdict: str  # met | breached
    late: int
    counted: int
    late_share: float
