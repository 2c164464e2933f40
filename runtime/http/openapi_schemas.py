"""The component schemas of the OpenAPI document: what the handlers accept and, field by field, what they answer.

Request bodies are checked against these very objects (adapters/payload.py compiles them), so the document and the
checks cannot drift: `BroadcastInput` and `BroadcastChanges` come from adapters/city_source.py, `Reason` is checked
by runtime/http/routes_operator.py.

Response objects list every field the views write (`runtime/views.py`) and allow no others, so that a field added to
a view without its description fails the schemathesis run (tests/integration/test_openapi_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

from keng.adapters.city_source import BROADCAST_CHANGES, BROADCAST_INPUT
from keng.domain.broadcast import FINAL_STATES, LIVE_STATES
from keng.domain.endpoint import MAX_COST_VND
from keng.domain.values import MAX_URL, Channel, Priority

PRIORITIES = [p.value for p in Priority]
CHANNELS = [c.value for c in Channel]
STATES = list(LIVE_STATES + FINAL_STATES)
MAX_REASON = 1000
_DAY = {"type": "string", "format": "date", "description": "the day it happened, YYYY-MM-DD (default: today)"}
_COST = {"type": "integer", "minimum": 0, "maximum": MAX_COST_VND, "description": "what it cost, in whole đồng (VND)"}


def _equipment(detail: str | None, schema: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    """The body of one equipment lifecycle request: `on`, `cost_vnd`, and its own detail field (required if given)."""
    properties = {**({detail: schema} if detail and schema else {}), **more, "on": _DAY, "cost_vnd": _COST}
    required = [detail] if detail and schema and schema.get("minLength") else []
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


# The bodies of POST /api/v1/endpoints/{code}/{action} (services.inventory.record_equipment_event), by action.
EQUIPMENT_INPUTS = {
    "EquipmentFault": _equipment(
        "fault",
        {"type": "string", "minLength": 1, "maxLength": 500},
        severity={"enum": ["degraded", "broken"], "description": "default broken"},
    ),
    "EquipmentRepair": _equipment("note", {"type": "string", "maxLength": 500}),
    "EquipmentConversion": _equipment("technology", {"type": "string", "minLength": 1, "maxLength": 60}),
    "EquipmentDecommission": _equipment("reason", {"type": "string", "minLength": 1, "maxLength": 500}),
    "PortalLive": _equipment("url", {"type": "string", "maxLength": MAX_URL}),
}

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


_APPROVAL = record(
    {
        "by": nullable(_STR),
        "revision": _INT,
        "rule": nullable(_STR),
        "at": _TIME,
        "ratified_by": _STR,
        "retracted_by": _STR,
    },
    optional=("ratified_by", "retracted_by"),
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
    "schedule_at": {**strings(_TIME), "description": "each time is a dispatch wave of its own (docs/dispatch.md)"},
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
            "description": "every violation: by element path (invalid CAP), by JSON Pointer (a refused JSON body)",
            "items": record({"path": _STR, "message": _STR}),
        },
        "successors": {
            **strings(),
            "description": "area-ended: the codes in force now that cover the ended unit's area (use these)",
        },
    },
}

SCHEMAS: dict[str, Any] = {
    "Problem": _PROBLEM,
    "BroadcastInput": BROADCAST_INPUT,
    "BroadcastChanges": BROADCAST_CHANGES,
    "Reason": {
        "type": "object",
        "additionalProperties": False,
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON}},
    },
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
            "fault": nullable(_STR),
            "live_since": nullable(_STR),
        }
    ),
    **EQUIPMENT_INPUTS,
    "Area": record(
        {
            "code": _STR,
            "name": _STR,
            "level": _STR,
            "parent": nullable(_STR),
            "lat": nullable({"type": "number"}),
            "lon": nullable({"type": "number"}),
            "valid_from": nullable({**_STR, "format": "date", "description": "first day (null: since always)"}),
            "valid_to": nullable({**_STR, "format": "date", "description": "the day it ended (null: in force)"}),
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
            "warnings": strings(),
            "notes": {
                **strings(),
                "description": "how area codes were read as of the alert's `sent`: a recoded or divided unit's "
                "code and the codes in force now that it targets",
            },
        },
        optional=("warnings", "notes"),
    ),
}
