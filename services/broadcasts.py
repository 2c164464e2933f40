"""Broadcasts: what an operator does to a bulletin (draft, revise, submit, approve, reject, cancel, ratify,
retract) and what a
reader may see of them.

Each command takes the application (`Keng`, the unit of work: it loads the broadcast, and saves the change in one
transaction with optimistic concurrency) and the acting staff member's handle; the domain (domain/broadcast.py,
domain/authority.py) decides whether the actor may, and refuses with a named rule. Time and content bounds are the
application's (`app.clock`, `app.limits`, chosen by the composition root), so a test's fixed clock reaches every rule.
Reads take the reader's `Visibility` (domain/authority.py): a broadcast outside it is reported as not found, as if it
did not exist. The HTTP API, the CLI and the console call these and only present the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.authority import Visibility
from keng.domain.broadcast import Broadcast
from keng.domain.content import build_content
from keng.projections.catalog import Catalog

# the commands that move a broadcast through its states
ACTIONS = ("submit", "approve", "ratify", "retract", "reject", "cancel")


def draft(app: Keng, *, by: str, source_kind: str = "operator", source_ref: str | None = None, **content: Any) -> UUID:
    """Draft a broadcast as a staff member; targets must be registered. Returns the new id."""
    item = app.prepare_broadcast(app.staff(by), source_kind=source_kind, source_ref=source_ref, **content)
    app.save_new(item, what=f"a broadcast for {source_kind} message {source_ref!r}")
    return item.id


def revise(app: Keng, broadcast_id: UUID, *, by: str, **changes: Any) -> None:
    """Revise some fields of the content (a field given as None stays as it is); voids approvals."""
    item = app.broadcast(broadcast_id)
    current = item.content().as_event_kwargs()
    merged = {k: v for k, v in current.items() if k != "scope"} | {k: v for k, v in changes.items() if v is not None}
    merged["scope"] = app.scope_of(merged["target_areas"], merged["target_endpoints"])
    built = build_content(now=app.clock(), limits=app.limits, **merged)
    item.revise(built, by=app.staff(by))
    app.save_changes(item)


def _act(app: Keng, broadcast_id: UUID, action: Callable[[Broadcast], object]) -> None:
    item = app.broadcast(broadcast_id)
    action(item)
    app.save_changes(item)


def submit(app: Keng, broadcast_id: UUID, *, by: str) -> None:
    """Submit for approval."""
    actor = app.staff(by)
    _act(app, broadcast_id, lambda b: b.submit(by=actor))


def approve(app: Keng, broadcast_id: UUID, *, by: str) -> None:
    """Approve the current revision (never the drafter's own)."""
    actor, now = app.staff(by), app.clock()
    _act(app, broadcast_id, lambda b: b.approve(by=actor, now=now))


def ratify(app: Keng, broadcast_id: UUID, *, by: str) -> None:
    """Ratify a standing-order approval (also once the broadcast has finished)."""
    actor = app.staff(by)
    _act(app, broadcast_id, lambda b: b.ratify(by=actor))


def retract(app: Keng, broadcast_id: UUID, *, by: str, reason: str) -> bool:
    """Retract a standing-order approval (also once the broadcast has finished; a live one is cancelled with it);
    returns True when devices must be told to stop."""
    actor = app.staff(by)
    item = app.broadcast(broadcast_id)
    stop = item.retract(by=actor, reason=reason)
    app.save_changes(item)
    return stop


def reject(app: Keng, broadcast_id: UUID, *, by: str, reason: str) -> None:
    """Reject a submitted broadcast."""
    actor = app.staff(by)
    _act(app, broadcast_id, lambda b: b.reject(by=actor, reason=reason))


def cancel(app: Keng, broadcast_id: UUID, *, by: str, reason: str) -> bool:
    """Cancel; returns True when devices must be told to stop."""
    actor = app.staff(by)
    item = app.broadcast(broadcast_id)
    stop = item.cancel(by=actor, reason=reason)
    app.save_changes(item)
    return stop


def act(app: Keng, broadcast_id: UUID, action: str, *, by: str, reason: str = "") -> bool:
    """One of `ACTIONS` named by a caller (an API path, a CLI verb); returns True when devices must be told to stop."""
    if action == "submit":
        submit(app, broadcast_id, by=by)
    elif action == "approve":
        approve(app, broadcast_id, by=by)
    elif action == "ratify":
        ratify(app, broadcast_id, by=by)
    elif action == "retract":
        return retract(app, broadcast_id, by=by, reason=reason)
    elif action == "reject":
        reject(app, broadcast_id, by=by, reason=reason)
    elif action == "cancel":
        return cancel(app, broadcast_id, by=by, reason=reason)
    else:
        raise ValueError(f"{action!r} is not one of {', '.join(ACTIONS)}")
    return False


# -- reads ----------------------------------------------------------------------------------------------------------


def readable(app: Keng, broadcast_id: UUID, reader: Visibility) -> Broadcast:
    """The broadcast if the reader's scope reaches it; NotFound otherwise, as if it did not exist."""
    item = app.broadcast(broadcast_id)
    if not reader.sees(item.scope):
        raise NotFound(f"broadcast {broadcast_id} not found")
    return item


def readable_list(catalog: Catalog, reader: Visibility, *, state: str | None = None) -> list[Broadcast]:
    """The broadcasts (in a state, when given) that the reader's scope reaches, newest first."""
    return [b for b in catalog.broadcasts(state=state) if reader.sees(b.scope)]


@dataclass(frozen=True)
class Unratified:
    """A broadcast approved by a standing order and waiting for a person's ratification, with its deadline."""

    broadcast: Broadcast
    due: datetime | None
    overdue: bool


def awaiting_ratification(items: list[Broadcast], *, within: timedelta, now: datetime) -> list[Unratified]:
    """Those of `items` that await ratification, each with its deadline and whether it has passed at `now`."""
    found = []
    for b in items:
        if b.awaiting_ratification:
            due = b.ratification_due(within)
            found.append(Unratified(b, due, bool(due and due < now)))
    return found


def resolve_id(app: Keng, ref: str) -> UUID:
    """A full broadcast id, or the one broadcast whose id starts with `ref` (at least 6 hex digits; the log is read
    only for a prefix)."""
    try:
        return UUID(ref)
    except ValueError:
        pass
    prefix = ref.replace("-", "").lower()
    if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
        raise NotFound(f"{ref!r} is not a broadcast id (give the id or at least its first 6 hex digits)")
    matches = [b.id for b in Catalog().fold(app.read_events()).of_type(Broadcast) if b.id.hex.startswith(prefix)]
    if len(matches) != 1:
        raise NotFound(f"{len(matches)} broadcasts have ids starting with {ref!r}; give more digits")
    return matches[0]
