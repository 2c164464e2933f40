"""Bounded priority lanes: one bounded lane per priority rank, highest priority popped first.

Why lanes instead of one bounded priority queue: with a single bound, a backlog of 50,000 routine commands fills the
queue and the emergency that arrives next cannot even be queued (priority inversion by back-pressure). Each rank has
its own capacity, so an emergency is always accepted and always popped before anything of lower rank. Within a rank,
commands leave in (order, arrival) order; `order` carries a ward's explicit programme ordering when it has one.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class PriorityLanes(Generic[T]):
    """Bounded lanes keyed by rank (0 = most urgent). Pure data structure: no clocks, no asyncio."""

    def __init__(self, capacity: Mapping[int, int]) -> None:
        """`capacity` gives each rank's bound; ranks not listed cannot be pushed."""
        if not capacity or any(c < 1 for c in capacity.values()):
            raise ValueError("every lane needs a capacity of at least 1")
        self._capacity = dict(capacity)
        self._lanes: dict[int, list[tuple[int, int, T]]] = {rank: [] for rank in capacity}
        self._ranks = sorted(capacity)
        self._counter = itertools.count()

    def push(self, rank: int, item: T, order: int = 0) -> bool:
        """Queue an item; False (and nothing queued) when its lane is full or the rank is unknown."""
        lane = self._lanes.get(rank)
        if lane is None or len(lane) >= self._capacity[rank]:
            return False
        heapq.heappush(lane, (order, next(self._counter), item))
        return True

    def pop(self) -> T | None:
        """The next item: the most urgent rank first, then lowest order, then first in. None when empty."""
        for rank in self._ranks:
            lane = self._lanes[rank]
            if lane:
                return heapq.heappop(lane)[2]
        return None

    def remove_where(self, predicate: Callable[[T], bool]) -> int:
        """Drop queued items matching `predicate` (a cancelled or expired broadcast); returns how many."""
        dropped = 0
        for rank in self._ranks:
            lane = self._lanes[rank]
            kept = [entry for entry in lane if not predicate(entry[2])]
            if len(kept) != len(lane):
                dropped += len(lane) - len(kept)
                heapq.heapify(kept)
                self._lanes[rank] = kept
        return dropped

    def depth(self, rank: int) -> int:
        """Items queued at one rank."""
        return len(self._lanes.get(rank, ()))

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())
