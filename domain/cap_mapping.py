"""Mapping a valid CAP 1.2 alert onto keng: what to do (new, revise, cancel, record), with which priority class,
text, targets, expiry and drill flag. Pure: the store is consulted by `adapters.cap.ingest`, which carries out the plan.

The table is documented in docs/cap.md; keep the two together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from keng.domain.cap import CapAlert, Certainty, Info, MsgType, Resource, Scope, Severity, Status, Urgency
from keng.domain.cap_places import (
    CapRefused,
    Gazetteer,
    Jurisdiction,
    NotLocatable,
    Resolution,
    resolve_area,
)
from keng.domain.values import Priority

_CERTAIN = (Certainty.OBSERVED, Certainty.LIKELY)
_SOON = (Urgency.IMMEDIATE, Urgency.EXPECTED)


class NoVietnameseInfo(CapRefused):
    """keng speaks Vietnamese: an alert to be broadcast needs an info block in `vi` or `vi-VN`."""

    rule = "cap-needs-vietnamese-info"


class Action(StrEnum):
    """What an accepted CAP message does to keng's broadcasts."""

    NEW = "new"
    REVISE = "revise"
    CANCEL = "cancel"
    RECORD = "record"


@dataclass(frozen=True)
class CapPlan:
    """The mapping of one alert. For NEW and REVISE the content fields are set; for CANCEL and REVISE `references`
    holds the keys (`sender,identifier,sent`) of the messages to act on; RECORD only records (see `reason`)."""

    action: Action
    key: str
    reason: str
    submit: bool = False
    drill: bool = False
    references: tuple[str, ...] = ()
    priority: Priority | None = None
    title: str | None = None
    text: str | None = None
    target_areas: tuple[str, ...] = ()
    target_endpoints: tuple[str, ...] = ()
    expires_at: datetime | None = None
    schedule_at: tuple[datetime, ...] = ()
    audio: Resource | None = None
    languages: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """`path: note` for each VN-DVHC code read as other codes today (recoded, or divided: the parts it targets)."""


def priority_for(urgency: Urgency, severity: Severity, certainty: Certainty) -> Priority:
    """The priority class of one info block (docs/cap.md has the table):
    emergency: Extreme and Immediate/Expected, or Severe and Immediate, each Observed/Likely;
    priority: otherwise Extreme or Severe (not Past, not Unlikely), or Moderate, Immediate/Expected, Observed/Likely;
    normal: everything else (Minor, Unknown, Past, Unlikely, ...)."""
    if urgency is Urgency.PAST or certainty is Certainty.UNLIKELY:
        return Priority.NORMAL
    certain = certainty in _CERTAIN
    if certain and (
        (severity is Severity.EXTREME and urgency in _SOON)
        or (severity is Severity.SEVERE and urgency is Urgency.IMMEDIATE)
    ):
        return Priority.EMERGENCY
    if severity in (Severity.EXTREME, Severity.SEVERE):
        return Priority.PRIORITY
    if severity is Severity.MODERATE and urgency in _SOON and certain:
        return Priority.PRIORITY
    return Priority.NORMAL


def _record(alert: CapAlert, reason: str) -> CapPlan:
    return CapPlan(Action.RECORD, alert.key, reason, languages=tuple(i.language for i in alert.infos))


def plan_cap(alert: CapAlert, *, gazetteer: Gazetteer, jurisdiction: Sequence[str], now: datetime) -> CapPlan:
    """Map `alert` for a sender authorised for `jurisdiction` (area codes in force now), or raise a CapRefused
    subclass (AreaEnded for a code whose unit had ended when the alert was sent) whose message names every problem
    by element path. Area codes are read as of the alert's `sent` (domain/cap_places.py)."""
    if alert.status in (Status.TEST, Status.SYSTEM):
        return _record(alert, f"status {alert.status}: recorded and acknowledged, never played")
    if alert.msg_type in (MsgType.ACK, MsgType.ERROR):
        return _record(alert, f"msgType {alert.msg_type}: recorded only")
    if alert.scope is not Scope.PUBLIC:
        return _record(alert, f"scope {alert.scope}: not for public broadcast; recorded only")
    if alert.status is Status.DRAFT and alert.msg_type is not MsgType.ALERT:
        return _record(alert, f"a Draft {alert.msg_type} changes nothing; recorded only")
    drill = alert.status is Status.EXERCISE
    refs = tuple(r.key for r in alert.references)
    if alert.msg_type is MsgType.CANCEL:
        reason = alert.note or f"cancelled by CAP message {alert.key}"
        return CapPlan(Action.CANCEL, alert.key, reason, drill=drill, references=refs)
    plan = _content(alert, Jurisdiction(frozenset(jurisdiction), gazetteer), now, drill)
    if alert.msg_type is MsgType.UPDATE:
        return replace(plan, action=Action.REVISE, reason=f"updated by CAP message {alert.key}", references=refs)
    return replace(plan, submit=alert.status is not Status.DRAFT)


def _content(alert: CapAlert, juris: Jurisdiction, now: datetime, drill: bool) -> CapPlan:
    spoken = [i for i in alert.infos if i.is_vietnamese]
    if not spoken:
        found = ", ".join(i.language for i in alert.infos) or "no info block"
        raise NoVietnameseInfo(f"alert/info: no info in Vietnamese (language vi or vi-VN) to speak; found {found}")
    out = Resolution()
    for i, info in enumerate(alert.infos, start=1):
        if not info.areas:
            out.refuse(NotLocatable, f"alert/info[{i}]: has no area; keng broadcasts only to named areas")
        for j, area in enumerate(info.areas, start=1):
            resolve_area(area, f"alert/info[{i}]/area[{j}]", juris, out, said_at=alert.sent)
    out.raise_problems()
    first = spoken[0]
    expiries = [i.expires for i in spoken if i.expires is not None]
    return CapPlan(
        action=Action.NEW,
        key=alert.key,
        reason=f"CAP {alert.status} alert",
        drill=drill,
        priority=min((priority_for(i.urgency, i.severity, i.certainty) for i in alert.infos), key=lambda p: p.rank),
        title=first.headline or first.event,
        text="\n\n".join(_spoken_text(i) for i in spoken),
        target_areas=tuple(sorted(out.areas)),
        target_endpoints=tuple(sorted(out.endpoints)),
        expires_at=min(expiries) if expiries else None,
        schedule_at=tuple(i.effective for i in spoken[:1] if i.effective is not None and i.effective > now),
        audio=next((r for i in spoken for r in i.resources if r.mime_type.lower().startswith("audio/")), None),
        languages=tuple(i.language for i in alert.infos),
        notes=tuple(out.notes),
    )


def _spoken_text(info: Info) -> str:
    parts = [p for p in (info.description, info.instruction) if p]
    return "\n".join(parts) if parts else info.headline or info.event
