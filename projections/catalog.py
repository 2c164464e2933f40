"""An in-memory catalogue of current aggregate states, folded from the event log with the domain's own `apply` code.

It serves the CLI's list commands on small and medium stores (a district: thousands of aggregates); the tracked,
persistent read models for the service live beside it. Folding with `event.mutate` means the catalogue can never
disagree with what the repository would reconstruct.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from keng.domain.area import Area
from keng.domain.area_registry import AreaRegistry, AreaView
from keng.domain.broadcast import Broadcast
from keng.domain.endpoint import Endpoint
from keng.domain.staff import Staff

A = TypeVar("A", bound=Aggregate)


@dataclass
class Catalog:
    """Current state of every aggregate, by id, as of the last position folded in."""

    aggregates: dict[UUID, Aggregate] = field(default_factory=dict)
    position: int = 0
    _registry: AreaRegistry | None = field(default=None, init=False, repr=False, compare=False)

    def fold(self, events: Iterable[tuple[int, Any]]) -> Catalog:
        """Apply (position, event) pairs in order."""
        for position, event in events:
            current = self.aggregates.get(event.originator_id)
            updated = event.mutate(current)
            if updated is not None:
                self.aggregates[event.originator_id] = updated
                if isinstance(updated, Area):
                    self._registry = None
            self.position = position
        return self

    def of_type(self, kind: type[A]) -> list[A]:
        """All aggregates of one type, in creation order."""
        return [a for a in self.aggregates.values() if isinstance(a, kind)]

    def staff(self) -> list[Staff]:
        """Staff members by handle."""
        return sorted(self.of_type(Staff), key=lambda s: s.handle)

    def area_registry(self) -> AreaRegistry:
        """Every area unit ever recorded, answering by instant (kept until an area event is folded)."""
        if self._registry is None:
            self._registry = AreaRegistry(self.of_type(Area))
        return self._registry

    def areas(self, at: datetime | None = None) -> list[AreaView]:
        """The units in force at the instant `at` (default: now), by code, each as it was then."""
        return list(self.area_registry().in_force(at or datetime.now(UTC)))

    def endpoints(self, *, ward: str | None = None, kind: str | None = None) -> list[Endpoint]:
        """Endpoints by code, optionally filtered by ward and kind."""
        return sorted(
            (
                e
                for e in self.of_type(Endpoint)
                if (ward is None or e.ward == ward) and (kind is None or e.kind == kind)
            ),
            key=lambda e: e.code,
        )

    def broadcasts(self, *, state: str | None = None) -> list[Broadcast]:
        """Broadcasts, newest first, optionally filtered by state."""
        items = [b for b in self.of_type(Broadcast) if state is None or b.state == state]
        return sorted(items, key=lambda b: b.created_on, reverse=True)
