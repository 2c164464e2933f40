"""The render worker: speaker audio for every live broadcast, made in a process of its own, claimed once.

`keng serve` runs KENG_RENDER_PROCESSES of these processes (runtime/workers/render_pool.py starts, supervises and stops
them) at a lower OS priority, so that rendering takes what CPU the HTTP path leaves and never holds its event loop.
Each process:
- follows the log, reading broadcast events only (a topic-filtered read), into the broadcasts' current states;
- holds the most urgent broadcasts that need audio in a bounded queue (KENG_RENDER_QUEUE): emergencies, then priority
  items, then normal ones, the oldest first within a class (`Broadcast.render_order`). When more wait than the queue
  holds, the rest wait in the log and are taken up from the folded states once the queue has drained; nothing on the
  way in (a webhook, an operator) ever waits for room in it;
- claims the next (`Broadcast.claim_render`: a `RenderClaimed` event with a lease, saved with the aggregate's
  version, so that of two processes, or two `keng serve` on one PostgreSQL store, that claim at once the store refuses
  the second, which skips it), renders it with the embedded espeak-ng voice, and records `Rendered` (with the SHA-256
  of the bytes) or `RenderFailed`, held to its claim: a worker that lost its claim (its lease ended and another took
  over) or finds the audio recorded already (the dispatcher's own render on the dispatch path) records nothing.
  Short bulletins of one class go in batches (about a second of work, at most 16): one transaction claims them and
  one records them, so that the process seldom holds the store's write lock, which on SQLite every writer shares
  (the HTTP path's too), and a lock held by a process the OS lets wait would hold up the service behind it.
A claim whose lease ended unfinished (its process died) is taken over by whichever worker comes next; a process
restarted in its slot keeps the slot's worker name and so carries on with its predecessor's claims at once.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

import structlog

from keng.adapters.store.app import Keng
from keng.adapters.store.errors import ConcurrencyConflict, NotFound
from keng.domain.broadcast import BROADCAST_EVENTS, STATE_AFTER, Broadcast
from keng.domain.errors import RenderClaimRefused
from keng.domain.values import BroadcastState

if TYPE_CHECKING:
    from keng.adapters.tts.base import Synthesizer, TTSConfig
    from keng.adapters.tts.render import RenderConfig, Renderer
    from keng.runtime.config import Settings

log = structlog.get_logger(__name__)
Key = tuple[int, datetime]  # Broadcast.render_order
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS = timedelta(microseconds=1)
_RANK_SHIFT = 56  # microseconds since 1970 fit below it until the year 4253


def _packed(key: Key) -> int:
    """A render order as one int that sorts as the order does (a backlog of tens of thousands is held as these)."""
    rank, at = key
    return rank << _RANK_SHIFT | (at - _EPOCH) // _MICROS


def _unpacked(packed: int) -> Key:
    return packed >> _RANK_SHIFT, _EPOCH + (packed & ((1 << _RANK_SHIFT) - 1)) * _MICROS


T = TypeVar("T")
MAX_BATCH = 16  # broadcasts claimed (and recorded) in one transaction
BATCH_CHARS = 4000  # and their texts together: about a second of espeak-ng work, so each batch's audio is soon recorded


class Writer(Protocol):
    """Runs a write to the store (a claim, a record) and returns its result: in the calling thread, or, in a render
    process, on its writer thread, which keeps the service's priority (`render_process`)."""

    def __call__(self, fn: Callable[[], T]) -> T: ...


def in_this_thread(fn: Callable[[], T]) -> T:
    """The plain `Writer`: the write runs where it is asked for."""
    return fn()


def _order(b: Broadcast) -> Key:
    return b.render_order


def needs_audio(b: Broadcast) -> bool:
    """A live broadcast for speakers with neither audio nor a recorded failure for its current revision."""
    return b.needs_render


class RenderQueue:
    """A bounded queue of broadcast ids, most urgent first (`Broadcast.render_order`, then the id). Offered a broadcast
    when full, it keeps the more urgent of it and its least urgent entry and notes that it `overflowed`: what it let
    go waits in the log, and the follower takes it up again once the queue has drained."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a render queue holds at least one broadcast")
        self.size = size
        self.overflowed = False
        self._entries: list[tuple[Key, UUID]] = []
        self._keys: dict[UUID, Key] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item: object) -> bool:
        return item in self._keys

    def offer(self, key: Key, item: UUID) -> bool:
        """Hold `item` (again, with its current key); False when the queue is full of more urgent ones."""
        old = self._keys.pop(item, None)
        if old is not None:
            self._entries.remove((old, item))
        entry = (key, item)
        if len(self._entries) >= self.size:
            self.overflowed = True
            if entry >= self._entries[-1]:
                return False
            _, dropped = self._entries.pop()
            del self._keys[dropped]
        bisect.insort(self._entries, entry)
        self._keys[item] = key
        return True

    def pop(self) -> UUID | None:
        """The most urgent id (None when empty)."""
        if not self._entries:
            return None
        _, item = self._entries.pop(0)
        del self._keys[item]
        return item

    def ids(self) -> list[UUID]:
        """The ids held, most urgent first."""
        return [item for _, item in self._entries]


class RenderFollower:
    """The broadcasts' current states, folded from the log, and the queue of those this worker may render next.

    Its memory follows the backlog, not the log's history: `states` holds the broadcasts in the queue and those
    another worker holds (until their lease ends), `waiting` only the render order of those that need audio but that
    the queue let go (a backlog of thousands of webhooks' bulletins); the others are forgotten. A broadcast forgotten
    or waiting is read again from the store when an event of it comes (a revision, say) or its turn comes; an event
    that ends it is passed over."""

    def __init__(self, app: Keng, worker: str, queue_size: int) -> None:
        self.app, self.worker = app, worker
        self.states: dict[UUID, Broadcast] = {}
        # the backlog the queue let go: the id's int -> its packed render order (about half the memory of UUIDs and
        # tuples: a soak at 100 bulletins/s with a few renders/s waits on tens of thousands)
        self._waiting: dict[int, int] = {}
        self.position = 0
        self.queue = RenderQueue(queue_size)
        self._leased: dict[UUID, datetime] = {}  # broadcasts another worker holds, until its lease ends

    def catch_up(self) -> int:
        """Fold the broadcast events recorded since the last call and offer each broadcast they changed; returns how
        many changed."""
        touched: set[UUID] = set()
        top = self.app.max_position()
        for note in self.app.notifications_of(BROADCAST_EVENTS, since=self.position, upto=top):
            event: Any = self.app.mapper.to_domain_event(note)
            bid = event.originator_id
            current = self.states.get(bid)
            if current is None and event.originator_version > 1:  # forgotten or waiting (or drafted before we began)
                if STATE_AFTER.get(type(event), BroadcastState.DRAFT).is_final:
                    self._waiting.pop(bid.int, None)
                    continue  # it ends here: it never needs audio again
                current = self._reload(bid)
                if current is None:
                    continue
            if current is None or event.originator_version > current.version:  # a reloaded one may hold it already
                current = event.mutate(current)
            self.states[bid] = current
            self._waiting.pop(bid.int, None)
            touched.add(bid)
        self.position = max(top, self.position)
        if touched:
            now = self.app.clock()
            for b in sorted((self.states[i] for i in touched), key=_order):
                self._consider(b.id, now)
            self._forget()
        return len(touched)

    def _forget(self) -> None:
        """Keep in `states` only what the queue holds and what another worker holds; of the others, note the render
        order of those that need audio in `waiting`."""
        for bid, b in list(self.states.items()):
            needed = b.needs_render
            if needed and (bid in self.queue or bid in self._leased):
                continue
            del self.states[bid]  # a stale entry of the queue is passed over when popped
            if needed:
                self._waiting[bid.int] = _packed(b.render_order)
                self.queue.overflowed = True  # taken up again once the queue has drained

    def _reload(self, bid: UUID) -> Broadcast | None:
        try:
            return self.app.broadcast(bid)
        except NotFound:
            return None

    def backlog(self) -> int:
        """How many broadcasts need audio (in the queue or waiting in the log)."""
        return sum(1 for b in self.states.values() if b.needs_render) + len(self._waiting)

    @property
    def waiting(self) -> dict[UUID, Key]:
        """The broadcasts that need audio and that the queue let go, with their render orders (read from the store
        again when their turn comes)."""
        return {UUID(int=i): _unpacked(k) for i, k in self._waiting.items()}

    def _consider(self, bid: UUID, now: datetime) -> None:
        b = self.states.get(bid)
        if b is None or not b.needs_render:
            self._leased.pop(bid, None)
            return
        claim = b.current_render_claim
        if claim is not None and b.render_claimed_elsewhere(self.worker, now):
            self._leased[bid] = claim["until"]
            return
        self._leased.pop(bid, None)
        self.queue.offer(b.render_order, bid)

    def next(self, taken: Collection[UUID] = ()) -> Broadcast | None:
        """The most urgent broadcast that needs audio and that no other worker holds (None: nothing to do now), other
        than those `taken` (a batch's so far). Claims whose lease has ended come back; when the queue has drained
        after letting some go, it is filled again from the folded states and those waiting."""
        now = self.app.clock()
        for leased, until in list(self._leased.items()):
            if until <= now:
                self._consider(leased, now)
        while True:
            if not self.queue and self.queue.overflowed:
                self.queue.overflowed = False
                for waiting in sorted((b for b in self.states.values() if b.needs_render), key=_order):
                    if waiting.id not in taken:
                        self._consider(waiting.id, now)
                for key, waiting_id in sorted((key, i) for i, key in self._waiting.items()):
                    # read again from the store when its turn comes; the queue keeps the most urgent
                    if not self.queue.offer(_unpacked(key), UUID(int=waiting_id)):
                        break
            bid = self.queue.pop()
            if bid is None:
                return None
            if bid in taken:
                continue
            b = self.states.get(bid)
            if b is None and bid.int in self._waiting:
                del self._waiting[bid.int]
                b = self._reload(bid)
                if b is not None and b.needs_render:
                    self.states[bid] = b
            if b is None or not b.needs_render:
                continue
            if b.render_claimed_elsewhere(self.worker, now):
                self._consider(bid, now)  # watched until its lease ends
                continue
            return b

    def next_batch(self, most: int = MAX_BATCH, chars: int = BATCH_CHARS) -> list[Broadcast]:
        """The next broadcasts to render together: the most urgent one, and after it those of its class that the
        queue holds next while their texts add up to at most `chars` (about a second of espeak-ng work), at most
        `most` of them. An emergency is never held back behind a batch: it is taken first, and a batch closes at the
        end of a class."""
        first = self.next()
        if first is None:
            return []
        batch, size = [first], len(first.announced_text)
        while len(batch) < most:
            b = self.next(taken={x.id for x in batch})
            if b is None:
                break
            if b.render_order[0] != first.render_order[0] or size + len(b.announced_text) > chars:
                self.queue.offer(b.render_order, b.id)  # the next batch's
                break
            batch.append(b)
            size += len(b.announced_text)
        return batch


Outcome = tuple[str, ...]


def _render(b: Broadcast, renderer: Renderer, config: RenderConfig) -> Outcome:
    """("ok", key, duration, engine, sha256) or ("failed", engine, reason): an engine crash is a failure of that
    engine, recorded, never lost."""
    from keng.adapters.tts.render import RenderFailed

    try:
        (asset,) = renderer.render_bulletin(b.announced_text, b.priority, ["speaker"], config)
    except RenderFailed as failure:
        return "failed", failure.engine, failure.reason
    except Exception as e:
        return "failed", config.tts.engine, f"{type(e).__name__}: {e}"[:1000]
    sha = hashlib.sha256(Path(asset.path).read_bytes()).hexdigest()
    return "ok", asset.asset_hash, str(asset.duration_s), asset.engine, sha


def _claim(app: Keng, ids: list[UUID], *, worker: str, lease: timedelta) -> list[Broadcast]:
    """Claim these broadcasts' renders in one transaction; the claimed ones, as stored now. Those refused (another
    worker holds one, nothing is left to render) are left out; when the store refuses the transaction (another
    worker claimed one of them at the same moment), each is claimed on its own and the one that lost is left out."""
    now = app.clock()
    items = []
    for bid in ids:
        item = app.broadcast(bid)
        try:
            item.claim_render(worker=worker, now=now, lease=lease)
        except RenderClaimRefused as refused:
            log.debug("render.claim_refused", broadcast_id=str(bid), reason=refused.message)
            continue
        items.append(item)
    if not items:
        return []
    try:
        app.save_changes(*items)
    except ConcurrencyConflict:
        if len(items) == 1:
            log.info("render.claim_conflict", broadcast_id=str(items[0].id))  # another worker was first
            return []
        return [claimed for item in items for claimed in _claim(app, [item.id], worker=worker, lease=lease)]
    return items


def _outcome_on(item: Broadcast, outcome: Outcome, worker: str) -> None:
    if outcome[0] == "failed":
        item.record_render_failure(channel="speaker", engine=outcome[1], reason=outcome[2], worker=worker)
    else:
        item.record_render(
            channel="speaker",
            asset_hash=outcome[1],
            duration_s=float(outcome[2]),
            engine=outcome[3],
            content_sha256=outcome[4],
            worker=worker,
        )


def _record(app: Keng, outcomes: dict[UUID, Outcome], *, worker: str, attempts: int = 3) -> dict[UUID, str]:
    """Record the outcomes held to the claims, in one transaction; what became of each: `rendered`, `failed` or
    `superseded` (the claim was lost, or audio recorded elsewhere, meanwhile: nothing recorded). When the store
    refuses the transaction (another write to one of them: an approval, the dispatcher), each is recorded on its
    own, the rule checked again on what is stored then."""
    results: dict[UUID, str] = {}
    items = []
    for bid, outcome in outcomes.items():
        item = app.broadcast(bid)
        try:
            _outcome_on(item, outcome, worker)
        except RenderClaimRefused as refused:
            log.info("render.superseded", broadcast_id=str(bid), reason=refused.message)
            results[bid] = "superseded"
            continue
        items.append(item)
    if not items:
        return results
    try:
        app.save_changes(*items)
    except ConcurrencyConflict:
        if len(items) > 1:
            for item in items:
                results.update(_record(app, {item.id: outcomes[item.id]}, worker=worker, attempts=attempts))
            return results
        if attempts > 1:
            return results | _record(app, {items[0].id: outcomes[items[0].id]}, worker=worker, attempts=attempts - 1)
        log.warning("render.not_recorded", broadcast_id=str(items[0].id), reason="concurrent writes each time")
        return results | {items[0].id: "superseded"}
    for item in items:
        result = results[item.id] = "failed" if outcomes[item.id][0] == "failed" else "rendered"
        log.info("render.recorded", broadcast_id=str(item.id), outcome=result, priority=item.priority)
    return results


def render_claimed(
    app: Keng,
    batch: list[Broadcast],
    *,
    worker: str,
    renderer: Renderer,
    config: RenderConfig,
    lease: timedelta,
    write: Writer = in_this_thread,
) -> dict[UUID, str]:
    """Claim a batch of broadcasts' renders (one transaction), render those claimed, and record the outcomes held to
    the claims (one transaction): two short writes per batch, so that a process that renders many small bulletins
    holds the store's write lock seldom (on SQLite it is one lock for every writer, the HTTP path's too). Returns
    what became of each: `rendered`, `failed` (recorded as RenderFailed), `skipped` (another worker holds it, or
    claimed it at the same moment, or nothing is left to render) or `superseded` (rendered, but the claim was lost
    or audio recorded elsewhere meanwhile: nothing recorded)."""
    claimed = write(lambda: _claim(app, [b.id for b in batch], worker=worker, lease=lease))
    outcomes = {item.id: _render(item, renderer, config) for item in claimed}
    results = write(lambda: _record(app, outcomes, worker=worker)) if outcomes else {}
    return {b.id: results.get(b.id, "skipped") for b in batch}


def serve_renders(
    app: Keng,
    renderer: Renderer,
    config: RenderConfig,
    *,
    worker: str,
    queue_size: int,
    lease: timedelta,
    stop: threading.Event,
    poll_s: float = 0.3,
    parent: int | None = None,
    on_outcome: Callable[[str], None] | None = None,
    write: Writer = in_this_thread,
) -> None:
    """Follow the log and render, most urgent first, until `stop` is set (or the process `parent` is gone); claims
    and records go through `write`."""
    follower = RenderFollower(app, worker, queue_size)
    while not stop.is_set():
        if parent is not None and os.getppid() != parent:
            log.warning("render.parent_gone", parent=parent)
            return
        try:
            follower.catch_up()
            batch = follower.next_batch()
            if not batch:
                stop.wait(poll_s)
                continue
            results = render_claimed(
                app, batch, worker=worker, renderer=renderer, config=config, lease=lease, write=write
            )
        except Exception:  # the store unreachable for a moment, say: logged, and the next pass tries again
            log.exception("render.pass_failed")
            stop.wait(poll_s)
            continue
        if on_outcome is not None:
            for outcome in results.values():
                on_outcome(outcome)


# -- the render process ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderJob:
    """What one render process is started with (pickled to it): the service's settings, its worker name (the pool's
    slot: kept across restarts), the pid of the service that supervises it, and the engine maker (tests' engines)."""

    settings: Settings
    worker: str
    parent: int
    make_engine: Callable[[TTSConfig], Synthesizer] | None = None
    poll_s: float = 0.3


def render_process(job: RenderJob) -> None:
    """The body of a render process: JSON logs like the service's, its own store connection and render stack;
    renders until SIGTERM (the render in hand is finished first) or until the service is gone.

    Its rendering thread follows the log and renders at the lower priority (KENG_RENDER_NICE); its writer thread,
    which claims and records, keeps the service's. On Linux niceness belongs to a thread (a new thread inherits its
    creator's): the writer thread is started before the rendering thread lowers its own. A write holds the store's
    write lock for a moment, and on SQLite the HTTP path's commits wait behind it: were the thread holding it one that
    the OS lets wait while the service is busy, the service would wait with it (a priority inversion). The rendering
    thread waits for each write and the writer for each render, so the two never contend."""
    from keng.adapters.tts.render import Renderer, load_engine
    from keng.runtime.bootstrap import open_app, render_config
    from keng.runtime.logs import configure_logging

    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the service stops this one
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = job.settings
    configure_logging(settings.log_format, settings.log_level)
    structlog.contextvars.bind_contextvars(process="render", worker=job.worker)
    app = open_app(settings, create=False)
    renderer = Renderer(make_engine=job.make_engine or load_engine)
    writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keng-render-writes")
    writer_tid = writes.submit(threading.get_native_id).result()  # started here, at the service's priority

    def write(fn: Callable[[], T]) -> T:
        return writes.submit(fn).result()

    counts: Counter[str] = Counter()

    def rendering() -> None:
        if settings.render_nice:
            os.nice(settings.render_nice)
        log.info(
            "render.process_started",
            pid=os.getpid(),
            parent=job.parent,
            render_thread=threading.get_native_id(),
            nice=os.nice(0),
            writer_thread=writer_tid,
            queue=settings.render_queue,
            lease_s=settings.render_lease_s,
        )
        serve_renders(
            app,
            renderer,
            render_config(settings, "espeak"),
            worker=job.worker,
            queue_size=settings.render_queue,
            lease=timedelta(seconds=settings.render_lease_s),
            stop=stop,
            poll_s=job.poll_s,
            parent=job.parent,
            on_outcome=lambda outcome: counts.update((outcome,)),
            write=write,
        )

    thread = threading.Thread(target=rendering, name="keng-render")
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.5)  # the main thread stays free for SIGTERM
    finally:
        stop.set()
        thread.join()
        writes.shutdown(wait=True)
        renderer.close()
        app.close()
        log.info("render.process_stopped", **counts)
