"""Small asyncio helpers shared by the adapters and the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def cancel_and_wait(
    tasks: Iterable[asyncio.Future[Any]], *, grace_s: float = 10.0, every_s: float = 0.5
) -> set[asyncio.Future[Any]]:
    """Cancel tasks and wait until every one has ended; returns those still running after `grace_s` (logged).

    A single `cancel()` is not always enough on Python 3.11: `asyncio.wait_for` (used inside aiomqtt's publish) drops a
    cancellation that arrives in the same loop turn as the result it was waiting for (bpo-42130, fixed in 3.12), and
    the task then runs on. The dispatcher's publishers hit this under load, and a SIGTERM left the process waiting
    forever for a publisher that was no longer cancelled. So a task that is still running is cancelled again, every
    `every_s`, until it ends. Use it for worker tasks, not for a task whose own clean-up (in `finally`) awaits
    something: a second cancellation would cut that clean-up short. Exceptions of the ended tasks are retrieved.
    """
    pending = {t for t in tasks if not t.done()}
    everything = set(pending)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(every_s, left))
    for task in everything - pending:
        if not task.cancelled():
            task.exception()
    if pending:
        log.error("tasks.would_not_stop", tasks=sorted(_name(t) for t in pending), grace_s=grace_s)
    return pending


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
