"""Which dispatch work is this worker's: slots leased in the store's database (adapters/store/leases.py).

A broadcast belongs to the slot of its partition key, its first ward (`partition_key`): its dispatches are opened,
delivered, resent and closed by the worker holding that slot, and an endpoint's status changes are recorded by the
worker holding its ward's slot. Programme occurrences, delivery reports and pushes are made by the worker holding
slot 0 (the leader).

`Partitions.run` ticks the leases on a thread of its own (a busy store thread never delays a renewal) and calls
`on_change(gained, dropped)` after each change; the caller stops working on dropped slots before they are given back
(surplus after a join) and works on gained ones from the log. When the database cannot be reached, the worker keeps
its slots only until its last renewal's lease would have expired less a margin, then drops them all: by then another
worker may take them, and two must never work on one slot.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import structlog

from keng.adapters.store.leases import Leases, Tick, slot_of

log = structlog.get_logger(__name__)
OnChange = Callable[[frozenset[int], frozenset[int]], Awaitable[None]]
DEFAULT_SLOTS = 64
DEFAULT_TTL_S = 3.0


def worker_name() -> str:
    """This process's name in the lease tables: host, pid and a random part (a restarted process is a new worker)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def partition_key(scope: Iterable[str]) -> str:
    """A broadcast's partition key: its first target area code (its ward, for a ward's broadcast)."""
    return min(scope, default="")


class Partitions:
    """The slots this worker may work on. Without leases (tests, a lone in-process dispatcher) it owns them all."""

    def __init__(self, leases: Leases | None = None, *, tick_s: float = 0.5, margin_s: float = 0.75) -> None:
        self.leases = leases
        self.slots = leases.slots if leases else 1
        self.tick_s = tick_s
        self.margin_s = margin_s
        self.owned: frozenset[int] = frozenset() if leases else frozenset({0})
        self.workers: tuple[str, ...] = ()
        self.changes = 0
        self.first_tick = asyncio.Event()
        if leases is None:
            self.first_tick.set()
        self._surplus: frozenset[int] = frozenset()
        self._valid_until = 0.0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keng-leases")

    @property
    def worker(self) -> str:
        return self.leases.worker if self.leases else "local"

    def slot(self, key: str) -> int:
        return slot_of(key, self.slots) if self.leases else 0

    def owns(self, key: str) -> bool:
        """Whether the work of a partition key is this worker's now: its slot is held and its lease still runs.
        Checked here, not only by the ticking loop: a process that was paused (starved of CPU, a long collection, a
        stopped machine) must not act on slots another worker may hold by now in the moment before that loop runs
        again and drops them."""
        return self.leases is None or (slot_of(key, self.slots) in self.owned and self._valid())

    @property
    def leader(self) -> bool:
        """The holder of slot 0 makes what only one worker may make (programme occurrences, reports, pushes)."""
        return 0 in self.owned and (self.leases is None or self._valid())

    def _valid(self) -> bool:
        return time.monotonic() < self._valid_until

    async def _call(self, fn: Callable[..., Tick], *args: object) -> Tick:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _expire(self, on_change: OnChange) -> None:
        if self.owned:
            dropped, self.owned = self.owned, frozenset()
            self._surplus = frozenset()
            self.changes += 1
            log.warning("leases.expired_locally", worker=self.worker, dropped=len(dropped))
            await on_change(frozenset(), dropped)

    async def _apply(self, tick: Tick, on_change: OnChange) -> None:
        self.workers = tick.workers
        mine = tick.held - tick.surplus
        gained, dropped = mine - self.owned, self.owned - mine
        self._surplus = tick.surplus  # given back at the next tick, once the caller has let go of it
        self.owned = mine
        if gained or dropped:
            self.changes += 1
            log.info(
                "leases.changed",
                worker=self.worker,
                owned=len(mine),
                gained=len(gained),
                dropped=len(dropped),
                lost=len(tick.lost),
                workers=len(tick.workers),
            )
            await on_change(gained, dropped)
        self.first_tick.set()

    async def run(self, on_change: OnChange) -> None:
        """Tick until cancelled; on cancellation give every slot back (a clean stop hands over at once)."""
        if self.leases is None:
            return
        leases = self.leases
        await asyncio.get_running_loop().run_in_executor(self._thread, leases.ensure)
        pending: asyncio.Future[Tick] | None = None
        submitted = 0.0
        try:
            while True:
                started = time.monotonic()
                if pending is None:
                    submitted = started
                    pending = asyncio.ensure_future(self._call(leases.tick, self._surplus))
                # A hung database call must not hold the slots past their lease: wait no longer than it lasts.
                wait = max(0.05, self._valid_until - started) if self.owned else None
                try:
                    tick = await asyncio.wait_for(asyncio.shield(pending), wait)
                except TimeoutError:
                    await self._expire(on_change)
                    continue
                except Exception as e:  # the database is away: keep the slots only while their leases last
                    pending = None
                    log.warning("leases.tick_failed", worker=leases.worker, error=f"{type(e).__name__}: {e}")
                    if time.monotonic() >= self._valid_until:
                        await self._expire(on_change)
                else:
                    pending = None
                    valid_until = submitted + leases.ttl_s - self.margin_s  # renewed no earlier
                    if self.owned and not self._valid():
                        # Paused past the lease (the timeout above never fired): what came in meanwhile was not
                        # worked on (`owns`), so the slots are dropped here and gained again, worked on from the log.
                        await self._expire(on_change)
                    if time.monotonic() >= valid_until:
                        continue  # an answer too old to act on (its renewal may have run out already): tick again
                    self._valid_until = valid_until
                    await self._apply(tick, on_change)
                await asyncio.sleep(max(0.0, self.tick_s - (time.monotonic() - started)))
        finally:
            self.owned = frozenset()
            try:
                await asyncio.shield(asyncio.get_running_loop().run_in_executor(self._thread, leases.release_all))
            except Exception as e:
                log.warning("leases.release_failed", worker=leases.worker, error=f"{type(e).__name__}: {e}")
            self._thread.shutdown(wait=False)
