"""Rendering in processes of its own, claimed once (runtime/workers/renderer.py, runtime/workers/render_pool.py).

Two claimers on one store (SQLite and PostgreSQL) render each broadcast exactly once; a worker takes emergencies
first and works through a backlog larger than its queue; a render process that is killed mid-render is replaced in its
slot and carries on with the claim, and a claim whose process died with its service is taken over by another service's
worker once its lease has ended. The renders are real (espeak-ng); where a test must catch a render in the middle, the
engine waits for a gate file before it speaks (`GatedEspeak`), so that nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from keng.adapters.store.app import Keng
from keng.adapters.tts.base import Audio, SynthesisFailed, TTSConfig
from keng.adapters.tts.espeak import EspeakSynthesizer
from keng.adapters.tts.render import Renderer
from keng.domain.broadcast import Broadcast
from keng.runtime.bootstrap import render_config
from keng.runtime.config import Settings, load_settings
from keng.runtime.workers.render_pool import RenderPool
from keng.runtime.workers.renderer import RenderFollower, _claim, _record, serve_renders
from keng.services import broadcasts
from keng.services.inventory import install_sample

WARD = "00595"
TEXT = "UBND phường thông báo lịch cắt điện ngày 28/11 tại tổ dân phố số {n}, đề nghị bà con chủ động."


@dataclass(frozen=True)
class GatedEspeak:
    """An engine maker (Renderer's `make_engine`, pickled into render processes): espeak-ng, which waits until the
    gate file exists before it speaks (at most a minute)."""

    gate: Path

    def __call__(self, config: TTSConfig) -> _Gated:
        return _Gated(self.gate)


class _Gated:
    name = "espeak"

    def __init__(self, gate: Path) -> None:
        self.gate, self.inner = gate, EspeakSynthesizer()

    def synthesize(self, chunks: Sequence[str], voice: str, speed: float) -> Audio:
        deadline = time.monotonic() + 60
        while not self.gate.exists():
            if time.monotonic() > deadline:
                raise SynthesisFailed(self.name, "the test's gate never opened")
            time.sleep(0.05)
        return self.inner.synthesize(chunks, voice, speed)

    def unsupported(self, text: str) -> set[str]:
        return set()


def submit(app: Keng, priority: str = "normal", n: int = 0) -> UUID:
    bid = broadcasts.draft(
        app,
        by="lan.nguyen",
        title=f"Thông báo {n}",
        text=TEXT.format(n=n),
        priority=priority,
        target_areas=[WARD],
    )
    broadcasts.submit(app, bid, by="lan.nguyen")
    return bid


def speaker_renders(app: Keng) -> list[Broadcast.Rendered]:
    return [e for _, e in app.read_events() if isinstance(e, Broadcast.Rendered) and e.channel == "speaker"]


def claims(app: Keng) -> list[Broadcast.RenderClaimed]:
    return [e for _, e in app.read_events() if isinstance(e, Broadcast.RenderClaimed)]


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


async def await_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(check)
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


class Worker:
    """A render worker on a thread with its own application (its own store connection) and render stack."""

    def __init__(self, app: Keng, name: str, data: Path, *, queue_size: int = 64) -> None:
        self.app, self.name = app, name
        self.renderer = Renderer()
        self.outcomes: Counter[str] = Counter()
        self.stop = threading.Event()
        settings = load_settings(data_dir=str(data), environ={})
        self.thread = threading.Thread(
            target=serve_renders,
            args=(app, self.renderer, render_config(settings, "espeak")),
            kwargs={
                "worker": name,
                "queue_size": queue_size,
                "lease": timedelta(seconds=60),
                "stop": self.stop,
                "poll_s": 0.05,
                "on_outcome": lambda outcome: self.outcomes.update((outcome,)),
            },
            name=f"render-{name}",
        )

    def __enter__(self) -> Worker:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(60)
        self.renderer.close()


def test_two_claimers_on_one_store_render_each_broadcast_exactly_once(
    make_app: Callable[..., Keng], tmp_path: Path
) -> None:
    app = make_app()
    install_sample(app, reorganise=False)
    ids = [submit(app, n=n) for n in range(12)]
    # Both follow the same log in the same order, so they reach for the same broadcasts at the same moments.
    with Worker(make_app(), "w1", tmp_path) as w1, Worker(make_app(), "w2", tmp_path) as w2:
        wait_for(lambda: len(speaker_renders(app)) >= len(ids), what="12 renders recorded")
        time.sleep(0.5)  # a second render of any of them would be recorded within this
    renders = speaker_renders(app)
    assert sorted(str(e.originator_id) for e in renders) == sorted(str(i) for i in ids)  # each once
    assert w1.outcomes["rendered"] + w2.outcomes["rendered"] == len(ids)
    assert w1.outcomes["superseded"] + w2.outcomes["superseded"] == 0  # no render was made and thrown away
    by_worker = {e.originator_id: e.worker for e in claims(app)}
    assert set(by_worker) == set(ids)
    for bid in ids:
        b = app.broadcast(bid)
        assert not b.needs_render and b.current_render_claim is not None
        assert [c.worker for c in claims(app) if c.originator_id == bid] == [by_worker[bid]]  # claimed once


def test_a_worker_renders_emergencies_first_and_works_through_a_backlog_larger_than_its_queue(
    make_app: Callable[..., Keng], tmp_path: Path
) -> None:
    app = make_app()
    install_sample(app, reorganise=False)
    normal = [submit(app, n=n) for n in range(8)]
    urgent = submit(app, "priority", n=100)
    emergency = submit(app, "emergency", n=200)  # the last to arrive
    with Worker(make_app(), "w1", tmp_path, queue_size=3) as worker:
        wait_for(lambda: len(speaker_renders(app)) >= 10, what="10 renders recorded")
    order = [e.originator_id for e in speaker_renders(app)]
    assert order == [emergency, urgent, *normal]  # by class, then the oldest first
    assert worker.outcomes == Counter(rendered=10)


def test_a_follower_holds_only_the_broadcasts_that_still_need_audio(make_app: Callable[..., Keng]) -> None:
    """A render process's memory follows its backlog, not the log: a broadcast rendered, or ended, is forgotten; one
    that needs audio again (a revision) is read again from the store."""
    app = make_app()
    install_sample(app, reorganise=False)
    ids = [submit(app, n=n) for n in range(30)]
    follower = RenderFollower(make_app(), "w1", queue_size=8)
    assert follower.catch_up() == 30 and len(follower.states) == 8  # the queue's: the others wait in the log
    assert set(follower.states) | set(follower.waiting) == set(ids)
    done, cancelled, live = ids[:20], ids[20:25], ids[25:]
    lease = timedelta(seconds=60)
    for bid in done:  # claimed and recorded as the worker does it, with audio made up
        assert [b.id for b in _claim(app, [bid], worker="w1", lease=lease)] == [bid]
        assert _record(app, {bid: ("ok", "k" * 64, "3.0", "espeak", "ab" * 32)}, worker="w1") == {bid: "rendered"}
    for bid in cancelled:
        broadcasts.cancel(app, bid, by="lan.nguyen", reason="thử nghiệm")
    follower.catch_up()
    assert set(follower.states) | set(follower.waiting) == set(live)
    assert follower.backlog() == 5
    broadcasts.revise(app, done[0], by="lan.nguyen", text=TEXT.format(n=999))  # a new revision: no audio for it yet
    assert follower.catch_up() == 1
    assert set(follower.states) | set(follower.waiting) == {*live, done[0]} and follower.states[done[0]].needs_render
    assert follower.states[done[0]].revision == app.broadcast(done[0]).revision
    assert {b.id for b in follower.next_batch(most=16, chars=10**6)} == {*live, done[0]}
    # Of a backlog larger than its queue, a follower holds the states of the queued ones and the others' order only.
    small = RenderFollower(make_app(), "w2", queue_size=3)
    small.catch_up()
    assert set(small.states) == set(small.queue.ids()) == {*live[:2], done[0]}  # the oldest of those that need audio
    assert set(small.waiting) == set(live[2:]) and small.backlog() == 6
    batch = small.next_batch(most=16, chars=10**6)  # the queued ones, then those waiting, read again from the store
    assert [b.id for b in batch] == [done[0], *live] and batch[0].revision == 1
    assert small.waiting == {}


# -- render processes ---------------------------------------------------------------------------------------------


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[tuple[Keng, Settings]]:
    """The sample district on the parametrised store, and the settings a service over it would have."""
    settings = load_settings(data_dir=str(tmp_path), store_url=store_url, environ={"KENG_LOG_FORMAT": "json"})
    from keng.runtime.bootstrap import open_app

    app = open_app(settings)
    install_sample(app, reorganise=False)
    yield app, settings
    app.close()


async def test_a_killed_render_process_is_replaced_in_its_slot_and_carries_on_with_its_claim(
    store: tuple[Keng, Settings], tmp_path: Path
) -> None:
    app, settings = store
    gate = tmp_path / "gate"
    bid = submit(app, "emergency")
    pool = RenderPool(settings, processes=1, make_engine=GatedEspeak(gate), check_s=0.2, poll_s=0.05)
    supervisor = asyncio.create_task(pool.run())
    try:
        claim = await await_for(lambda: claims(app), what="the render process's claim")
        first = pool.pids()[0]
        assert first is not None and claim[0].worker == pool.worker(0)
        os.kill(first, signal.SIGKILL)  # mid-render: its engine waits at the gate
        await await_for(lambda: pool.pids().get(0) not in (None, first), what="a new process in slot 0")
        assert pool.restarts == 1
        gate.touch()
        await await_for(lambda: speaker_renders(app), what="the render recorded")
    finally:
        supervisor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await supervisor
    (render,) = speaker_renders(app)
    assert render.originator_id == bid
    assert {c.worker for c in claims(app)} == {pool.worker(0)}  # the slot's name: renewed at once, no lease waited
    assert not pool.processes  # stopped with the supervisor


async def test_a_claim_whose_service_died_is_taken_over_by_another_service_once_its_lease_has_ended(
    store: tuple[Keng, Settings], tmp_path: Path
) -> None:
    app, settings = store
    settings = settings.override(render_lease_s=3.0)
    gate = tmp_path / "gate"
    bid = submit(app)
    # Service A's render process claims the broadcast and dies with its service (no supervisor left to restart it).
    dead = RenderPool(settings, processes=1, make_engine=GatedEspeak(gate), check_s=3600, stop_grace_s=1)
    first = asyncio.create_task(dead.run())
    await await_for(lambda: claims(app), what="service A's claim")
    pid = dead.pids()[0]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # Service B's render process finds the claim running and takes it over once its lease has ended.
    other = RenderPool(settings, processes=1, poll_s=0.05)
    second = asyncio.create_task(other.run())
    try:
        await await_for(lambda: speaker_renders(app), what="service B's render")
    finally:
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
    first_claim, takeover = claims(app)
    assert (first_claim.worker, takeover.worker) == (dead.worker(0), other.worker(0))
    assert takeover.timestamp >= first_claim.lease_until  # not a moment before the lease ended
    (render,) = speaker_renders(app)
    assert render.originator_id == bid and render.timestamp > takeover.timestamp
    assert datetime.now(UTC) > first_claim.lease_until
