"""The running service signs audit checkpoints itself: at start (covering what CLI commands recorded while it was
stopped), at least every `interval_s` while new events arrive, as soon as `every` events are waiting, and once more on
a clean stop, so that after SIGTERM or SIGINT `keng audit verify` reports 0 unsealed events.

Events are linked into the chain as they commit (the store's recorders do it in the inserting transaction); this only
signs. It polls the chain's head once a second (one indexed read) and signs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from keng.adapters.audit.chain import head_position, newest_checkpoint, seal
from keng.adapters.audit.keys import Signer, load_or_create
from keng.adapters.readstore.sql import SqlDb
from keng.adapters.store.app import Keng
from keng.runtime.config import Settings
from keng.runtime.workers.readmodels import events_table

log = structlog.get_logger(__name__)
CHECKPOINT_EVERY = 10_000


class Sealer:
    """Decides when to sign and signs; one per process that writes the store."""

    def __init__(
        self,
        app: Keng,
        signer: Signer,
        *,
        interval_s: float = 60.0,
        every: int = CHECKPOINT_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db, self.events_table, self.signer = SqlDb.of_app(app), events_table(app), signer
        self.interval_s, self.every, self.clock = interval_s, every, clock
        self._sealed_at = clock()
        self._position = 0

    def due(self) -> bool:
        """True when events wait for a checkpoint and either `every` of them do or `interval_s` has passed."""
        waiting = head_position(self.db) - self._position  # positions may have gaps: this errs towards sealing early
        return waiting > 0 and (waiting >= self.every or self.clock() - self._sealed_at >= self.interval_s)

    def seal(self) -> int:
        """Link anything unlinked, sign checkpoints up to the head; returns the events newly covered."""
        started = time.perf_counter()
        covered = seal(self.db, self.events_table, self.signer, checkpoint_every=self.every)
        self._position, _ = newest_checkpoint(self.db)
        self._sealed_at = self.clock()
        if covered:
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            log.info("audit.checkpoint_signed", events=covered, position=self._position, latency_ms=elapsed_ms)
        return covered

    def step(self) -> int:
        """Seal when due; returns the events newly covered."""
        return self.seal() if self.due() else 0

    async def run(self, poll_s: float = 1.0, patience_s: float = 30.0) -> None:
        """Poll until cancelled. A failed round (the database busy or briefly unreachable: a restart, a failover) is
        logged as a warning and retried at the next poll: the events stay linked, and only their checkpoint waits.
        Rounds that have kept failing for `patience_s` are logged as errors, with the exception."""
        failing_since: float | None = None
        while True:
            await asyncio.sleep(poll_s)
            try:
                await asyncio.to_thread(self.step)
            except Exception as e:
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= patience_s:
                    log.exception("audit.checkpoint_failed", retry_in_s=poll_s, failing_s=round(now - failing_since, 1))
                else:
                    log.warning("audit.checkpoint_failed", retry_in_s=poll_s, error=f"{type(e).__name__}: {e}"[:500])
            else:
                failing_since = None


def sealer_for(app: Keng, settings: Settings) -> Sealer:
    """A sealer with the district key from the data directory (created on first use) and the configured interval."""
    return Sealer(app, load_or_create(settings.data_dir), interval_s=settings.audit_seal_interval_s)


@contextlib.asynccontextmanager
async def sealing(sealer: Sealer) -> AsyncIterator[None]:
    """Seal at start, keep sealing in the background, seal once more at the end (after the caller's writers stop)."""
    await asyncio.to_thread(sealer.seal)
    task = asyncio.create_task(sealer.run(), name="keng-audit-sealer")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(sealer.seal)


def sealer_context(app: Keng, settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context for `keng serve`; register it first so that it is cleaned up last, after the group
    committer and the dispatcher have written their final events."""

    async def context(_: web.Application) -> AsyncIterator[None]:
        async with sealing(sealer_for(app, settings)):
            yield

    return context
