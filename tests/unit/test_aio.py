"""cancel_and_wait: a task that swallows a cancellation (as asyncio.wait_for can on Python 3.11) still ends."""

from __future__ import annotations

import asyncio

from keng.adapters.aio import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def worker() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed == 0:  # what wait_for does when the result and the cancellation race
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    left = await cancel_and_wait([task], every_s=0.01)
    assert left == set() and task.cancelled() and swallowed == 1


async def test_failed_tasks_are_retrieved_and_stubborn_ones_reported() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    stubborn_now = True

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if stubborn_now:
                    continue
                raise

    failing = asyncio.create_task(fails())
    await asyncio.sleep(0)
    never = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    left = await cancel_and_wait([failing, never], grace_s=0.1, every_s=0.02)
    assert left == {never} and failing.done()
    stubborn_now = False
    assert await cancel_and_wait([never]) == set()
