"""The OpenAPI 3.1 document of `keng serve` (tests check it is valid, that it lists exactly the served routes, and,
with schemathesis, that every answer of every route matches it).

Links tie each operation that creates or changes a broadcast to the operations that act on it next, so a client (or
a stateful fuzzer) can follow draft -> revise -> submit -> approve -> cancel without guessing ids.
"""

from __future__ import annotations

from typing import Any

from keng.adapters.store.app import MAX_POSITION
from keng.runtime.http.openapi_feedback import FEEDBACK_SCHEMAS, feedback_paths, push_webhook
from keng.runtime.http.openapi_reports import report_paths
from keng.runtime.http.openapi_schemas import SCHEMAS, STATES
from keng.runtime.http.openapi_webhooks import DELIVERY_REPORT, webhooks
from keng.runtime.http.routes_audio import MAX_EXPIRY

PROBLEM = "application/problem+json"
ACTIONS = ("submit", "approve", "ratify", "retract", "reject", "cancel")


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _bounded(hi: int) -> dict[str, Any]:
    """An integer parameter: ASCII digits, 0..hi (anything else is a 400 naming the parameter)."""
    return {"type": "integer", "minimum": 0, "maximum": hi}


def _problems(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "problem", "content": {PROBLEM: {"schema": _ref("Problem")}}} for c in codes}


def _ok(
    schema: dict[str, Any], code: int = 200, description: str = "ok", links: dict[str, Any] | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if links:
        answer["links"] = links
    return {str(code): answer}


def _broadcast_links(expression: str) -> dict[str, Any]:
    """Links from an answer that names a broadcast (at `expression`) to every operation on that broadcast."""
    targets = {
        "GetBroadcast": "getBroadcast",
        "ReviseBroadcast": "reviseBroadcast",
        **{f"{a.capitalize()}Broadcast": f"{a}Broadcast" for a in ACTIONS},
        "CapDocument": "getCapDocument",
    }
    links = {name: {"operationId": op, "parameters": {"path.id": expression}} for name, op in targets.items()}
    links["Timeline"] = {"operationId": "reportTimeline", "parameters": {"query.broadcast": expression}}
    return links


_BY_ID = _broadcast_links("$response.body#/id")
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}]
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
# Standard Webhooks: the three headers together authenticate a message (and the id is its idempotency key).
WEBHOOK_SCHEMES = {
    "webhookId": {"type": "apiKey", "in": "header", "name": "webhook-id", "description": "unique message id"},
    "webhookTimestamp": {"type": "apiKey", "in": "header", "name": "webhook-timestamp", "description": "Unix time"},
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "v1,<base64 HMAC-SHA256 of id.timestamp.body with the integration's secret>",
    },
}
_SIGNED: list[dict[str, list[str]]] = [{name: [] for name in WEBHOOK_SCHEMES}]
_JSON_WRITE = (400, 401, 403, 404, 409, 413, 415, 422, 503)


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _operator_paths() -> dict[str, Any]:
    array = {"type": "array", "items": _ref("Broadcast")}
    return {
        "/api/v1/broadcasts": {
            "get": {
                "operationId": "listBroadcasts",
                "summary": "list broadcasts, newest first (with `unratified`, only those awaiting ratification, "
                "with `ratify_by` and `ratification_overdue`)",
                "security": _AUTH,
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"enum": STATES}},
                    {"name": "unratified", "in": "query", "schema": {"enum": ["1", "true", "0", "false"]}},
                ],
                "responses": {
                    **_ok({"anyOf": [array, {"type": "array", "items": _ref("UnratifiedBroadcast")}]}),
                    **_problems(400, 401),
                },
            },
            "post": {
                "operationId": "draftBroadcast",
                "summary": "draft a broadcast (drafter)",
                "security": _AUTH,
                "requestBody": _body("BroadcastInput"),
                "responses": {
                    **_ok(_ref("Broadcast"), 201, "drafted", _BY_ID),
                    **_problems(400, 401, 403, 409, 413, 415, 422, 503),
                },
            },
        },
        "/api/v1/broadcasts/{id}": {
            "get": {
                "operationId": "getBroadcast",
                "summary": "one broadcast",
                "security": _AUTH,
                "parameters": _ID,
                "responses": {**_ok(_ref("Broadcast"), links=_BY_ID), **_problems(401, 403, 404)},
            },
            "patch": {
                "operationId": "reviseBroadcast",
                "summary": "revise (voids approvals)",
                "security": _AUTH,
                "parameters": _ID,
                "requestBody": _body("BroadcastChanges"),
                "responses": {**_ok(_ref("Broadcast"), links=_BY_ID), **_problems(*_JSON_WRITE)},
            },
        },
        **{
            f"/api/v1/broadcasts/{{id}}/{action}": {
                "post": {
                    "operationId": f"{action}Broadcast",
                    "summary": f"{action} a broadcast",
                    "security": _AUTH,
                    "parameters": _ID,
                    **({"requestBody": _body("Reason")} if action in ("retract", "reject", "cancel") else {}),
                    "responses": {**_ok(_ref("Broadcast"), links=_BY_ID), **_problems(*_JSON_WRITE)},
                }
            }
            for action in ACTIONS
        },
        "/api/v1/endpoints": {
            "get": {
                "operationId": "listEndpoints",
                "summary": "endpoints",
                "security": _AUTH,
                "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("ward", "kind")],
                "responses": {**_ok({"type": "array", "items": _ref("Endpoint")}), **_problems(401)},
            }
        },
        **_equipment_paths(),
        "/api/v1/areas": {
            "get": {
                "operationId": "listAreas",
                "summary": "the area tree in force now, or at the instant `at` (units as they were then)",
                "security": _AUTH,
                "parameters": [
                    {
                        "name": "at",
                        "in": "query",
                        "description": "an instant (ISO 8601 date-time with a UTC offset) or a day (YYYY-MM-DD: the "
                        "tree in force that day, from 00:00 Vietnam time); default now",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {**_ok({"type": "array", "items": _ref("Area")}), **_problems(400, 401)},
            }
        },
        "/api/v1/staff": {
            "get": {
                "operationId": "listStaff",
                "summary": "staff members",
                "security": _AUTH,
                "responses": {**_ok({"type": "array", "items": _ref("Staff")}), **_problems(401)},
            }
        },
    }


# Equipment lifecycle actions: (operation id, request body schema, summary).
EQUIPMENT_ACTIONS = {
    "fault": ("recordFault", "EquipmentFault", "record a fault"),
    "repair": ("recordRepair", "EquipmentRepair", "record a repair"),
    "convert": ("recordConversion", "EquipmentConversion", "record an FM -> IP conversion"),
    "decommission": ("recordDecommissioning", "EquipmentDecommission", "record a decommissioning"),
    "portal-live": ("recordPortalLive", "PortalLive", "record a portal going live"),
}


def _equipment_paths() -> dict[str, Any]:
    code = [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        f"/api/v1/endpoints/{{code}}/{action}": {
            "post": {
                "operationId": operation,
                "summary": f"{summary}, with its day and cost (admin whose scope covers the endpoint)",
                "security": _AUTH,
                "parameters": code,
                "requestBody": _body(schema),
                "responses": {**_ok(_ref("Endpoint")), **_problems(*_JSON_WRITE)},
            }
        }
        for action, (operation, schema, summary) in EQUIPMENT_ACTIONS.items()
    }


def _signed_link_parameters() -> list[dict[str, Any]]:
    """A device link's path and query (adapters/audio_links.py): the asset's key, its expiry and signature."""
    return [
        {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "exp", "in": "query", "schema": _bounded(MAX_EXPIRY)},
        {"name": "sig", "in": "query", "schema": {"type": "string"}},
    ]


def _public_paths() -> dict[str, Any]:
    return {
        "/audio/{key}": {
            "get": {
                "operationId": "getAudio",
                "summary": "rendered audio (MP3) by asset hash: a signed device link or a staff token; "
                "ETag = the hash, single byte ranges, Repr-Digest = SHA-256 of the bytes",
                "parameters": _signed_link_parameters(),
                "responses": {
                    "200": {"description": "the file", "content": {"audio/mpeg": {}}},
                    "206": {"description": "a byte range", "content": {"audio/mpeg": {}}},
                    "304": {"description": "not modified"},
                    **_problems(400, 401, 403, 404, 416),
                },
            }
        },
        "/board/{key}": {
            "get": {
                "operationId": "getBoardPage",
                "summary": "a rendered board page by the SHA-256 of its bytes: `<sha256>.png` (the image) or "
                "`<sha256>.json` (its layout); a signed device link (from a `display` command) or a staff token; "
                "ETag = the hash, Repr-Digest = SHA-256 of the bytes",
                "parameters": _signed_link_parameters(),
                "responses": {
                    "200": {"description": "the file", "content": {"image/png": {}, "application/json": {}}},
                    "304": {"description": "not modified"},
                    **_problems(400, 401, 403, 404),
                },
            }
        },
        "/api/v1/stream": {
            "get": {
                "operationId": "streamStatus",
                "summary": "live status as server-sent events (broadcasts, dispatch progress and "
                "latency-budget verdicts (Dispatch.Judged), devices); "
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
        "/cap/{id}.xml": {
            "get": {
                "operationId": "getCapDocument",
                "summary": "a public alert as CAP 1.2",
                "parameters": _ID,
                "responses": {
                    "200": {"description": "CAP", "content": {"application/cap+xml": {}}},
                    **_problems(404),
                },
            }
        },
        "/feeds/alerts.atom": {
            "get": {
                "operationId": "getAtomFeed",
                "summary": "current public alerts (Atom)",
                "responses": {"200": {"description": "Atom", "content": {"application/atom+xml": {}}}},
            }
        },
        "/feeds/alerts.json": {
            "get": {
                "operationId": "getJsonFeed",
                "summary": "current public alerts with the full text of every spoken bulletin (JSON Feed)",
                "responses": {
                    "200": {
                        "description": "JSON Feed 1.1",
                        "content": {"application/feed+json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def _signed_paths() -> dict[str, Any]:
    return {
        "/api/v1/cap": {
            "post": {
                "operationId": "receiveCap",
                "summary": "a signed CAP 1.2 alert (Alert, Update, Cancel; Ack/Error/Test recorded only)",
                "security": _SIGNED,
                "requestBody": {
                    "required": True,
                    "content": {"application/cap+xml": {"schema": {"type": "string", "description": "CAP 1.2 XML"}}},
                },
                "responses": {
                    **_ok(
                        _ref("CapOutcome"),
                        202,
                        "accepted (or replayed: Idempotent-Replayed: true)",
                        _broadcast_links("$response.body#/broadcast_ids/0"),
                    ),
                    **_problems(400, 401, 403, 409, 413, 415, 422, 503),
                },
            }
        },
        "/api/v1/hooks/city-source": {
            "post": {
                "operationId": "receiveCityMessage",
                "summary": "signed message from the city source system (Standard Webhooks, idempotent by id)",
                "security": _SIGNED,
                "requestBody": _body("BroadcastInput"),
                "responses": {
                    **_ok(
                        _ref("InboundResult"),
                        202,
                        "accepted (or replayed: Idempotent-Replayed: true)",
                        _broadcast_links("$response.body#/broadcast_id"),
                    ),
                    **_problems(400, 401, 403, 409, 413, 415, 422, 503),
                },
            }
        },
    }


def _ops_paths() -> dict[str, Any]:
    def status(**more: Any) -> dict[str, Any]:
        return {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}, **more}}

    return {
        "/healthz": {"get": {"operationId": "healthz", "summary": "liveness", "responses": _ok(status())}},
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "readiness (the event store answers)",
                "responses": {
                    **_ok(status(log_position={"type": "integer"})),
                    **_ok(status(detail={"type": "string"}), 503, "not ready"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition format", "content": {"text/plain": {}}}},
            }
        },
        "/openapi.json": {
            "get": {"operationId": "openapi", "summary": "this document", "responses": _ok({"type": "object"})}
        },
        "/asyncapi.json": {
            "get": {
                "operationId": "asyncapi",
                "summary": "the device protocol (MQTT) as an AsyncAPI 3 document, for this installation's topic root",
                "responses": _ok({"type": "object"}),
            }
        },
    }


def _with_bad_request(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation may answer 400: a query parameter it does not take is refused (runtime/http/query_names.py)."""
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("400", _problems(400)["400"])
    return paths


# A method a path does not take is answered 405 with the methods it does take (RFC 9110); no operation can declare it.
METHOD_NOT_ALLOWED = {
    "description": "the path does not take this method (every path answers so to a method it does not list)",
    "headers": {
        "Allow": {
            "description": "the methods the path takes, comma-separated (HEAD wherever GET is)",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    "content": {PROBLEM: {"schema": _ref("Problem")}},
}


def openapi_document() -> dict[str, Any]:
    """The document served at /openapi.json."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "keng",
            "version": "1.0.0",
            "description": "Emergency alerting and public-broadcast core. Errors are application/problem+json; "
            "a request body the schema refuses is a 422 naming the field (every violation under `errors`); a "
            "method a path does not take is a 405 with `Allow` (components/responses/MethodNotAllowed).",
        },
        "components": {
            "schemas": {**SCHEMAS, "DeliveryReport": DELIVERY_REPORT, **FEEDBACK_SCHEMAS},
            "responses": {"MethodNotAllowed": METHOD_NOT_ALLOWED},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, **WEBHOOK_SCHEMES},
        },
        "paths": _with_bad_request(
            {
                **_ops_paths(),
                **_operator_paths(),
                **_public_paths(),
                **_signed_paths(),
                **report_paths(),
                **feedback_paths(_AUTH, _SIGNED),
            }
        ),
        "webhooks": {**webhooks(_SIGNED), **push_webhook(_SIGNED)},
    }
