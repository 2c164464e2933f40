"""The component schemas of the OpenAPI document: what the handlers accept and, field by field, what they answer.

Response objects list every field the views write (`runtime/views.py`) and allow no others, so that a field added to
a view without its description fails the schemathesis run (tests/integration/test_openapi_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

from domain.broadcast import FINAL_STATES, LIVE_STATES
from domain.content import MAX_REPEATS, MAX_SCHEDULED, MAX_TARGETS, MAX_TEXT, MAX_TITLE
from domain.values import MAX_URL, Channel, Priority

PRIORITIES = [p.value for p in Priority]
CHANNELS = [c.value for c in Channel]
STATES = list(LIVE_STATES + FINAL_STATES)
MAX_ITEMS = 1000  # adapters/city_source.py refuses longer lists

_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_TIME = {"type": "string", "format": "date-time"}
_UUID = {"type": "string", "format": "uuid"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def strings(item: dict[str, Any] | None = None) -> dict[str, Any]:
    """An array of strings (or of the given item schema)."""
    return {"type": "array", "items": item or _STR}


def record(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed object: every property required except `optional`, and no others allowed."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def _broadcast_input(*, required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
            "priority": {"enum": PRIORITIES},
            "targets": {
                "type": "object",
                "additionalProperties": False,
                "description": "area codes (district, ward or residential group) and/or endpoint codes",
                "properties": {
                    "areas": {**strings(), "maxItems": MAX_TARGETS},
                    "endpoints": {**strings(), "maxItems": MAX_TARGETS},
                },
            },
            "channels": {**strings({"enum": CHANNELS}), "maxItems": MAX_ITEMS, "description": "default: all"},
            "schedule": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "at": {**strings(_TIME), "maxItems": MAX_SCHEDULED, "description": "each before expires_at"},
                    "repeats": {"type": "integer", "minimum": 1, "maximum": MAX_REPEATS},
                },
            },
            "expires_at": {
                **_TIME,
                "description": "default by priority; in the future, at most KENG_MAX_EXPIRY_DAYS (default 30) days on",
            },
            "audio_url": {"type": "string", "maxLength": MAX_URL, "pattern": "^https?://"},
            "drill": _BOOL,
        },
    }


_APPROVAL = record(
    {"by": nullable(_STR), "revision": _INT, "rule": nullable(_STR), "at": _TIME, "ratified_by": _STR},
    optional=("ratified_by",),
)
_RENDER = record(
    {
        "channel": _STR,
        "asset_hash": _STR,
        "content_sha256": nullable(_STR),
        "duration_s": nullable({"type": "number"}),
        "engine": _STR,
        "revision": _INT,
    }
)
BROADCAST_FIELDS: dict[str, Any] = {
    "id": _UUID,
    "title": _STR,
    "text": _STR,
    "audio": nullable(_STR),
    "priority": {"enum": PRIORITIES},
    "state": {"enum": STATES},
    "revision": _INT,
    "approved": _BOOL,
    "awaiting_ratification": _BOOL,
    "targets": record({"areas": strings(), "endpoints": strings()}),
    "scope": strings(),
    "channels": strings({"enum": CHANNELS}),
    "schedule_at": strings(_TIME),
    "repeats": _INT,
    "expires_at": _TIME,
    "drill": _BOOL,
    "source": record({"kind": _STR, "ref": nullable(_STR)}),
    "drafted_by": _STR,
    "authors": strings(),
    "approvals": {"type": "array", "items": _APPROVAL},
    "dispatches": strings(_UUID),
    "renders": {"type": "array", "items": _RENDER},
    "end_reason": nullable(_STR),
    "created_on": _TIME,
    "modified_on": _TIME,
    "version": _INT,
}
_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": _STR,
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": _STR,
        "errors": {
            "type": "array",
            "description": "every violation, by element path (invalid CAP)",
            "items": record({"path": _STR, "message": _STR}),
        },
    },
}

SCHEMAS: dict[str, Any] = {
    "Problem": _PROBLEM,
    "BroadcastInput": _broadcast_input(required=["title", "text", "priority", "targets"]),
    "BroadcastChanges": _broadcast_input(required=[]),
    "Broadcast": record(BROADCAST_FIELDS),
    "UnratifiedBroadcast": record(
        {**BROADCAST_FIELDS, "ratify_by": nullable(_TIME), "ratification_overdue": _BOOL},
    ),
    "Endpoint": record(
        {
            "code": _STR,
            "kind": _STR,
            "ward": _STR,
            "group": nullable(_STR),
            "technology": _STR,
            "installed_on": nullable(_STR),
            "condition": _STR,
            "online": nullable(_BOOL),
            "lat": nullable({"type": "number"}),
            "lon": nullable({"type": "number"}),
            "decommissioned": _BOOL,
            "generated": _BOOL,
        }
    ),
    "Area": record(
        {
            "code": _STR,
            "name": _STR,
            "level": _STR,
            "parent": nullable(_STR),
            "lat": nullable({"type": "number"}),
            "lon": nullable({"type": "number"}),
        }
    ),
    "Staff": record(
        {
            "handle": _STR,
            "name": _STR,
            "roles": strings(),
            "wards": strings(),
            "trainings": {"type": "array", "items": record({"course": _STR, "completed_on": _STR})},
        }
    ),
    "InboundResult": record({"broadcast_id": _UUID, "state": {"enum": STATES}, "message_id": _STR}),
    "CapOutcome": record(
        {
            "action": {**_STR, "description": "drafted, submitted, auto-approved, revised, cancelled, recorded, ..."},
            "key": _STR,
            "status": _STR,
            "msg_type": _STR,
            "broadcast_ids": strings(_UUID),
            "stop_required": _BOOL,
            "reason": _STR,
            "document_sha256": _STR,
            "languages": strings(),
        }
    ),
}
