"""Device status messages and the Endpoint transitions they mean (never one event per heartbeat)."""

from __future__ import annotations

from typing import Any

from keng.domain.delivery import PROTOCOL_VERSION

STATUS_STATES = ("online", "offline", "fault")


def check_status(topic_endpoint: str, message: Any, *, known_endpoints: set[str] | frozenset[str]) -> tuple[str, str]:
    """Return (state, detail) for a status message, or ("refused", reason) when it must be ignored.

    `detail` is the fault text for `fault`, the reason for `offline` (e.g. `last-will`), empty for `online`."""
    if not isinstance(message, dict) or message.get("v") != PROTOCOL_VERSION:
        return "refused", "malformed"
    if message.get("endpoint", topic_endpoint) != topic_endpoint:
        return "refused", "endpoint-mismatch"
    if topic_endpoint not in known_endpoints:
        return "refused", "unknown-endpoint"
    state = message.get("state")
    if state not in STATUS_STATES:
        return "refused", "bad-state"
    detail = message.get("fault" if state == "fault" else "reason") or ("" if state == "online" else "unspecified")
    if not isinstance(detail, str):
        return "refused", "malformed"
    return str(state), detail[:200]
