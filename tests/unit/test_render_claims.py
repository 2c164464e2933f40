"""Rendering is claimed once (domain/broadcast.py): the claim rules, the order render workers take broadcasts in, the
bounded render queue (runtime/workers/renderer.py), and a state machine of workers racing over one broadcast through
an optimistic-concurrency log that checks no revision is ever rendered twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from keng.domain.broadcast import Broadcast
from keng.domain.errors import RenderClaimRefused
from keng.runtime.workers.renderer import RenderQueue
from tests.unit.helpers import NOW, content, staff, submitted

LEASE = timedelta(seconds=60)
SHA = "ab" * 32


def rendered(b: Broadcast, worker: str | None = None) -> None:
    b.record_render(
        channel="speaker", asset_hash="k" * 64, duration_s=3.0, engine="espeak", content_sha256=SHA, worker=worker
    )


def test_a_worker_claims_a_submitted_broadcasts_audio_for_the_length_of_its_lease() -> None:
    b = submitted()
    assert b.needs_render and b.current_render_claim is None
    b.claim_render(worker="w1", now=NOW, lease=LEASE)
    assert b.current_render_claim == {"worker": "w1", "revision": 0, "until": NOW + LEASE}
    assert b.needs_render  # claimed, not rendered yet
    assert b.render_claimed_elsewhere("w2", NOW + LEASE - timedelta(microseconds=1))
    assert not b.render_claimed_elsewhere("w2", NOW + LEASE)
    assert not b.render_claimed_elsewhere("w1", NOW)


def test_a_second_worker_is_refused_while_the_lease_runs_and_takes_over_once_it_has_ended() -> None:
    b = submitted()
    b.claim_render(worker="w1", now=NOW, lease=LEASE)
    with pytest.raises(RenderClaimRefused, match="render-claimed-once: w1 renders revision 0 until"):
        b.claim_render(worker="w2", now=NOW + timedelta(seconds=59), lease=LEASE)
    b.claim_render(worker="w2", now=NOW + LEASE, lease=LEASE)
    assert b.current_render_claim == {"worker": "w2", "revision": 0, "until": NOW + 2 * LEASE}
    with pytest.raises(RenderClaimRefused, match="w1 cannot record a render of revision 0: w2 holds the claim"):
        rendered(b, "w1")  # the first worker came back after all: its audio is not recorded
    rendered(b, "w2")
    assert not b.needs_render


def test_a_worker_renews_its_own_claim_a_restarted_process_in_its_slot_carries_on() -> None:
    b = submitted()
    b.claim_render(worker="w1", now=NOW, lease=LEASE)
    b.claim_render(worker="w1", now=NOW + timedelta(seconds=1), lease=LEASE)
    assert b.current_render_claim is not None and b.current_render_claim["until"] == NOW + timedelta(seconds=61)


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(lambda: Broadcast.draft(content(), by=staff("lan", "drafter")), id="a draft may still change"),
        pytest.param(lambda: submitted(channels=["eboard", "portal"]), id="no speakers"),
        pytest.param(lambda: _with(submitted(), rendered), id="audio recorded"),
        pytest.param(
            lambda: _with(submitted(), lambda b: b.record_render_failure(channel="speaker", engine="e", reason="x")),
            id="failure recorded",
        ),
        pytest.param(
            lambda: _with(submitted(), lambda b: b.cancel(by=staff("lan", "drafter"), reason="nhầm")), id="cancelled"
        ),
    ],
)
def test_there_is_nothing_to_claim_when_nothing_is_left_to_render(setup: Any) -> None:
    b = setup()
    assert not b.needs_render
    with pytest.raises(RenderClaimRefused, match="has nothing left to render"):
        b.claim_render(worker="w1", now=NOW, lease=LEASE)


def _with(b: Broadcast, change: Any) -> Broadcast:
    change(b)
    return b


def test_a_revision_voids_the_claim_and_the_old_claimer_records_nothing() -> None:
    lan = staff("lan", "drafter")
    b = submitted(lan)
    b.claim_render(worker="w1", now=NOW, lease=LEASE)
    b.revise(content(text="Lịch cắt điện đổi sang ngày 29/11."), by=lan)
    assert b.revision == 1 and b.current_render_claim is None and b.needs_render
    with pytest.raises(RenderClaimRefused, match="no claim on it is current"):
        rendered(b, "w1")
    b.claim_render(worker="w2", now=NOW, lease=LEASE)  # the new revision is free to claim at once
    rendered(b, "w2")
    assert [r["revision"] for r in b.renders] == [1]


def test_a_claimer_records_nothing_once_the_audio_is_recorded_elsewhere_and_recording_without_a_claim_stays() -> None:
    b = submitted()
    b.claim_render(worker="w1", now=NOW, lease=LEASE)
    rendered(b)  # the dispatcher's own render on the dispatch path (or `keng render`): no claim needed
    with pytest.raises(RenderClaimRefused, match="has its render recorded already"):
        rendered(b, "w1")
    with pytest.raises(RenderClaimRefused, match="w2 cannot record"):
        b.record_render_failure(channel="speaker", engine="espeak", reason="x", worker="w2")
    assert len(b.renders) == 1


def test_a_lease_must_be_positive() -> None:
    with pytest.raises(RenderClaimRefused, match="must be positive"):
        submitted().claim_render(worker="w1", now=NOW, lease=timedelta(0))


def test_render_order_is_emergencies_then_priority_items_then_normal_ones_oldest_first() -> None:
    def made(priority: str, minutes: int) -> Broadcast:
        b = submitted(priority=priority)
        b._created_on = NOW + timedelta(minutes=minutes)  # the creation time its event recorded
        return b

    items = [made("normal", 0), made("priority", 2), made("emergency", 3), made("normal", -1), made("emergency", 1)]
    ordered = sorted(items, key=lambda b: b.render_order)
    assert [(b.priority, b.render_order[1]) for b in ordered] == [
        ("emergency", NOW + timedelta(minutes=1)),
        ("emergency", NOW + timedelta(minutes=3)),
        ("priority", NOW + timedelta(minutes=2)),
        ("normal", NOW - timedelta(minutes=1)),
        ("normal", NOW),
    ]


def test_claims_replay_from_the_recorded_events() -> None:
    b = submitted()
    b.claim_render(worker="w1", now=NOW, lease=LEASE)
    b.claim_render(worker="w2", now=NOW + LEASE, lease=LEASE)
    rendered(b, "w2")
    events = b.collect_events()
    replayed: Any = None
    for e in events:
        replayed = e.mutate(replayed)
    assert (replayed.render_claim, replayed.renders, replayed.version) == (b.render_claim, b.renders, b.version)


# -- the bounded render queue ------------------------------------------------------------------------------------

offers = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 50), st.integers(0, 5)), min_size=0, max_size=60
)  # (priority rank, age in minutes, which of six broadcasts)


@given(size=st.integers(1, 8), offered=offers)
def test_the_render_queue_holds_the_most_urgent_at_most_size_and_says_when_it_let_some_go(
    size: int, offered: list[tuple[int, int, int]]
) -> None:
    ids = [UUID(int=i + 1) for i in range(6)]
    queue, latest = RenderQueue(size), {}
    for rank, minutes, which in offered:
        key = (rank, NOW + timedelta(minutes=minutes))
        queue.offer(key, ids[which])
        latest[ids[which]] = key  # offered again: held with its new key (a revision changed its priority)
        assert len(queue) <= size
    held = queue.ids()
    assert held == sorted(held, key=lambda item: (latest[item], item))  # most urgent first, by the latest keys
    assert queue.overflowed == (len(latest) > size)
    if queue.overflowed:
        assert len(held) == size  # the ones it let go wait in the log
    else:
        assert held == sorted(latest, key=lambda item: (latest[item], item))
    popped = [queue.pop() for _ in range(len(held))]
    assert popped == held and queue.pop() is None and len(queue) == 0


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1000)), min_size=1, max_size=40, unique=True))
def test_without_repeats_the_queue_keeps_exactly_the_most_urgent(keys: list[tuple[int, int]]) -> None:
    queue = RenderQueue(5)
    items = [((rank, NOW + timedelta(seconds=s)), uuid4()) for rank, s in keys]
    for key, item in items:
        queue.offer(key, item)
    assert queue.ids() == [item for _, item in sorted(items)[:5]]
    assert queue.overflowed == (len(items) > 5)


def test_an_emergency_offered_to_a_full_queue_goes_first_and_the_least_urgent_waits_in_the_log() -> None:
    queue = RenderQueue(2)
    normal_old, normal_new, emergency = uuid4(), uuid4(), uuid4()
    assert queue.offer((2, NOW), normal_old) and queue.offer((2, NOW + LEASE), normal_new)
    assert not queue.overflowed
    assert queue.offer((0, NOW + 2 * LEASE), emergency)
    assert queue.overflowed and queue.ids() == [emergency, normal_old]
    assert not queue.offer((2, NOW + 3 * LEASE), uuid4())  # full of more urgent ones: it waits in the log


# -- workers racing through an optimistic-concurrency log --------------------------------------------------------

WORKERS = ("w1", "w2", "w3")


class RenderRace(RuleBasedStateMachine):
    """One broadcast's events in a log that refuses a save from a stale copy (as the store's version check does);
    workers load copies, claim, render and record; the clock moves; an operator revises; the dispatcher renders on
    the dispatch path when it finds no audio. No revision may be rendered twice, and a worker's render is recorded
    only under its own claim."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Any] = []
        self.copies: dict[str, Broadcast] = {}
        self.now = NOW
        self.lan = staff("lan", "drafter")
        self.claims: list[tuple[str, int, datetime, datetime]] = []  # (worker, revision, claimed at, lease until)

    def _replay(self) -> Broadcast:
        b: Any = None
        for e in self.log:
            b = e.mutate(b)
        return b

    def _save(self, b: Broadcast) -> bool:
        pending = b.collect_events()
        if pending and pending[0].originator_version != len(self.log) + 1:
            return False  # stale: the store's version check refuses it
        self.log.extend(pending)
        return True

    @initialize(priority=st.sampled_from(["emergency", "normal"]))
    def start(self, priority: str) -> None:
        b = submitted(self.lan, priority=priority)
        self._save(b)

    @rule(worker=st.sampled_from(WORKERS))
    def load(self, worker: str) -> None:
        self.copies[worker] = self._replay()

    @precondition(lambda self: bool(self.copies))
    @rule(data=st.data(), lease_s=st.integers(1, 120))
    def claim(self, data: st.DataObject, lease_s: int) -> None:
        worker = data.draw(st.sampled_from(sorted(self.copies)))
        b = self.copies[worker]
        try:
            b.claim_render(worker=worker, now=self.now, lease=timedelta(seconds=lease_s))
        except RenderClaimRefused:
            return
        claim = b.current_render_claim
        if not self._save(b):
            self.copies.pop(worker)  # a conflict: it skips the broadcast
            return
        assert claim is not None
        self.claims.append((worker, claim["revision"], self.now, claim["until"]))

    @precondition(lambda self: bool(self.copies))
    @rule(data=st.data())
    def record(self, data: st.DataObject) -> None:
        worker = data.draw(st.sampled_from(sorted(self.copies)))
        current = self._replay()  # a worker records on what is stored now, as render_claimed does
        try:
            rendered(current, worker)
        except RenderClaimRefused:
            return
        claim = current.current_render_claim
        assert claim is not None and claim["worker"] == worker
        self._save(current)

    @rule(seconds=st.integers(1, 90))
    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def revise(self) -> None:
        b = self._replay()
        if b.state in ("submitted", "approved"):
            b.revise(content(text=f"Sửa lúc {self.now:%H:%M:%S}."), by=self.lan)
            self._save(b)

    @rule()
    def dispatcher_renders(self) -> None:
        b = self._replay()
        if b.needs_render:
            rendered(b)
            self._save(b)

    @invariant()
    def each_revision_rendered_at_most_once(self) -> None:
        if not self.log:
            return
        revisions = [r["revision"] for r in self._replay().renders]
        assert len(revisions) == len(set(revisions))

    @invariant()
    def another_worker_takes_over_only_once_the_lease_has_ended(self) -> None:
        for (w1, rev1, _, until), (w2, rev2, at, _) in zip(self.claims, self.claims[1:], strict=False):
            if rev1 == rev2 and w1 != w2:
                assert at >= until


TestRenderRace = RenderRace.TestCase
