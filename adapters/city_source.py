"""The city source system's webhook payload (Hệ thống thông tin nguồn), also the operator API's broadcast body: its
JSON Schema (published as `BroadcastInput` and `BroadcastChanges` in the OpenAPI document) and the mapping of a
payload that passed it to the keyword arguments of drafting (or revising) a broadcast.

    {"title": "...", "text": "...", "priority": "emergency" | "priority" | "normal",
     "targets": {"areas": ["00595", "00595-T01", "021"], "endpoints": ["00595-T01-IP1"]},
     "channels": ["speaker", "eboard", "portal", "app"],          (optional; default all)
     "schedule": {"at": ["2026-11-27T17:00:00+07:00"], "repeats": 2},   (optional)
     "expires_at": "2026-11-28T00:00:00+07:00",                  (optional; default by priority)
     "audio_url": "https://...", "drill": false}                  (optional)

Area codes are ward codes (5 digits), residential-group codes, or the district code (3 digits). The schema checks the
shape; the domain checks the meaning (areas that exist, times in order, text without control characters).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keng.adapters.payload import JsonSchemaCheck, PayloadError, field_name
from keng.domain.content import MAX_REPEATS, MAX_SCHEDULED, MAX_TARGETS, MAX_TEXT, MAX_TITLE
from keng.domain.errors import InvalidValue
from keng.domain.values import MAX_URL, Channel, Priority

MAX_ITEMS = 1000  # longest list of channels
_TIME = {"type": "string", "format": "date-time"}


def _codes() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "maxItems": MAX_TARGETS}


def _broadcast_input(*, required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
            "priority": {"enum": [p.value for p in Priority]},
            "targets": {
                "type": "object",
                "additionalProperties": False,
                "description": "area codes (district, ward or residential group) and/or endpoint codes",
                "properties": {"areas": _codes(), "endpoints": _codes()},
            },
            "channels": {
                "type": "array",
                "items": {"enum": [c.value for c in Channel]},
                "maxItems": MAX_ITEMS,
                "description": "default: all",
            },
            "schedule": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "at": {
                        "type": "array",
                        "items": _TIME,
                        "maxItems": MAX_SCHEDULED,
                        "description": "each before expires_at",
                    },
                    "repeats": {"type": "integer", "minimum": 1, "maximum": MAX_REPEATS},
                },
            },
            "expires_at": {
                **_TIME,
                "description": "default by priority; in the future, at most KENG_MAX_EXPIRY_DAYS (default 30) days on",
            },
            "audio_url": {"type": "string", "maxLength": MAX_URL, "pattern": "^https?://"},
            "drill": {"type": "boolean"},
        },
    }


BROADCAST_INPUT = _broadcast_input(required=["title", "text", "priority", "targets"])
BROADCAST_CHANGES = _broadcast_input(required=[])
_CHECKS = {False: JsonSchemaCheck(BROADCAST_INPUT), True: JsonSchemaCheck(BROADCAST_CHANGES)}


def _time(value: str, path: list[str | int]) -> datetime:
    # The schema passed it as RFC 3339, which allows a time Python cannot hold: a leap second. Well-formed, so not a
    # payload error: a value out of range, as the domain says of other times it refuses.
    try:
        return datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"; Python reads only "T" and "Z"
    except ValueError:
        raise InvalidValue(f"{field_name(path)} {value[:40]!r} is not a time keng can hold") from None


def parse_city_message(body: bytes, *, partial: bool = False) -> dict[str, Any]:
    """Parse and shape-check a payload into keyword arguments for drafting a broadcast (with `partial`, for a
    revision: every field optional, and only the fields given are returned)."""
    data: dict[str, Any] = _CHECKS[partial].load(body)
    targets, schedule = data.get("targets", {}), data.get("schedule", {})
    repeats = schedule.get("repeats")
    shaped = {
        "title": data.get("title"),
        "text": data.get("text"),
        "priority": data.get("priority"),
        "target_areas": list(targets.get("areas", [])),
        "target_endpoints": list(targets.get("endpoints", [])),
        "channels": list(data["channels"]) if "channels" in data else None,
        "schedule_at": [_time(t, ["schedule", "at", i]) for i, t in enumerate(schedule.get("at", []))],
        "repeats": None if repeats is None else int(repeats),  # JSON Schema counts 2.0 as an integer
        "expires_at": _time(data["expires_at"], ["expires_at"]) if "expires_at" in data else None,
        "audio": data.get("audio_url"),
        "drill": data.get("drill", False),
    }
    if partial:
        given = {
            "targets": ("target_areas", "target_endpoints"),
            "schedule": ("schedule_at", "repeats"),
            "audio_url": ("audio",),
        }
        keys = {k for field in data for k in given.get(field, (field,))}
        return {k: v for k, v in shaped.items() if k in keys}
    return shaped


__all__ = ["BROADCAST_CHANGES", "BROADCAST_INPUT", "PayloadError", "parse_city_message"]  # PayloadError: its old home
