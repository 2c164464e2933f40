"""JSON request payloads checked against the JSON Schemas that the OpenAPI document publishes (one source: the schema a
client reads is the schema its request is held to), every violation named by its field.

The checks are compiled once by jsonschema-rs (a Rust validator): about 0.3 us per city-source message, against about
80 us for the pure-Python `jsonschema`, which the ingest path (1,000 messages/s on 2 cores) would feel. It is also the
validator schemathesis uses, so the fuzzer and the server agree on what "valid" means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema_rs
import orjson


class PayloadError(ValueError):
    """The payload is not acceptable; `status` is 400 (not JSON) or 422 (JSON of the wrong shape). `errors` lists
    every violation as {"path": JSON Pointer, "message": ...}; the message (the first violation) names the field."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []


def field_name(path: list[str | int] | tuple[str | int, ...]) -> str:
    """A path into a payload as people write it: `schedule.at[0]` (`the payload` for the document itself)."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "the payload"


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _shown(value: Any) -> str:
    """The offending value, short (a string in quotes, anything else as JSON)."""
    try:
        text = repr(value) if isinstance(value, str) else orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


K = jsonschema_rs.ValidationErrorKind
_TYPES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


def _where(error: jsonschema_rs.ValidationError) -> list[str | int]:
    """The path of the value at fault (for a missing field, where it should have been)."""
    path = list(error.instance_path)
    return [*path, error.kind.property] if isinstance(error.kind, K.Required) else path


def _say(error: jsonschema_rs.ValidationError) -> str:
    """One violation in a sentence that starts with the field it concerns."""
    path = list(error.instance_path)
    name = field_name(path)
    match error.kind:
        case K.Required(property=missing):
            return f"{field_name([*path, missing])} is required"
        case K.AdditionalProperties(unexpected=unknown):
            return f"unknown field(s){f' in {name}' if path else ''}: {', '.join(sorted(unknown))}"
        case K.Type(types=types):
            return f"{name} must be {' or '.join(_TYPES.get(t, t) for t in types)}"
        case K.Enum(options=options):
            return f"{name} must be one of {', '.join(map(str, options))}, got {_shown(error.instance)}"
        case K.Format(format="date"):
            return f"{name} must be a day written YYYY-MM-DD, got {_shown(error.instance)}"
        case K.Format():
            got = _shown(error.instance)
            return f"{name} must be an RFC 3339 date-time with a UTC offset (e.g. 2026-11-27T17:00:00+07:00), got {got}"
        case K.MinLength(limit=1):
            return f"{name} must not be empty"
        case K.MinLength(limit=limit):
            return f"{name} is shorter than {limit} characters"
        case K.MaxLength(limit=limit):
            return f"{name} is longer than {limit} characters"
        case K.MaxItems(limit=limit):
            return f"{name} has more than {limit} items"
        case K.Minimum(limit=limit):
            return f"{name} must be at least {limit}"
        case K.Maximum(limit=limit):
            return f"{name} must be at most {limit}"
        case K.Pattern(pattern=pattern):
            return f"{name} must match {pattern}"
    return f"{name}: {error.message}"


class JsonSchemaCheck:
    """One schema, compiled (with `components`, so that its `$ref`s to `#/components/schemas/...` resolve)."""

    def __init__(self, schema: Mapping[str, Any], components: Mapping[str, Any] | None = None) -> None:
        document = {**schema, "components": {"schemas": dict(components or {})}}
        self._validator = jsonschema_rs.validator_for(document, validate_formats=True)

    def load(self, body: bytes) -> Any:
        """The body, parsed; PayloadError (400) if it is not JSON, (422) if the schema refuses it."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise PayloadError(400, f"malformed JSON: {e}") from None
        self.check(data)
        return data

    def check(self, data: Any) -> None:
        """PayloadError (422) naming the first violation and listing all of them, if the schema refuses `data`."""
        if self._validator.is_valid(data):
            return
        errors = [{"path": _pointer(_where(e)), "message": _say(e)} for e in self._validator.iter_errors(data)]
        raise PayloadError(422, errors[0]["message"], errors)
