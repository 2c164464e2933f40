"""Messages from the citizen app's backend: feedback (category, text, place, photo, contact) and "I heard it"
confirmations, checked against the JSON Schemas the OpenAPI document publishes; the feedback photo checked with
Pillow (a real PNG or JPEG, at most 2 MB and 4096 px a side) and kept, like the sender's contact, as a private file
outside the event log (`<data dir>/feedback/`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from PIL import Image, UnidentifiedImageError

from keng.adapters.payload import JsonSchemaCheck, PayloadError
from keng.adapters.private_files import private_dir, write_private
from keng.domain.feedback import CATEGORIES, MAX_TEXT

MAX_PHOTO_BYTES = 2 * 1024 * 1024
MAX_PHOTO_SIDE = 4096
MAX_BODY_BYTES = 3 * 1024 * 1024  # a 2 MB photo is 2.7 MB in base64
PHOTO_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
_CODE = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": "^[A-Za-z0-9._-]+$"}

PLACE = {
    "type": "object",
    "additionalProperties": False,
    "description": "where: a ward or residential-group (TDP) code, or coordinates (the nearest ward is assigned)",
    "properties": {
        "ward": _CODE,
        "group": _CODE,
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
    },
    "dependentRequired": {"lat": ["lon"], "lon": ["lat"]},
}
FEEDBACK_INPUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["category", "text"],
    "properties": {
        "category": {"enum": list(CATEGORIES)},
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
        "place": PLACE,
        "photo": {
            "type": "object",
            "additionalProperties": False,
            "required": ["content_type", "data"],
            "description": f"a PNG or JPEG, base64, at most {MAX_PHOTO_BYTES} bytes and {MAX_PHOTO_SIDE} px a side",
            "properties": {
                "content_type": {"enum": list(PHOTO_TYPES)},
                "data": {"type": "string", "minLength": 1, "maxLength": (MAX_PHOTO_BYTES * 4) // 3 + 4},
            },
        },
        "contact": {
            "type": "object",
            "additionalProperties": False,
            "description": "how to reach the resident (kept outside the event log)",
            "properties": {
                "name": {"type": "string", "maxLength": 120},
                "phone": {"type": "string", "maxLength": 30},
                "email": {"type": "string", "maxLength": 254},
            },
        },
    },
}
HEARD_INPUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["broadcast_id"],
    "properties": {
        "broadcast_id": {"type": "string", "format": "uuid"},
        "place": PLACE,
        "count": {"type": "integer", "minimum": 1, "maximum": 100000, "description": "confirmations (default 1)"},
    },
}
FEEDBACK_CHECK = JsonSchemaCheck(FEEDBACK_INPUT)
HEARD_CHECK = JsonSchemaCheck(HEARD_INPUT)


def parse_feedback(body: bytes) -> dict[str, Any]:
    """The feedback message, checked (PayloadError naming the field otherwise)."""
    data: dict[str, Any] = FEEDBACK_CHECK.load(body)
    return data


def parse_heard(body: bytes) -> dict[str, Any]:
    """An "I heard it" message, checked."""
    data: dict[str, Any] = HEARD_CHECK.load(body)
    UUID(data["broadcast_id"])
    return data


def check_photo(content_type: str, data: str) -> bytes:
    """The photo's bytes: base64 of a real PNG or JPEG of the declared type, within the size limits (422 naming the
    problem otherwise). Only the header is decoded for the size check, then the file is verified."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(422, "photo.data must be base64") from None
    if len(raw) > MAX_PHOTO_BYTES:
        raise PayloadError(422, f"photo is {len(raw)} bytes; at most {MAX_PHOTO_BYTES} are accepted")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            fmt, (w, h) = img.format, img.size
            if fmt != PHOTO_TYPES[content_type]:
                raise PayloadError(422, f"photo is not a {content_type} image (it reads as {fmt or 'unknown'})")
            if w > MAX_PHOTO_SIDE or h > MAX_PHOTO_SIDE or w < 1 or h < 1:
                raise PayloadError(422, f"photo is {w}x{h} px; at most {MAX_PHOTO_SIDE} px a side are accepted")
            img.verify()
    except PayloadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PayloadError(422, f"photo is not a readable {content_type} image") from None
    return raw


def _dir(data_dir: Path, kind: str) -> Path:
    return private_dir(data_dir / "feedback" / kind)


def keep_photo(data_dir: Path, content_type: str, raw: bytes) -> str:
    """Store a checked photo under its SHA-256 (once); returns the hash."""
    digest = hashlib.sha256(raw).hexdigest()
    path = _dir(data_dir, "photos") / f"{digest}.{'png' if content_type == 'image/png' else 'jpg'}"
    if not path.exists():
        write_private(path, raw, durable=True)
    return digest


def photo_path(data_dir: Path, digest: str) -> Path | None:
    """Where a kept photo is (None: not kept here)."""
    for ext in ("png", "jpg"):
        path = data_dir / "feedback" / "photos" / f"{digest}.{ext}"
        if len(digest) == 64 and path.exists():
            return path
    return None


def keep_contact(data_dir: Path, feedback: UUID, contact: dict[str, str]) -> None:
    """Store a resident's contact beside (never in) the event log."""
    write_private(_dir(data_dir, "contacts") / f"{feedback}.json", orjson.dumps(contact), durable=True)


def read_contact(data_dir: Path, feedback: UUID) -> dict[str, str] | None:
    """The contact kept for a feedback item, if any."""
    path = data_dir / "feedback" / "contacts" / f"{feedback}.json"
    if not path.exists():
        return None
    data: dict[str, str] = orjson.loads(path.read_bytes())
    return data
