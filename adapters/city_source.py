"""The city source system's webhook payload (Hệ thống thông tin nguồn): parsed strictly, every problem named.

    {"title": "...", "text": "...", "priority": "emergency" | "priority" | "normal",
     "targets": {"areas": ["00595", "00595-T01", "021"], "endpoints": ["00595-T01-IP1"]},
     "channels": ["speaker", "eboard", "portal", "app"],          (optional; default all)
     "schedule": {"at": ["2026-11-27T17:00:00+07:00"], "repeats": 2},   (optional)
     "expires_at": "2026-11-28T00:00:00+07:00",                  (optional; default by priority)
     "audio_url": "https://...", "drill": false}                  (optional)

Area codes are ward codes (5 digits), residential-group codes, or the district code (3 digits).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

ALLOWED = {"title", "text", "priority", "targets", "channels", "schedule", "expires_at", "audio_url", "drill"}


class PayloadError(ValueError):
    """The payload is not acceptable; `status` is 400 (not JSON) or 422 (JSON of the wrong shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _strings(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PayloadError(422, f"{path} must be a list of strings")
    if len(value) > 1000:
        raise PayloadError(422, f"{path} has more than 1000 items")
    return list(value)


def _time(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise PayloadError(422, f"{path} must be an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(422, f"{path} {value[:40]!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise PayloadError(422, f"{path} must carry a UTC offset (e.g. +07:00)")
    return parsed


def parse_city_message(body: bytes, *, partial: bool = False) -> dict[str, Any]:
    """Parse and shape-check a payload into keyword arguments for drafting a broadcast (with `partial`, for a
    revision: every field optional, and only the fields given are returned)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise PayloadError(400, f"malformed JSON: {e}") from None
    if not isinstance(data, dict):
        raise PayloadError(422, "the payload must be a JSON object")
    unknown = sorted(set(data) - ALLOWED)
    if unknown:
        raise PayloadError(422, f"unknown field(s): {', '.join(unknown)}")
    for key in ("title", "text", "priority"):
        if (key in data or not partial) and not isinstance(data.get(key), str):
            raise PayloadError(422, f"{key} is required and must be a string")
    targets = data.get("targets", {} if partial else None)
    if not isinstance(targets, dict) or set(targets) - {"areas", "endpoints"}:
        raise PayloadError(422, "targets must be an object with 'areas' and/or 'endpoints'")
    schedule = data.get("schedule", {})
    if not isinstance(schedule, dict) or set(schedule) - {"at", "repeats"}:
        raise PayloadError(422, "schedule must be an object with 'at' and/or 'repeats'")
    repeats = schedule.get("repeats")
    if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool)):
        raise PayloadError(422, "schedule.repeats must be an integer")
    drill = data.get("drill", False)
    if not isinstance(drill, bool):
        raise PayloadError(422, "drill must be true or false")
    audio = data.get("audio_url")
    if audio is not None and (not isinstance(audio, str) or not audio.startswith(("https://", "http://"))):
        raise PayloadError(422, "audio_url must be an http(s) URL")
    shaped = {
        "title": data.get("title"),
        "text": data.get("text"),
        "priority": data.get("priority"),
        "target_areas": _strings(targets.get("areas", []), "targets.areas"),
        "target_endpoints": _strings(targets.get("endpoints", []), "targets.endpoints"),
        "channels": _strings(data["channels"], "channels") if "channels" in data else None,
        "schedule_at": [
            _time(t, f"schedule.at[{i}]") for i, t in enumerate(_strings(schedule.get("at", []), "schedule.at"))
        ],
        "repeats": repeats,
        "expires_at": _time(data["expires_at"], "expires_at") if "expires_at" in data else None,
        "audio": audio,
        "drill": drill,
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
