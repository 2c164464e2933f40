"""Value types shared by the aggregates: priority classes, channels, kinds and roles.

Stored events carry the plain string values of these enums, so that the log stays readable to outside tools.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from domain.errors import InvalidValue


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


def clean_text(value: str, what: str, *, max_len: int, required: bool = True) -> str:
    """NFC-normalise and strip a text field; refuse empty (when required) or over-long values."""
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise InvalidValue(f"{what} must not be empty")
    if len(text) > max_len:
        raise InvalidValue(f"{what} is {len(text)} characters long; the limit is {max_len}")
    return text


def require_aware(value: datetime, what: str) -> datetime:
    """Times in keng always carry a UTC offset; a naive time is ambiguous in an audit trail."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(f"{what} must carry a time zone offset (e.g. +07:00)")
    return value
