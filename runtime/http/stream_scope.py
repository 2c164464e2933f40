"""Which live-stream events a reader may see: the read rule of domain/authority.py (`Visibility`) applied per event.

A broadcast's events are visible iff its scope is; a dispatch's iff its broadcast's; an endpoint's iff its ward is.
The stream may carry thousands of events a second during a dispatch, so the facts the rule needs are learnt from the
events as they pass (a broadcast's scope from Drafted and Revised, a dispatch's broadcast from Opened, an endpoint's
ward from Registered and Reassigned), looked up in the store only for aggregates that began before the stream did,
and the verdict is cached per broadcast and per endpoint. Blocking (it may read the store): call it off the event loop.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.authority import Visibility
from keng.domain.endpoint import Endpoint


def _kind(event: Any) -> tuple[str, str]:
    aggregate, _, name = type(event).__qualname__.rpartition(".")
    return aggregate, name


class StreamScope:
    """The events one reader may see; `visibility` can change while the stream runs (a role granted or revoked)."""

    def __init__(self, app: Keng, visibility: Visibility) -> None:
        self.app = app
        self.visibility = visibility
        self._scopes: dict[UUID, frozenset[str]] = {}  # broadcast -> scope
        self._owners: dict[UUID, UUID] = {}  # dispatch -> broadcast
        self._wards: dict[UUID, str] = {}  # endpoint -> ward
        self._verdicts: dict[UUID, bool] = {}  # broadcast or endpoint -> visible

    def update(self, visibility: Visibility) -> None:
        """Apply a new reading scope (cached verdicts are dropped when it changed)."""
        if visibility != self.visibility:
            self.visibility = visibility
            self._verdicts.clear()

    def admits(self, event: Any) -> bool:
        """True if the reader may see this event (one of those the stream carries)."""
        aggregate, name = _kind(event)
        if aggregate == "Broadcast":
            return self._broadcast_event(event, name)
        if aggregate == "Dispatch":
            if name == "Opened":
                self._owners[event.originator_id] = event.broadcast_id
            return self._sees_broadcast(self._owner(event.originator_id))
        if aggregate == "Endpoint":
            if name not in ("Registered", "Reassigned"):
                return self._sees_endpoint(event.originator_id)
            # A reassignment (a reorganisation of areas) is shown to the readers of the ward it leaves and enters.
            before = name == "Reassigned" and self._sees_endpoint(event.originator_id)
            self._wards[event.originator_id] = event.ward
            self._verdicts.pop(event.originator_id, None)
            return self._sees_endpoint(event.originator_id) or before
        return self.visibility.everything

    def _broadcast_event(self, event: Any, name: str) -> bool:
        bid = event.originator_id
        if name not in ("Drafted", "Revised"):
            return self._sees_broadcast(bid)
        # A revision is shown to those who saw the broadcast before it as well as to those who see it now.
        before = name == "Revised" and self._sees_broadcast(bid)
        self._scopes[bid] = frozenset(event.scope)
        self._verdicts.pop(bid, None)
        return self._sees_broadcast(bid) or before

    def _sees_broadcast(self, bid: UUID | None) -> bool:
        if self.visibility.everything:
            return True
        if bid is None:
            return False
        verdict = self._verdicts.get(bid)
        if verdict is None:
            verdict = self._verdicts[bid] = self.visibility.sees(self._scope(bid))
        return verdict

    def _sees_endpoint(self, eid: UUID) -> bool:
        if self.visibility.everything:
            return True
        verdict = self._verdicts.get(eid)
        if verdict is None:
            ward = self._wards.get(eid)
            if ward is None:
                try:
                    ward = self._wards[eid] = self.app.load(Endpoint, eid, "endpoint").ward
                except NotFound:
                    return False
            verdict = self._verdicts[eid] = self.visibility.sees((ward,))
        return verdict

    def _scope(self, bid: UUID) -> frozenset[str]:
        scope = self._scopes.get(bid)
        if scope is None:
            try:
                scope = self._scopes[bid] = frozenset(self.app.broadcast(bid).scope)
            except NotFound:
                return frozenset()
        return scope

    def _owner(self, did: UUID) -> UUID | None:
        owner = self._owners.get(did)
        if owner is None:
            first = next(iter(self.app.events.get(did, lte=1)), None)  # Opened names the broadcast
            if first is None:
                return None
            owner = self._owners[did] = first.broadcast_id  # type: ignore[attr-defined]
        return owner
