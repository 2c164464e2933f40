"""The OpenAPI 3.1 document of `keng serve` (tests check it is valid and that it lists exactly the served routes)."""

from __future__ import annotations

from typing import Any

from adapters.store.app import MAX_POSITION
from domain.content import MAX_REPEATS, MAX_SCHEDULED, MAX_TARGETS, MAX_TEXT, MAX_TITLE
from domain.values import MAX_URL
from runtime.http.openapi_reports import report_paths
from runtime.http.routes_audio import MAX_EXPIRY

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problems(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": "problem", "content": {"application/problem+json": {"schema": _PROBLEM}}} for c in codes
    }


def _ok(schema: dict[str, Any], code: int = 200, description: str = "ok") -> dict[str, Any]:
    return {str(code): {"description": description, "content": {"application/json": {"schema": schema}}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _bounded(hi: int) -> dict[str, Any]:
    """An integer parameter: ASCII digits, 0..hi (anything else is a 400 naming the parameter)."""
    return {"type": "integer", "minimum": 0, "maximum": hi}


_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}]
_BODY = {"required": True, "content": {"application/json": {"schema": _ref("BroadcastInput")}}}
_REASON = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}
        }
    },
}
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
    },
    "BroadcastInput": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            # Text fields refuse control characters other than tab and newline, and noncharacters (422).
            "title": {"type": "string", "maxLength": MAX_TITLE},
            "text": {"type": "string", "maxLength": MAX_TEXT},
            "priority": {"enum": ["emergency", "priority", "normal"]},
            "targets": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "areas": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_TARGETS},
                    "endpoints": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_TARGETS},
                },
            },
            "channels": {"type": "array", "items": {"enum": ["speaker", "eboard", "portal", "app"]}},
            "schedule": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "at": {
                        "type": "array",
                        "items": {"type": "string", "format": "date-time"},
                        "maxItems": MAX_SCHEDULED,
                        "description": "each before expires_at",
                    },
                    "repeats": {"type": "integer", "minimum": 1, "maximum": MAX_REPEATS},
                },
            },
            "expires_at": {
                "type": "string",
                "format": "date-time",
                "description": "in the future, at most KENG_MAX_EXPIRY_DAYS (default 30) days ahead",
            },
            "audio_url": {"type": "string", "format": "uri", "maxLength": MAX_URL, "pattern": "^https?://"},
            "drill": {"type": "boolean"},
        },
    },
    "Broadcast": {
        "type": "object",
        "required": [
            "id",
            "title",
            "text",
            "priority",
            "state",
            "revision",
            "approved",
            "targets",
            "scope",
            "channels",
            "expires_at",
            "source",
            "approvals",
        ],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "title": {"type": "string"},
            "text": {"type": "string"},
            "priority": {"enum": ["emergency", "priority", "normal"]},
            "state": {
                "enum": [
                    "draft",
                    "submitted",
                    "approved",
                    "scheduled",
                    "dispatching",
                    "completed",
                    "cancelled",
                    "expired",
                    "rejected",
                ]
            },
            "revision": {"type": "integer"},
            "approved": {"type": "boolean"},
            "targets": {"type": "object"},
            "scope": {"type": "array", "items": {"type": "string"}},
            "channels": {"type": "array", "items": {"type": "string"}},
            "expires_at": {"type": "string"},
            "source": {"type": "object"},
            "approvals": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Endpoint": {
        "type": "object",
        "required": ["code", "kind", "ward"],
        "properties": {
            "code": {"type": "string"},
            "kind": {"type": "string"},
            "ward": {"type": "string"},
            "group": {"type": ["string", "null"]},
            "online": {"type": ["boolean", "null"]},
        },
    },
    "Area": {
        "type": "object",
        "required": ["code", "name", "level"],
        "properties": {
            "code": {"type": "string"},
            "name": {"type": "string"},
            "level": {"type": "string"},
            "parent": {"type": ["string", "null"]},
        },
    },
    "Staff": {
        "type": "object",
        "required": ["handle", "name", "roles"],
        "properties": {
            "handle": {"type": "string"},
            "name": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "wards": {"type": "array"},
        },
    },
    "InboundResult": {
        "type": "object",
        "required": ["broadcast_id", "state", "message_id"],
        "properties": {
            "broadcast_id": {"type": "string", "format": "uuid"},
            "state": {"type": "string"},
            "message_id": {"type": "string"},
        },
    },
}

_WEBHOOK_HEADERS = [
    {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
    for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
]


def openapi_document() -> dict[str, Any]:
    """The document served at /openapi.json."""
    array = {"type": "array", "items": {}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "keng",
            "version": "1.0.0",
            "description": "Emergency alerting and public-broadcast core. Errors are application/problem+json.",
        },
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/healthz": {"get": {"summary": "liveness", "responses": _ok({"type": "object"})}},
            "/readyz": {
                "get": {
                    "summary": "readiness (the event store answers)",
                    "responses": {**_ok({"type": "object"}), "503": {"description": "not ready"}},
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": _ok({"type": "object"})}},
            "/api/v1/broadcasts": {
                "get": {
                    "summary": "list broadcasts, newest first",
                    "security": _AUTH,
                    "parameters": [
                        {"name": "state", "in": "query", "schema": {"type": "string"}},
                        {"name": "unratified", "in": "query", "schema": {"type": "string", "enum": ["1", "true"]}},
                    ],
                    "responses": {**_ok({**array, "items": _ref("Broadcast")}), **_problems(401)},
                },
                "post": {
                    "summary": "draft a broadcast (drafter)",
                    "security": _AUTH,
                    "requestBody": _BODY,
                    "responses": {**_ok(_ref("Broadcast"), 201, "drafted"), **_problems(400, 401, 403, 413, 415, 422)},
                },
            },
            "/api/v1/broadcasts/{id}": {
                "get": {
                    "summary": "one broadcast",
                    "security": _AUTH,
                    "parameters": _ID,
                    "responses": {**_ok(_ref("Broadcast")), **_problems(401, 404)},
                },
                "patch": {
                    "summary": "revise (voids approvals)",
                    "security": _AUTH,
                    "parameters": _ID,
                    "requestBody": _BODY,
                    "responses": {**_ok(_ref("Broadcast")), **_problems(400, 401, 403, 404, 409, 415, 422)},
                },
            },
            **{
                f"/api/v1/broadcasts/{{id}}/{action}": {
                    "post": {
                        "summary": f"{action} a broadcast",
                        "security": _AUTH,
                        "parameters": _ID,
                        **({"requestBody": _REASON} if action in ("reject", "cancel") else {}),
                        "responses": {**_ok(_ref("Broadcast")), **_problems(400, 401, 403, 404, 409, 415, 422)},
                    }
                }
                for action in ("submit", "approve", "ratify", "reject", "cancel")
            },
            "/api/v1/endpoints": {
                "get": {
                    "summary": "endpoints",
                    "security": _AUTH,
                    "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("ward", "kind")],
                    "responses": {**_ok({**array, "items": _ref("Endpoint")}), **_problems(401)},
                }
            },
            "/api/v1/areas": {
                "get": {
                    "summary": "the area tree",
                    "security": _AUTH,
                    "responses": {**_ok({**array, "items": _ref("Area")}), **_problems(401)},
                }
            },
            "/api/v1/staff": {
                "get": {
                    "summary": "staff members",
                    "security": _AUTH,
                    "responses": {**_ok({**array, "items": _ref("Staff")}), **_problems(401)},
                }
            },
            "/audio/{key}": {
                "get": {
                    "summary": "rendered audio (MP3) by asset hash: a signed device link or a staff token; "
                    "ETag = the hash, single byte ranges, Repr-Digest = SHA-256 of the bytes",
                    "parameters": [
                        {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "exp", "in": "query", "schema": _bounded(MAX_EXPIRY)},
                        {"name": "sig", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"description": "the file", "content": {"audio/mpeg": {}}},
                        "206": {"description": "a byte range", "content": {"audio/mpeg": {}}},
                        "304": {"description": "not modified"},
                        **_problems(400, 401, 403, 404, 416),
                    },
                }
            },
            "/api/v1/stream": {
                "get": {
                    "summary": "live status as server-sent events (broadcasts, dispatch progress, devices); "
                    "resume with Last-Event-ID or ?since=POSITION",
                    "security": _AUTH,
                    "parameters": [
                        {"name": "since", "in": "query", "schema": _bounded(MAX_POSITION)},
                        {"name": "Last-Event-ID", "in": "header", "schema": _bounded(MAX_POSITION)},
                    ],
                    "responses": {
                        "200": {"description": "text/event-stream", "content": {"text/event-stream": {}}},
                        **_problems(400, 401),
                    },
                }
            },
            "/api/v1/cap": {
                "post": {
                    "summary": "a signed CAP 1.2 alert (Alert, Update, Cancel; Ack/Error/Test recorded only)",
                    "parameters": _WEBHOOK_HEADERS,
                    "requestBody": {"required": True, "content": {"application/cap+xml": {}}},
                    "responses": {
                        **_ok({"type": "object"}, 202, "accepted (or replayed: Idempotent-Replayed: true)"),
                        **_problems(400, 401, 403, 409, 413, 415, 422),
                    },
                }
            },
            "/cap/{id}.xml": {
                "get": {
                    "summary": "a public alert as CAP 1.2",
                    "parameters": _ID,
                    "responses": {
                        "200": {"description": "CAP", "content": {"application/cap+xml": {}}},
                        **_problems(404),
                    },
                }
            },
            "/feeds/alerts.atom": {
                "get": {"summary": "current public alerts (Atom)", "responses": {"200": {"description": "Atom"}}}
            },
            "/feeds/alerts.json": {
                "get": {
                    "summary": "current public alerts with the full text of every spoken bulletin (JSON Feed)",
                    "responses": {"200": {"description": "JSON Feed"}},
                }
            },
            **report_paths(),
            "/api/v1/hooks/city-source": {
                "post": {
                    "summary": "signed message from the city source system (Standard Webhooks, idempotent by id)",
                    "parameters": _WEBHOOK_HEADERS,
                    "requestBody": _BODY,
                    "responses": {
                        **_ok(_ref("InboundResult"), 202, "accepted (or replayed: Idempotent-Replayed: true)"),
                        **_problems(400, 401, 403, 413, 415, 422),
                    },
                }
            },
        },
    }
