"""Pushes to portals and the app, as read by staff: every push about a bulletin or a feedback item, and the delivery
truth per target (the latest bulletin push to each portal or app, and its status), shown beside a speaker's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from keng.adapters.store.app import Keng
from keng.domain.push import BULLETIN, PUSH_EVENTS, Push, PushStatus


def pushes_of(app: Keng, subject: str) -> list[Push]:
    """Every push about a broadcast or feedback item (by id), oldest first."""
    found = app.aggregates_of(*PUSH_EVENTS).values()
    return sorted((p for p in found if p.subject == subject), key=lambda p: p.created_on)


def push_summary(pushes: Iterable[Push]) -> dict[str, Any]:
    """Delivery truth per target, like a speaker's: the latest bulletin push to each target and its status."""
    by_target: dict[str, dict[str, Any]] = {}
    for p in pushes:
        if p.kind != BULLETIN:
            continue
        by_target[p.target] = {
            "target": p.target,
            "kind": p.target_kind,
            "revision": p.revision,
            "status": p.status,
            "attempts": p.attempts,
            "last_error": p.last_error,
            "wards": p.wards,
        }
    counts = {s: 0 for s in (PushStatus.DELIVERED, PushStatus.PENDING, PushStatus.WITHDRAWN, PushStatus.EXPIRED)}
    for row in by_target.values():
        counts[row["status"]] += 1
    return {"targets": sorted(by_target.values(), key=lambda r: r["target"]), **counts}
