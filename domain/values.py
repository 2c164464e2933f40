"""Value types shared by the aggregates: priority classes, broadcast and ack states, channels, kinds and roles; and
the checks every value crossing the boundary passes (text, URLs, ASCII-digit integers, aware times).

Stored events carry the plain string values of these enums, so that the log stays readable to outside tools. They are
`StrEnum`s, so a member equals (and hashes as) its stored string: events and read-model documents written before the
enums existed compare equal to them unchanged. A member used as a key of a dict that orjson writes must be turned into
its `str` first (orjson refuses enum keys). Reading a member off its class (`AckState.PLAYED`) costs about 85 ns on
Python 3.11: code that runs once per ack reads it once, into a module constant, a set, or a local.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import TypeVar

from keng.domain.errors import InvalidValue


class Priority(StrEnum):
    """The three classes of Circular 39/2020/TT-BTTTT (khẩn cấp, ưu tiên, thông thường)."""

    EMERGENCY = "emergency"
    PRIORITY = "priority"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        """Lower rank goes first: emergency 0, priority 1, normal 2."""
        return _PRIORITY_RANK[self]

    @property
    def label_vi(self) -> str:
        """The Vietnamese name shown to ward staff."""
        return _PRIORITY_VI[self]


_PRIORITY_RANK = {Priority.EMERGENCY: 0, Priority.PRIORITY: 1, Priority.NORMAL: 2}
_PRIORITY_VI = {Priority.EMERGENCY: "khẩn cấp", Priority.PRIORITY: "ưu tiên", Priority.NORMAL: "thông thường"}


class BroadcastState(StrEnum):
    """Where a broadcast is in its lifecycle (domain/broadcast.py). The first five are live; the last four are ends."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    DISPATCHING = "dispatching"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        """An end of the lifecycle: nothing changes a broadcast's state after it."""
        return self in _FINAL_BROADCAST_STATES


_FINAL_BROADCAST_STATES = frozenset(
    (BroadcastState.COMPLETED, BroadcastState.CANCELLED, BroadcastState.EXPIRED, BroadcastState.REJECTED)
)


class AckState(StrEnum):
    """What a device reports it did with a command, furthest last. Speakers: `received`, `playing`, `played`; boards:
    `received`, `displayed` (the board's `played`), `cleared` (taken off the board after a `clear` or at expiry);
    both: `failed`. The final states rank alike, so that none overrides another and an ack never moves an endpoint
    backwards (a board's `cleared` after `displayed` changes nothing)."""

    RECEIVED = "received"
    PLAYING = "playing"
    PLAYED = "played"
    FAILED = "failed"
    DISPLAYED = "displayed"
    CLEARED = "cleared"

    @property
    def rank(self) -> int:
        """How far along: received 1, playing 2, played, failed, displayed or cleared 3."""
        return ACK_RANK[self]

    @property
    def is_final(self) -> bool:
        """Played, displayed, cleared or failed: the endpoint is done with this command."""
        return self in FINAL_ACK_STATES


# Keyed by the plain strings: stored acks (plain strings) look up without parsing, and an exact str key compares faster
# than a member (this runs once per ack).
ACK_RANK: dict[str, int] = {s.value: rank for s, rank in zip(AckState, (1, 2, 3, 3, 3, 3), strict=True)}
FINAL_ACK_STATES: frozenset[str] = frozenset(
    (AckState.PLAYED.value, AckState.FAILED.value, AckState.DISPLAYED.value, AckState.CLEARED.value)
)
# What counts as `played` in summaries, read models and the console: a speaker played it, a board displayed it.
PLAYED_ACK_STATES: frozenset[str] = frozenset((AckState.PLAYED.value, AckState.DISPLAYED.value))


def ack_advances(state: str, current: str | None) -> bool:
    """True when an ack in `state` moves an endpoint whose furthest state is `current` (None: no ack yet) forward."""
    return current is None or ACK_RANK[state] > ACK_RANK[current]


class DispatchOutcome(StrEnum):
    """How a dispatch wave closed: every target final (complete), quiet with every acknowledging endpoint final
    (settled), its broadcast's expiry reached (expired), or its broadcast cancelled (cancelled)."""

    COMPLETE = "complete"
    SETTLED = "settled"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Channel(StrEnum):
    """Where a broadcast goes: loudspeakers, e-boards, web portals, the citizen app."""

    SPEAKER = "speaker"
    EBOARD = "eboard"
    PORTAL = "portal"
    APP = "app"


class EndpointKind(StrEnum):
    """Kinds of endpoint in the inventory."""

    IP_SPEAKER = "ip-speaker"
    FM_SPEAKER = "fm-speaker"
    EBOARD = "eboard"
    PORTAL = "portal"


class Condition(StrEnum):
    """Physical condition of an endpoint as last reported."""

    GOOD = "good"
    DEGRADED = "degraded"
    BROKEN = "broken"


class Role(StrEnum):
    """Staff roles."""

    DRAFTER = "drafter"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


class AreaLevel(StrEnum):
    """Levels of the area tree."""

    CITY = "city"
    DISTRICT = "district"
    WARD = "ward"
    GROUP = "group"


class SourceKind(StrEnum):
    """Who asked for a broadcast."""

    OPERATOR = "operator"
    CITY_SOURCE = "city-source"
    CAP = "cap"
    PROGRAMME = "programme"  # an occurrence of a recurring programme (domain/recurring.py)


E = TypeVar("E", bound=StrEnum)


def parse_enum(kind: type[E], value: str, what: str) -> E:
    """Parse a string into an enum member, or raise InvalidValue listing the allowed values."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidValue(f"unknown {what} {value!r}: expected one of {allowed}") from None


def parse_enums(kind: type[E], values: Iterable[str], what: str) -> list[E]:
    """Parse many values, keeping their first-seen order and dropping repeats."""
    out: list[E] = []
    for v in values:
        member = parse_enum(kind, v, what)
        if member not in out:
            out.append(member)
    return out


# Characters no text field may hold: C0 controls except tab and newline (a carriage return is turned into a newline
# first), DEL and the C1 controls, surrogates (never characters; the CLI's argv can carry them), and the Unicode
# noncharacters (U+FDD0..U+FDEF and the last two code points of every plane). Everything outside this set is a Char
# of XML 1.0, so text that passes can be written into any XML document.
REFUSED_CHARS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)
_NEWLINES = re.compile("\r\n?")
MAX_URL = 2048  # what browsers and proxies reliably carry (RFC 9110 recommends senders support at least 8000)


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def clean_text(value: str, what: str, *, max_len: int, required: bool = True) -> str:
    """NFC-normalise and strip a text field, carriage returns made newlines; refuse control characters other than tab
    and newline, and noncharacters (naming the first), and empty (when required) or over-long values."""
    text = _NEWLINES.sub("\n", unicodedata.normalize("NFC", value)).strip()
    bad = REFUSED_CHARS.search(text)
    if bad:
        raise InvalidValue(
            f"{what} holds {_describe(bad.group())} at position {bad.start()}: control characters other than tab and "
            "newline, and Unicode noncharacters, are not allowed"
        )
    if required and not text:
        raise InvalidValue(f"{what} must not be empty")
    if len(text) > max_len:
        raise InvalidValue(f"{what} is {len(text)} characters long; the limit is {max_len}")
    return text


def printable_text(value: str) -> str:
    """`value` with newlines normalised and every character `clean_text` refuses removed: what a public writer emits,
    so that text stored before the check (or by an older version) still makes valid XML 1.0 and plain JSON."""
    return REFUSED_CHARS.sub("", _NEWLINES.sub("\n", value))


def clean_url(value: str, what: str, *, max_len: int = MAX_URL) -> str:
    """An http(s) URL of at most `max_len` characters, with no whitespace or control characters."""
    if len(value) > max_len:
        raise InvalidValue(f"{what} is {len(value)} characters long; the limit is {max_len}")
    if not value.lower().startswith(("https://", "http://")):
        raise InvalidValue(f"{what} must be an http(s) URL")
    bad = REFUSED_CHARS.search(value) or re.search(r"\s", value)
    if bad:
        raise InvalidValue(f"{what} holds {_describe(bad.group())}, which a URL cannot carry")
    return value


def parse_digits(text: str, what: str, *, lo: int, hi: int) -> int:
    """A whole number written in ASCII digits, within `lo..hi`. `str.isdigit` accepts superscripts and other scripts'
    digits that `int` then refuses or reads, and `int` spends quadratic time on a long string: this reads neither."""
    if not text or not text.isascii() or not text.isdigit():
        raise InvalidValue(f"{what} must be a whole number written in the digits 0-9, got {text[:40]!r}")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(hi)) or not lo <= int(digits) <= hi:
        raise InvalidValue(f"{what} must be between {lo} and {hi}, got {text[:40]}")
    return int(digits)


def in_zone(value: datetime, tz: tzinfo) -> datetime:
    """`value` in zone `tz`; near the ends of the calendar, where the conversion would pass year 1 or 9999, in UTC
    (or as it is), so that no stored time can make a read fail."""
    for zone in (tz, UTC):
        try:
            return value.astimezone(zone)
        except (OverflowError, ValueError):
            continue
    return value


def require_aware(value: datetime, what: str) -> datetime:
    """Times in keng always carry a UTC offset; a naive time is ambiguous in an audit trail."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(f"{what} must carry a time zone offset (e.g. +07:00)")
    return value
