"""runtime/console/pages/signin.py: password checks (argon2, 64 MiB each) run a few at a time, a bounded number wait,
and any beyond that are turned away at once (429) instead of queueing without end; nothing is counted per address."""

from __future__ import annotations

import asyncio

import pytest

from keng.runtime.console.pages import signin


async def test_checks_beyond_the_waiting_bound_are_turned_away_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "CHECKS_WAITING", 2)
    checks = asyncio.Semaphore(1)
    release = asyncio.Event()
    order: list[str] = []

    async def check(name: str) -> None:
        async with signin._turn(checks):
            order.append(name)
            await release.wait()

    running = asyncio.create_task(check("first"))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(check(n)) for n in ("second", "third")]
    await asyncio.sleep(0)
    with pytest.raises(signin._Busy):
        async with signin._turn(checks):
            pass
    release.set()
    await asyncio.gather(running, *waiting)
    assert order == ["first", "second", "third"]
    assert signin._waiting[0] == 0
    async with signin._turn(checks):  # the bound frees as the queue drains
        pass


async def test_a_cancelled_waiter_leaves_the_count_right() -> None:
    checks = asyncio.Semaphore(1)
    await checks.acquire()
    waiter = asyncio.create_task(signin._turn(checks).__aenter__())
    await asyncio.sleep(0)
    assert signin._waiting[0] == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert signin._waiting[0] == 0
    checks.release()
