"""Runs the folding functions over the event log into a tracked store, a batch at a time.

Each batch's documents, timeline rows and tracking position are committed in one transaction by the store (through
the library's tracking recorder), so a read model is updated exactly once per event: after a crash, uncommitted work
is simply gone and the runner resumes from the tracked position. The same runner builds the live models and as-of
replays; only the event source differs.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

from keng.domain.broadcast import FINAL_STATES
from keng.projections.facts import Fact, facts_of
from keng.projections.fold import FORMAT, Doc, Row, fold

# Documents kept between batches. Hot, small kinds (inventory, staff, the kpi counters) stay; finished broadcasts and
# closed dispatches (large: every ack) are dropped at each commit, and everything else beyond the limit as well.
CACHE_LIMIT = 20_000
META = ("meta", "format")
_FINISHED = frozenset(FINAL_STATES)


class TrackedStore(Protocol):
    """Persistent read-model state with its tracking position."""

    def position(self) -> int: ...

    def load(self, kind: str, key: str) -> Doc | None: ...

    def commit(self, docs: dict[tuple[str, str], Doc], rows: list[Row], position: int) -> None: ...


class Batch:
    """The `Docs` of one run: reads through to the store, keeps writes until `flush`."""

    def __init__(self, store: TrackedStore) -> None:
        self.store = store
        self.cache: dict[tuple[str, str], Doc | None] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.rows: list[Row] = []

    def get(self, kind: str, key: str) -> Doc | None:
        k = (kind, key)
        try:
            return self.cache[k]
        except KeyError:
            doc = self.cache[k] = self.store.load(kind, key)
            return doc

    def put(self, kind: str, key: str, doc: Doc) -> None:
        k = (kind, key)
        self.cache[k] = doc
        self.dirty.add(k)

    def note(self, row: Row) -> None:
        self.rows.append(row)

    def flush(self, position: int) -> None:
        docs: dict[tuple[str, str], Any] = {k: self.cache[k] for k in self.dirty}
        docs[META] = {"format": FORMAT}  # which fold wrote these documents
        self.store.commit(docs, self.rows, position)
        self.dirty, self.rows = set(), []
        self._evict()

    def _evict(self) -> None:
        cache = self.cache
        done = [k for k, d in cache.items() if d is not None and _finished(k[0], d)]
        for k in done:
            del cache[k]
        if len(cache) > CACHE_LIMIT:
            for k in [k for k in cache if k[0] in ("broadcast", "dispatch")]:
                del cache[k]
        if len(cache) > CACHE_LIMIT:
            cache.clear()


def _finished(kind: str, doc: Doc) -> bool:
    if kind == "dispatch":
        return doc["closed_at"] is not None
    return kind == "broadcast" and doc["state"] in _FINISHED


class _Collector:
    lock = threading.Lock()
    runs = 0  # runs in progress
    saved: tuple[int, ...] = (700, 10, 10)  # the thresholds to restore after the last one


@contextmanager
def _gc_relaxed() -> Iterator[None]:
    """Run the cyclic garbage collector about 100 times less often while folding: a rebuild allocates millions of
    small containers, none in a cycle (reference counting frees them), and with the default thresholds the collector
    took about a tenth of a rebuild. It still runs; the previous thresholds come back after the last run ends."""
    with _Collector.lock:
        if _Collector.runs == 0:
            _Collector.saved = gc.get_threshold()
            gc.set_threshold(100_000, 50, 100)
        _Collector.runs += 1
    try:
        yield
    finally:
        with _Collector.lock:
            _Collector.runs -= 1
            if _Collector.runs == 0:
                gc.set_threshold(*_Collector.saved)


def run_facts(facts: Iterable[Fact], store: TrackedStore, *, batch_size: int = 5000) -> int:
    """Fold facts into the store, committing every `batch_size` events; returns how many were folded."""
    batch, count, last = Batch(store), 0, 0
    with _gc_relaxed():
        for f in facts:
            fold(f, batch)
            count += 1
            if count % batch_size == 0:
                batch.flush(f.position)
            last = f.position
        if count % batch_size:
            batch.flush(last)
    return count


def run(events: Iterable[tuple[int, Any]], store: TrackedStore, *, batch_size: int = 5000) -> int:
    """Fold (position, domain event) pairs into the store (see `run_facts`)."""
    return run_facts(facts_of(events), store, batch_size=batch_size)


def until(events: Iterable[tuple[int, Any]], as_of: datetime) -> Iterator[tuple[int, Any]]:
    """The prefix of the log recorded at or before `as_of` (stops at the first later event)."""
    for position, event in events:
        if event.timestamp > as_of:
            return
        yield position, event
