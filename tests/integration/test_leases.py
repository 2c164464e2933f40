"""Work leases in the store's database (adapters/store/leases.py), on SQLite and PostgreSQL, with real connections:
every slot held by exactly one worker, a join rebalances without two ever holding one slot, a worker that stops
renewing is taken over once its lease expires, and a clean stop hands over at once; a worker whose process was
paused past its lease acts on none of its slots until it has renewed them, then works on them from the log again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from keng.adapters.store.app import Keng
from keng.adapters.store.leases import Leases, shares, slot_of, workers_seen
from keng.runtime.dispatch.partitions import Partitions

SLOTS = 16


def holders(*workers: Leases) -> dict[int, set[str]]:
    """Slot -> the workers that believe they hold it."""
    out: dict[int, set[str]] = {}
    for w in workers:
        for s in w.held:
            out.setdefault(s, set()).add(w.worker)
    return out


def settle(workers: list[Leases], rounds: int = 6) -> None:
    """Tick every worker a few rounds, each giving back what the previous round named surplus; no slot is ever held
    by two of them at any point."""
    surplus = {w.worker: frozenset[int]() for w in workers}
    for _ in range(rounds):
        for w in workers:
            tick = w.tick(surplus[w.worker])
            surplus[w.worker] = tick.surplus
            assert all(len(h) == 1 for h in holders(*workers).values()), holders(*workers)


def test_shares_spread_slots_evenly_in_start_order() -> None:
    assert shares(["a", "b", "c"], 16) == {"a": 6, "b": 5, "c": 5}
    assert shares([], 16) == {}
    assert sum(shares([str(i) for i in range(7)], 64).values()) == 64
    assert slot_of("00598", 64) == slot_of("00598", 64) and 0 <= slot_of("", 64) < 64


def test_one_worker_takes_every_slot_then_a_second_gets_half_without_overlap(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    a = Leases.of(app, worker="a", slots=SLOTS, ttl_s=3.0)
    a.ensure()
    first = a.tick()
    assert first.held == frozenset(range(SLOTS)) and first.workers == ("a",)
    b = Leases.of(app, worker="b", slots=SLOTS, ttl_s=3.0)
    b.ensure()  # idempotent beside a running worker
    settle([a, b])
    assert len(a.held) == len(b.held) == SLOTS // 2
    assert a.held | b.held == frozenset(range(SLOTS))
    assert a.holders() == {**{s: "a" for s in a.held}, **{s: "b" for s in b.held}}


def test_a_worker_that_stops_renewing_is_taken_over_after_its_lease(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    a = Leases.of(app, worker="a", slots=SLOTS, ttl_s=1.0)
    b = Leases.of(app, worker="b", slots=SLOTS, ttl_s=1.0)
    a.ensure()
    settle([a, b])
    gone = a.held
    assert gone and not (gone & b.held)
    # `a` is SIGKILLed: it never ticks again. `b` goes on ticking twice a second, and gets a's slots only once a's
    # lease has expired, about a second after a's last renewal.
    last_renewal = time.monotonic()
    while not (tick := b.tick()).taken:
        assert not (tick.held & gone)
        time.sleep(0.1)
    waited = time.monotonic() - last_renewal
    assert 0.9 <= waited <= 2.0
    assert tick.held == frozenset(range(SLOTS)) and tick.taken == gone and tick.workers == ("b",)


def test_a_clean_stop_hands_every_slot_over_at_the_next_tick(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    a = Leases.of(app, worker="a", slots=SLOTS, ttl_s=30.0)
    b = Leases.of(app, worker="b", slots=SLOTS, ttl_s=30.0)
    a.ensure()
    settle([a, b])
    a.release_all()
    assert b.tick().held == frozenset(range(SLOTS))


def test_a_slot_taken_while_its_holder_was_away_is_reported_lost(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    a = Leases.of(app, worker="a", slots=4, ttl_s=1.0)
    b = Leases.of(app, worker="b", slots=4, ttl_s=1.0)
    a.ensure()
    assert a.tick().held == frozenset(range(4))
    time.sleep(1.2)  # `a` was partitioned away from the database
    assert b.tick().held == frozenset(range(4))
    time.sleep(0.5)
    b.tick()
    back = a.tick()  # back: b is alive with every slot, a's share is 2 but none is free
    assert back.held == frozenset() and back.lost == frozenset(range(4))
    assert all(len(h) == 1 for h in holders(a, b).values())


@pytest.mark.parametrize("count", [3, 5])
def test_many_workers_cover_every_slot_once(make_app: Callable[..., Keng], count: int) -> None:
    app = make_app()
    workers = [Leases.of(app, worker=f"w{i}", slots=SLOTS, ttl_s=5.0) for i in range(count)]
    workers[0].ensure()
    settle(workers, rounds=count + 3)
    seen = holders(*workers)
    assert sorted(seen) == list(range(SLOTS))
    assert sorted(len(w.held) for w in workers) == sorted(shares([w.worker for w in workers], SLOTS).values())


def test_the_workers_seen_are_listed_in_start_order_with_their_slots(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    a = Leases.of(app, worker="a", slots=SLOTS, ttl_s=5.0)
    b = Leases.of(app, worker="b", slots=SLOTS, ttl_s=5.0)
    a.ensure()
    assert workers_seen(a) == []
    settle([a, b])
    seen = workers_seen(a)
    assert [w.worker for w in seen] == ["a", "b"]
    assert [set(w.slots) for w in seen] == [set(a.held), set(b.held)]
    assert all(0 <= w.seen_s_ago < 5.0 and w.started_s_ago >= w.seen_s_ago for w in seen)


async def test_a_worker_paused_past_its_lease_acts_on_no_slot_until_it_has_renewed_them(
    make_app: Callable[..., Keng],
) -> None:
    partitions = Partitions(Leases.of(make_app(), worker="w", slots=SLOTS, ttl_s=1.0), tick_s=0.1, margin_s=0.25)
    changes: list[tuple[frozenset[int], frozenset[int]]] = []

    async def on_change(gained: frozenset[int], dropped: frozenset[int]) -> None:
        changes.append((gained, dropped))

    async def until(predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 20
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.02)

    task = asyncio.create_task(partitions.run(on_change))
    try:
        await until(lambda: len(partitions.owned) == SLOTS)
        assert partitions.owns("00598") and partitions.leader
        changes.clear()
        time.sleep(1.0)  # the whole process paused (starved, collecting): the ticking loop cannot run either
        # what runs first after the pause must not act on slots that another worker may have taken by now
        assert not partitions.owns("00598") and not partitions.leader
        await until(lambda: partitions.owns("00598"))
        # the slots were dropped and gained again: the caller works on them from the log (what came in meanwhile)
        everything = frozenset(range(SLOTS))
        assert changes == [(frozenset(), everything), (everything, frozenset())], changes
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
