"""Which live-stream events a reader may see: the read rule of domain/authority.py (`Visibility`) applied per event.

A broadcast's events are visible iff its scope is; a dispatch's iff its broadcast's; an endpoint's iff its ward is.
The stream may carry thousands of events a second during a dispatch, so the facts the rule needs are learnt from the
events as they pass (a broadcast's scope from Drafted and Revised, a dispatch's broadcast from Opened, an endpoint's
ward from Registered and Reassigned), looked up in the store only for aggregates that began before the stream did,
and the verdict is cached per broadcast and per endpoint. Each of these memories holds the `KEEP` most recently used
entries (a stream lives for hours and sees every broadcast): one forgotten is read again from the store when an event
of it comes by. Blocking (it may read the store): call it off the event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar
from uuid import UUID

from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.authority import Visibility
from keng.domain.endpoint import Endpoint

K = TypeVar("K")
V = TypeVar("V")
KEEP = 2048  # entries in each memory of a stream's scope


class Recent(Generic[K, V]):
    """A map that holds the `size` most recently used entries, forgetting the least recently used beyond them."""

    def __init__(self, size: int = KEEP) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()


def _kind(event: Any) -> tuple[str, str]:
    aggregate, _, name = type(event).__qualname__.rpartition(".")
    return aggregate, name


class StreamScope:
    """The events one reader may see; `visibility` can change while the stream runs (a role granted or revoked)."""

    def __init__(self, app: Keng, visibility: Visibility, *, keep: int = KEEP) -> None:
        self.app = app
        self.visibility = visibility
        self._scopes: Recent[UUID, frozenset[str]] = Recent(keep)  # broadcast -> scope
        self._owners: Recent[UUID, UUID] = Recent(keep)  # dispatch -> broadcast
        self._wards: Recent[UUID, str] = Recent(keep)  # endpoint -> ward
        self._verdicts: Recent[UUID, bool] = Recent(keep)  # broadcast or endpoint -> visible

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
                self._owners.put(event.originator_id, event.broadcast_id)
            return self._sees_broadcast(self._owner(event.originator_id))
        if aggregate == "Endpoint":
            if name not in ("Registered", "Reassigned"):
                return self._sees_endpoint(event.originator_id)
            # A reassignment (a reorganisation of areas) is shown to the readers of the ward it leaves and enters.
            before = name == "Reassigned" and self._sees_endpoint(event.originator_id)
            self._wards.put(event.originator_id, event.ward)
            self._verdicts.pop(event.originator_id)
            return self._sees_endpoint(event.originator_id) or before
        return self.visibility.everything

    def _broadcast_event(self, event: Any, name: str) -> bool:
        bid = event.originator_id
        if name not in ("Drafted", "Revised"):
            return self._sees_broadcast(bid)
        # A revision is shown to those who saw the broadcast before it as well as to those who see it now.
        before = name == "Revised" and self._sees_broadcast(bid)
        self._scopes.put(bid, frozenset(event.scope))
        self._verdicts.pop(bid)
        return self._sees_broadcast(bid) or before

    def _sees_broadcast(self, bid: UUID | None) -> bool:
        if self.visibility.everything:
            return True
        if bid is None:
            return False
        verdict = self._verdicts.get(bid)
        if verdict is None:
            verdict = self._verdicts.put(bid, self.visibility.sees(self._scope(bid)))
        return verdict

    def _sees_endpoint(self, eid: UUID) -> bool:
        if self.visibility.everything:
            return True
        verdict = self._verdicts.get(eid)
        if verdict is None:
            ward = self._wards.get(eid)
            if ward is None:
                try:
                    ward = self._wards.put(eid, self.app.load(Endpoint, eid, "endpoint").ward)
                except NotFound:
                    return False
            verdict = self._verdicts.put(eid, self.visibility.sees((ward,)))
        return verdict

    def _scope(self, bid: UUID) -> frozenset[str]:
        scope = self._scopes.get(bid)
        if scope is None:
            try:
                scope = self._scopes.put(bid, frozenset(self.app.broadcast(bid).scope))
            except NotFound:
                return frozenset()
        return scope

    def _owner(self, did: UUID) -> UUID | None:
        owner = self._owners.get(did)
        if owner is None:
            first = next(iter(self.app.events.get(did, lte=1)), None)  # Opened names the broadcast
            if first is None:
                return None
            owner = self._owners.put(did, first.broadcast_id)  # type: ignore[attr-defined]
        return owner
