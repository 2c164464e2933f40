"""The OpenAPI 3.1 `webhooks` of keng: the delivery reports it POSTs to the city source system (runtime/workers/
reporter.py builds them), described so that the receiving side can be written, and checked, from the document alone.
"""

from __future__ import annotations

from typing import Any

from keng.runtime.http.openapi_schemas import STATES, nullable, record
from keng.runtime.workers.reporter import FINAL

DELIVERY_REPORT = record(
    {
        "message_id": {"type": "string", "description": "the webhook-id of the city-source message that asked for it"},
        "broadcast_id": {"type": "string", "format": "uuid"},
        "outcome": {"enum": sorted(FINAL.values())},
        "state": {"enum": STATES},
        "summary": {
            "type": "object",
            "description": "for `completed`, the dispatch summary (targeted, online, received, played, failed, "
            "unreachable, latency per priority); otherwise empty",
        },
        "reason": {**nullable({"type": "string"}), "description": "why it was cancelled or rejected"},
        "at": {"type": "string", "format": "date-time", "description": "when the report was written"},
    }
)


def webhooks(signed: list[dict[str, list[str]]]) -> dict[str, Any]:
    """The `webhooks` section; `signed` is the security requirement of the inbound webhooks (the same scheme signs
    the reports, with the integration's secret)."""
    return {
        "deliveryReport": {
            "post": {
                "operationId": "deliveryReport",
                "summary": "what became of a city-source message: sent to the integration's report URL when its "
                "broadcast ends (completed, cancelled, rejected, expired), at most once per outcome",
                "description": "Signed as Standard Webhooks (webhook-id is the report's id, stable across retries: "
                "use it to drop duplicates). Any 2xx answer ends the deliveries of the report; anything else, or no "
                "answer within 10 s, is retried with capped exponential backoff (2 s, 4 s, ... up to 5 min). "
                "Redirects are not followed.",
                "security": signed,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DeliveryReport"}}},
                },
                "responses": {
                    "2XX": {"description": "received: the report is not sent again"},
                    "default": {"description": "not received: the report is sent again later"},
                },
            }
        }
    }
