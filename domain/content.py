"""What a broadcast says and to whom: validated once, carried whole by Drafted and Revised events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from keng.domain.errors import InvalidValue
from keng.domain.values import Channel, Priority, clean_text, clean_url, parse_enum, parse_enums, require_aware

MAX_TITLE = 200
MAX_TEXT = 5000
MAX_REPEATS = 10
MAX_SCHEDULED = 48  # scheduled times of one broadcast: two a day for its longest default lifetime, with room to spare
MAX_TARGETS = 10_000  # target areas, and target endpoints, of one broadcast: a city's fleet named one by one
DEFAULT_LIFETIME = {
    Priority.EMERGENCY: timedelta(hours=6),
    Priority.PRIORITY: timedelta(hours=24),
    Priority.NORMAL: timedelta(days=3),
}
# J-ALERT's practice: an emergency message is played three times; routine items once.
DEFAULT_REPEATS = {Priority.EMERGENCY: 3, Priority.PRIORITY: 1, Priority.NORMAL: 1}


@dataclass(frozen=True)
class ContentLimits:
    """Bounds that depend on the installation: how long after it is accepted a broadcast may stay in force (its
    expiry, and so every scheduled time, falls within this horizon). Configured by `KENG_MAX_EXPIRY_DAYS`."""

    max_lifetime: timedelta = timedelta(days=30)


DEFAULT_LIMITS = ContentLimits()


@dataclass(frozen=True)
class Content:
    """The revisable part of a broadcast. `scope` is the ward codes (or the district code) its targets cover."""

    title: str
    text: str
    audio: str | None
    priority: str
    target_areas: list[str]
    target_endpoints: list[str]
    scope: list[str]
    channels: list[str]
    schedule_at: list[datetime]
    repeats: int
    expires_at: datetime
    drill: bool

    def as_event_kwargs(self) -> dict[str, Any]:
        """The content as keyword arguments of a Drafted or Revised event."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def build_content(
    *,
    title: str,
    text: str,
    priority: str,
    target_areas: Sequence[str],
    target_endpoints: Sequence[str] = (),
    scope: Sequence[str],
    channels: Sequence[str] | None = None,
    schedule_at: Sequence[datetime] = (),
    repeats: int | None = None,
    expires_at: datetime | None = None,
    drill: bool = False,
    audio: str | None = None,
    now: datetime,
    limits: ContentLimits = DEFAULT_LIMITS,
) -> Content:
    """Validate and normalise broadcast content (NFC text, known enums, times within the horizon of `limits`, bounded
    counts) as of `now`."""
    prio = parse_enum(Priority, priority, "priority class")
    chans = [c.value for c in parse_enums(Channel, channels or [c.value for c in Channel], "channel")]
    if not chans:
        raise InvalidValue("a broadcast needs at least one channel")
    areas = sorted(set(target_areas))
    endpoints = sorted(set(target_endpoints))
    if not areas and not endpoints:
        raise InvalidValue("a broadcast needs at least one target area or endpoint")
    for what, items in (("target areas", areas), ("target endpoints", endpoints)):
        if len(items) > MAX_TARGETS:
            raise InvalidValue(f"{what}: {len(items)} given; the limit is {MAX_TARGETS}")
    if not scope:
        raise InvalidValue("the targets' area scope must not be empty")
    expires = require_aware(expires_at, "expiry") if expires_at else now + DEFAULT_LIFETIME[prio]
    if expires <= now:
        raise InvalidValue(f"expiry {expires.isoformat()} is not in the future")
    if expires - now > limits.max_lifetime:
        raise InvalidValue(
            f"expiry {expires.isoformat()} is more than {limits.max_lifetime.days} days ahead; the limit is "
            f"{(now + limits.max_lifetime).isoformat(timespec='seconds')}"
        )
    if len(schedule_at) > MAX_SCHEDULED:
        raise InvalidValue(f"scheduled times: {len(schedule_at)} given; the limit is {MAX_SCHEDULED}")
    times = sorted(require_aware(t, "scheduled time") for t in schedule_at)
    for t in times:
        if t < now - timedelta(minutes=1):
            raise InvalidValue(f"scheduled time {t.isoformat()} is in the past")
        if t >= expires:
            raise InvalidValue(f"scheduled time {t.isoformat()} is not before the expiry {expires.isoformat()}")
    reps = DEFAULT_REPEATS[prio] if repeats is None else repeats
    if not 1 <= reps <= MAX_REPEATS:
        raise InvalidValue(f"repeats must be between 1 and {MAX_REPEATS}, not {reps}")
    return Content(
        title=clean_text(title, "title", max_len=MAX_TITLE),
        text=clean_text(text, "text", max_len=MAX_TEXT),
        audio=_audio(audio),
        priority=prio.value,
        target_areas=areas,
        target_endpoints=endpoints,
        scope=sorted(set(scope)),
        channels=chans,
        schedule_at=times,
        repeats=reps,
        expires_at=expires,
        drill=drill,
    )


def _audio(audio: str | None) -> str | None:
    """An audio reference: a stored asset (`sha256:...`, or a key) or an http(s) URL, bounded either way."""
    if not audio:
        return None
    if audio.lower().startswith(("https://", "http://")):
        return clean_url(audio, "audio URL")
    return clean_text(audio, "audio reference", max_len=200)
