"""Plain-dict views of aggregates and events for the CLI (and the API): JSON-ready, stable key names."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any
from uuid import UUID

from keng.domain.broadcast import Broadcast
from keng.domain.endpoint import Endpoint
from keng.domain.feedback import Feedback
from keng.domain.staff import Staff
from keng.domain.values import in_zone

_EVENT_BASE = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def _iso(value: datetime, tz: tzinfo) -> str:
    return in_zone(value, tz).isoformat(timespec="seconds")


def jsonable(value: Any, tz: tzinfo) -> Any:
    """Convert datetimes, UUIDs and containers into JSON-friendly values."""
    if isinstance(value, datetime):
        return _iso(value, tz)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v, tz) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, tz) for v in value]
    return value


def broadcast_view(b: Broadcast, tz: tzinfo) -> dict[str, Any]:
    """Everything an operator or auditor needs to know about one broadcast."""
    view: dict[str, Any] = jsonable(
        {
            "id": b.id,
            "title": b.title,
            "text": b.text,
            "audio": b.audio,
            "priority": b.priority,
            "state": b.state,
            "revision": b.revision,
            "approved": b.is_approved,
            "awaiting_ratification": b.awaiting_ratification,
            "targets": {"areas": b.target_areas, "endpoints": b.target_endpoints},
            "scope": b.scope,
            "channels": b.channels,
            "schedule_at": b.schedule_at,
            "repeats": b.repeats,
            "expires_at": b.expires_at,
            "drill": b.drill,
            "source": {"kind": b.source_kind, "ref": b.source_ref},
            "drafted_by": b.drafted_by,
            "authors": b.authors,
            "approvals": b.approvals,
            "dispatches": b.dispatches,
            "renders": b.renders,
            "end_reason": b.end_reason,
            "created_on": b.created_on,
            "modified_on": b.modified_on,
            "version": b.version,
        },
        tz,
    )
    return view


def staff_view(s: Staff) -> dict[str, Any]:
    """A staff member's public record (never credentials)."""
    return {"handle": s.handle, "name": s.name, "roles": s.roles, "wards": s.wards, "trainings": s.trainings}


def endpoint_view(e: Endpoint) -> dict[str, Any]:
    """An endpoint's inventory record and last known state."""
    return {
        "code": e.code,
        "kind": e.kind,
        "ward": e.ward,
        "group": e.group,
        "technology": e.technology,
        "installed_on": e.installed_on,
        "condition": e.condition,
        "online": e.online,
        "lat": e.lat,
        "lon": e.lon,
        "decommissioned": e.decommissioned,
        "generated": e.generated,
        "fault": e.fault,
        "live_since": e.live_since,
    }


def event_view(position: int, event: Any, tz: tzinfo) -> dict[str, Any]:
    """One entry of the global log: position, time, aggregate, event name, actor and the event's own data."""
    qualname = type(event).__qualname__
    aggregate, _, name = qualname.rpartition(".")
    data = {k: v for k, v in vars(event).items() if k not in _EVENT_BASE}
    return {
        "position": position,
        "time": _iso(event.timestamp, tz),
        "aggregate": aggregate,
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "event": name,
        "actor": data.get("by"),
        "data": jsonable(data, tz),
    }


def feedback_view(f: Feedback, tz: tzinfo, *, overdue: bool) -> dict[str, Any]:
    """One feedback item for staff (the photo by its hash; the contact is read separately, never listed)."""
    view: dict[str, Any] = jsonable(
        {
            "id": f.id,
            "integration": f.integration,
            "message_id": f.message_id,
            "category": f.category,
            "text": f.text,
            "ward": f.ward,
            "group": f.group,
            "lat": f.lat,
            "lon": f.lon,
            "photo_sha256": f.photo_sha256,
            "has_contact": f.has_contact,
            "state": f.state,
            "due_at": f.due_at,
            "overdue": overdue,
            "replies": [{"text": r["text"], "by": r["by"], "at": r["at"]} for r in f.replies],
            "close_reason": f.close_reason,
            "created_on": f.created_on,
            "modified_on": f.modified_on,
        },
        tz,
    )
    return view
