"""The OpenAPI description of citizen feedback and "I heard it" confirmations (signed by the app), the staff's feedback
routes, a bulletin's pushes, and the pushes keng sends to portals and the app (`webhooks`)."""

from __future__ import annotations

from typing import Any

from keng.adapters.app_messages import FEEDBACK_INPUT, HEARD_INPUT
from keng.domain.feedback import STATES
from keng.domain.push import BULLETIN, PUSH_KINDS, REPLY, WITHDRAWN

PROBLEM = "application/problem+json"
_STR: dict[str, Any] = {"type": "string"}
_NSTR: dict[str, Any] = {"anyOf": [_STR, {"type": "null"}]}
_NNUM: dict[str, Any] = {"anyOf": [{"type": "number"}, {"type": "null"}]}
_TIME = {"type": "string", "format": "date-time"}
_UUID = {"type": "string", "format": "uuid"}
_ID = [{"name": "id", "in": "path", "required": True, "schema": _UUID}]


def _record(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [n for n in properties if n not in optional],
        "properties": properties,
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problems(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "problem", "content": {PROBLEM: {"schema": _ref("Problem")}}} for c in codes}


def _ok(schema: dict[str, Any], code: int = 200, description: str = "ok") -> dict[str, Any]:
    return {str(code): {"description": description, "content": {"application/json": {"schema": schema}}}}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


_PUSH_ROW = _record(
    {
        "target": _STR,
        "kind": {"enum": ["portal", "app"]},
        "revision": {"type": "integer"},
        "status": {"enum": ["pending", "delivered", "withdrawn", "expired"]},
        "attempts": {"type": "integer"},
        "last_error": _NSTR,
        "wards": {"type": "array", "items": _STR},
    }
)
FEEDBACK_SCHEMAS: dict[str, Any] = {
    "FeedbackInput": FEEDBACK_INPUT,
    "HeardInput": HEARD_INPUT,
    "FeedbackOutcome": _record(
        {"feedback_id": _UUID, "state": {"enum": list(STATES)}, "message_id": _STR, "ward": _NSTR, "due_at": _TIME}
    ),
    "HeardOutcome": _record(
        {"broadcast_id": _UUID, "message_id": _STR, "ward": _NSTR, "group": _NSTR, "count": {"type": "integer"}}
    ),
    "Feedback": _record(
        {
            "id": _UUID,
            "integration": _STR,
            "message_id": _STR,
            "category": _STR,
            "text": _STR,
            "ward": _NSTR,
            "group": _NSTR,
            "lat": _NNUM,
            "lon": _NNUM,
            "photo_sha256": _NSTR,
            "has_contact": {"type": "boolean"},
            "state": {"enum": list(STATES)},
            "due_at": _TIME,
            "overdue": {"type": "boolean"},
            "replies": {"type": "array", "items": _record({"text": _STR, "by": _STR, "at": _TIME})},
            "close_reason": _NSTR,
            "created_on": _TIME,
            "modified_on": _TIME,
        }
    ),
    "FeedbackTriage": _record({"ward": {"type": "string", "minLength": 1, "maxLength": 32}}),
    "FeedbackReply": _record({"text": {"type": "string", "minLength": 1, "maxLength": 2000}}),
    "FeedbackClose": _record({"reason": {"type": "string", "maxLength": 1000}}, optional=("reason",)),
    "PushSummary": _record(
        {
            "targets": {"type": "array", "items": _PUSH_ROW},
            "delivered": {"type": "integer"},
            "pending": {"type": "integer"},
            "withdrawn": {"type": "integer"},
            "expired": {"type": "integer"},
        }
    ),
    "Push": {
        "type": "object",
        "required": ["type"],
        "description": f"{BULLETIN}: broadcast_id, revision, title, text, priority, drill, areas, expires_at, audio "
        f"(url, sha256, duration_s, or null), board_images (sha256, png_base64), at; {WITHDRAWN}: broadcast_id, "
        f"revision, reason, at; {REPLY}: feedback_id, message_id (the app's webhook id of the feedback), reply "
        "(its number), text, ward, at",
        "properties": {"type": {"enum": list(PUSH_KINDS)}},
    },
}


def feedback_paths(auth: list[dict[str, list[str]]], signed: list[dict[str, list[str]]]) -> dict[str, Any]:
    """The paths: feedback and confirmations in (signed), feedback for staff, a bulletin's pushes (bearer)."""
    accepted = "accepted (or replayed: Idempotent-Replayed: true)"
    return {
        "/api/v1/feedback": {
            "post": {
                "operationId": "receiveFeedback",
                "summary": "citizen feedback from the app's backend (signed by an integration of kind app; "
                "idempotent by webhook-id); bodies up to 3 MB (a photo)",
                "security": signed,
                "requestBody": _body("FeedbackInput"),
                "responses": {**_ok(_ref("FeedbackOutcome"), 202, accepted), **_problems(401, 404, 413, 415, 422)},
            },
            "get": {
                "operationId": "listFeedback",
                "summary": "feedback (a ward's staff: their wards'), oldest first; `overdue`: only unanswered past due",
                "security": auth,
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"enum": list(STATES)}},
                    {"name": "overdue", "in": "query", "schema": {"enum": ["1", "true", "0", "false"]}},
                ],
                "responses": {**_ok({"type": "array", "items": _ref("Feedback")}), **_problems(401, 404)},
            },
        },
        "/api/v1/feedback/{id}": {
            "get": {
                "operationId": "getFeedback",
                "summary": "one feedback item",
                "security": auth,
                "parameters": _ID,
                "responses": {**_ok(_ref("Feedback")), **_problems(401, 404)},
            }
        },
        **{
            f"/api/v1/feedback/{{id}}/{action}": {
                "post": {
                    "operationId": f"{action}Feedback",
                    "summary": summary,
                    "security": auth,
                    "parameters": _ID,
                    "requestBody": _body(f"Feedback{action.capitalize()}"),
                    "responses": {**_ok(_ref("Feedback")), **_problems(401, 403, 404, 409, 415, 422)},
                }
            }
            for action, summary in (
                ("triage", "assign feedback to a ward (drafter or approver; a ward's staff: their wards)"),
                ("reply", "reply to the resident: pushed to the app, signed (feedback.replied)"),
                ("close", "close feedback (final)"),
            )
        },
        "/api/v1/heard": {
            "post": {
                "operationId": "receiveHeard",
                "summary": "'I heard it' confirmations of a broadcast from the app (signed); they count in coverage",
                "security": signed,
                "requestBody": _body("HeardInput"),
                "responses": {**_ok(_ref("HeardOutcome"), 202, accepted), **_problems(401, 404, 413, 415, 422)},
            }
        },
        "/api/v1/broadcasts/{id}/pushes": {
            "get": {
                "operationId": "getBroadcastPushes",
                "summary": "delivery truth of a bulletin per portal and app target (latest push, its status)",
                "security": auth,
                "parameters": _ID,
                "responses": {**_ok(_ref("PushSummary")), **_problems(401, 403, 404)},
            }
        },
    }


def push_webhook(signed: list[dict[str, list[str]]]) -> dict[str, Any]:
    """The `webhooks` entry of the pushes keng sends to portals and the app."""
    return {
        "push": {
            "post": {
                "operationId": "push",
                "summary": "a bulletin (to portals and the app), its withdrawal, or a reply to feedback (to the app), "
                "POSTed to the integration's webhook URL",
                "description": "Signed as Standard Webhooks with the integration's secret (webhook-id is the push's "
                "id, stable across retries: use it to drop duplicates). Any 2xx ends the push; anything else is "
                "retried with capped exponential backoff until the bulletin expires. Redirects are not followed.",
                "security": signed,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Push")}}},
                "responses": {
                    "2XX": {"description": "received: not sent again"},
                    "default": {"description": "not received: sent again later"},
                },
            }
        }
    }
