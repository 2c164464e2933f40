"""Composition for read models and the audit trail: where the live read store lives, catching it up, auditor checks.

Live read store: with an SQLite event store, its own SQLite file beside it (`<events file>.readmodels.db`, so that
projection writes never wait on the event writer); with PostgreSQL, `rm_*` tables in the event store's schema.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog
from eventsourcing.persistence import IntegrityError

from keng.adapters.readstore.source import FactSource
from keng.adapters.readstore.sql import SqlDb
from keng.adapters.readstore.store import ReadStore
from keng.adapters.store.app import Keng
from keng.domain.errors import NotAuthorised
from keng.domain.staff import Staff
from keng.domain.values import Role
from keng.projections.fold import FORMAT
from keng.projections.runner import META, run_facts

# Events per read-model transaction when catching up or rebuilding: fewer, larger commits write each busy document
# once per batch instead of once per few thousand events.
REBUILD_BATCH = 20_000
log = structlog.get_logger(__name__)
T = TypeVar("T")


def live_store(app: Keng) -> ReadStore:
    """The live read store; one folded by a keng whose documents had another format is emptied, so that the next
    catch-up rebuilds it by replay."""
    db = SqlDb.of_app(app)
    if db.kind == "postgres":
        store = ReadStore(db)
    else:
        events = Path(db.datastore.pool.db_name)
        store = ReadStore.sqlite_file(events.with_name(events.name + ".readmodels.db"))
    if store.position() and store.load(*META) != {"format": FORMAT}:
        store.clear()
    return store


def events_table(app: Keng) -> str:
    """Name of the application's event table (the recorder knows it; the base class does not declare it)."""
    return str(app.recorder.events_table_name)  # type: ignore[attr-defined]


def catch_up(app: Keng, store: ReadStore) -> int:
    """Fold every event recorded since the store's tracked position; returns how many.

    Another process catching up the same store at the same time makes one commit fail on its tracking record (the
    position was already taken): nothing of that batch is kept, and the catch-up simply starts again from the new
    position."""
    source = FactSource.of_app(app)
    try:
        return run_facts(source.facts(store.position()), store, batch_size=REBUILD_BATCH)
    except IntegrityError:
        return run_facts(source.facts(store.position()), store, batch_size=REBUILD_BATCH)


def caught_up(app: Keng) -> ReadStore:
    """The live read store, brought up to the newest event."""
    store = live_store(app)
    try:
        catch_up(app, store)
    except BaseException:
        store.close()
        raise
    return store


class LiveReadModels:
    """The service's live read store: opened on first use, caught up before every query, one query at a time.

    Queries run on this object's own worker thread, so that a long first catch-up (a rebuild) keeps report requests
    waiting there and never takes the threads the rest of the service runs its store work on."""

    def __init__(self, app: Keng) -> None:
        self.app = app
        self._store: ReadStore | None = None
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-models")  # started on first use

    def query(self, fn: Callable[[ReadStore], T]) -> T:
        """Bring the read models up to the newest event, then answer `fn` from them (blocking)."""
        with self._lock:
            if self._store is None:
                self._store = live_store(self.app)
            catch_up(self.app, self._store)
            return fn(self._store)

    async def ask(self, fn: Callable[[ReadStore], T]) -> T:
        """`query` from asyncio, on the worker thread (the event loop never waits on the store)."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, self.query, fn)

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class LogFollower:
    """Keeps the live read models following the log as events are recorded, by any process: on PostgreSQL through
    the library's subscription (LISTEN/NOTIFY on the events table's channel), so that an API replica whose neighbours
    write answers its next query with nothing left to fold. Queries still catch up first (read-your-writes within a
    process); this only moves the folding off the query path. On SQLite (one machine, one service) it does nothing.

    The subscription wakes it; each wake folds everything recorded so far (one catch-up, however many events), and
    notifications it has already folded are skipped. A lost connection is retried after a pause."""

    RETRY_S = 2.0

    def __init__(self, models: LiveReadModels) -> None:
        self.models = models
        self.position = 0
        self.folds = 0
        self._stop = threading.Event()
        self._subscription: Any = None
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return SqlDb.of_app(self.models.app).kind == "postgres"

    def start(self) -> None:
        if self.active and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="read-models-follower", daemon=True)
            self._thread.start()

    def _fold(self) -> None:
        self.position = self.models.query(lambda store: store.position())
        self.folds += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._fold()
                with self.models.app.recorder.subscribe(gt=self.position) as subscription:
                    self._subscription = subscription
                    if self._stop.is_set():
                        return
                    for notification in subscription:
                        if notification.id > self.position:
                            self._fold()
            except Exception as e:
                if self._stop.is_set():
                    return
                log.warning("readmodels.follow_failed", error=f"{type(e).__name__}: {e}", retry_in_s=self.RETRY_S)
            self._stop.wait(self.RETRY_S)

    def stop(self) -> None:
        self._stop.set()
        if self._subscription is not None:
            self._subscription.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def follower_context(models: LiveReadModels) -> Callable[[Any], AsyncIterator[None]]:
    """A cleanup context running a `LogFollower` beside the HTTP service."""

    async def context(_: Any) -> AsyncIterator[None]:
        follower = LogFollower(models)
        follower.start()
        try:
            yield
        finally:
            await asyncio.to_thread(follower.stop)

    return context


def check_auditor(member: Staff) -> None:
    """Reports and audit are for the auditor role and up (admin)."""
    if not (member.has_role(Role.AUDITOR) or member.has_role(Role.ADMIN)):
        raise NotAuthorised(
            f"rule {NotAuthorised.rule}: {member.handle} cannot read reports: the auditor role is required"
        )


def require_auditor(app: Keng, handle: str) -> None:
    """Reports and audit are for the auditor role and up (admin)."""
    check_auditor(app.staff(handle))
