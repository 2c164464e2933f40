"""Group commit: many requests' records saved in one transaction, each caller answered only after that commit.

A durable commit (fsync) costs milliseconds whatever it holds, so under load one writer thread takes everything
queued (up to `max_batch` submissions) and saves it in one transaction. If that transaction is refused (one
submission duplicates a stored record), each submission of the batch is saved on its own, so that only the offending
one fails. The queue is bounded: when it is full, `submit` refuses at once instead of letting latency grow unbounded.
Hand-written because the eventsourcing library saves one call's aggregates per transaction and has no batching of
independent callers.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.domain import Aggregate

from keng.adapters.store.app import Keng


class Overloaded(RuntimeError):
    """The write queue is full; the caller should answer 503 and let the sender retry."""


@dataclass
class _Submission:
    events: list[Any]  # collected once: a failed save must not lose them (collecting empties an aggregate)
    what: str
    done: Future[None] = field(default_factory=Future)


class GroupCommitter:
    """One writer thread saving queued submissions in shared transactions."""

    def __init__(self, app: Keng, *, max_batch: int = 256, max_queue: int = 10_000) -> None:
        self.app, self.max_batch = app, max_batch
        self._queue: queue.Queue[_Submission | None] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name="keng-group-commit", daemon=True)
        self._thread.start()
        self.batches = 0
        self.saved = 0

    def submit(self, *aggregates: Aggregate, what: str) -> Future[None]:
        """Queue new aggregates for saving; the future resolves after their commit (or with DuplicateRecord)."""
        item = _Submission([e for a in aggregates for e in a.collect_events()], what)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise Overloaded("the write queue is full; retry shortly") from None
        return item.done

    def close(self) -> None:
        """Finish what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._save(batch)
            if stop:
                return

    def _save(self, batch: list[_Submission]) -> None:
        try:
            self.app.save_new(*(e for item in batch for e in item.events), what="a record in this batch")
        except Exception:
            if len(batch) == 1:
                self._save_one(batch[0])
                return
            for item in batch:
                self._save_one(item)
            return
        self.batches += 1
        self.saved += len(batch)
        for item in batch:
            item.done.set_result(None)

    def _save_one(self, item: _Submission) -> None:
        try:
            self.app.save_new(*item.events, what=item.what)
        except Exception as e:  # handed to the waiting caller, who maps it to a response
            item.done.set_exception(e)
        else:
            self.batches += 1
            self.saved += 1
            item.done.set_result(None)
