"""The render processes of `keng serve`: started with the service, restarted when one dies, stopped with it.

Rendering is CPU work (espeak-ng, loudness, MP3 encoding: ~40 ms for a 300-character bulletin, seconds for a long
one); done in the serving process it shared the interpreter lock and the cores with the HTTP path, and at 1,000 signed
webhooks a second (each a bulletin to render) ingest fell behind. So `keng serve` renders in KENG_RENDER_PROCESSES
processes of their own (default 1), rendering niced by KENG_RENDER_NICE (default +10): the HTTP path and the dispatcher
get the CPU first, and the render backlog waits in the log (runtime/workers/renderer.py says how each process works,
and why its store writes keep the service's priority).

This supervisor only starts processes and watches them from the event loop (a check every `check_s`, no blocking
call on the loop): a process that exits while the service runs is logged and started again in its slot, at once the
first time and after a growing pause (up to 30 s) when it keeps dying young. On shutdown each gets SIGTERM, finishes
the render in hand, and is killed if it has not exited within `stop_grace_s`. A process also ends on its own when the
service is gone (even SIGKILLed). The processes are spawned (not forked): a fresh interpreter, no copy of the
service's threads, locks or sockets.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

import structlog

from keng.runtime.workers.renderer import RenderJob, render_process

if TYPE_CHECKING:
    from keng.adapters.tts.base import Synthesizer, TTSConfig
    from keng.runtime.config import Settings

log = structlog.get_logger(__name__)
YOUNG_S = 30.0  # a process that dies younger than this is restarted after a pause that doubles each time
MAX_PAUSE_S = 30.0


class RenderPool:
    """KENG_RENDER_PROCESSES render processes (`processes` overrides), each named `<worker_prefix>-<slot>` in the
    claims it records (default prefix: unique to this service process). `make_engine` is the tests' engine seam."""

    def __init__(
        self,
        settings: Settings,
        *,
        processes: int | None = None,
        worker_prefix: str | None = None,
        make_engine: Callable[[TTSConfig], Synthesizer] | None = None,
        check_s: float = 0.5,
        stop_grace_s: float = 10.0,
        poll_s: float = 0.3,
    ) -> None:
        from keng.runtime.bootstrap import client_id_for

        self.settings = settings
        self.size = settings.render_processes if processes is None else processes
        self.prefix = worker_prefix or client_id_for("keng-render")
        self.make_engine = make_engine
        self.check_s, self.stop_grace_s, self.poll_s = check_s, stop_grace_s, poll_s
        self.processes: dict[int, BaseProcess] = {}
        self.restarts = 0
        self._started_at: dict[int, float] = {}
        self._young_deaths: dict[int, int] = {}
        self._due: dict[int, float] = {}  # slot -> when its next start is due (after a death)
        self._context = multiprocessing.get_context("spawn")

    def worker(self, slot: int) -> str:
        """The worker name of a slot (its processes, one after another, share it)."""
        return f"{self.prefix}-{slot}"

    def pids(self) -> dict[int, int | None]:
        """The pid of each slot's current process."""
        return {slot: proc.pid for slot, proc in self.processes.items()}

    async def run(self) -> None:
        """Start the processes and keep them running until cancelled; then stop them."""
        try:
            for slot in range(self.size):
                await self._start(slot)
            log.info(
                "render.pool_started",
                processes=self.size,
                nice=self.settings.render_nice,
                pids=list(self.pids().values()),
            )
            while True:
                await asyncio.sleep(self.check_s)
                await self._check()
        except Exception:
            log.exception("render.pool_failed")  # loudly: nobody awaits this task until the service stops
            raise
        finally:
            await asyncio.to_thread(self._stop_all)

    async def _check(self) -> None:
        now = time.monotonic()
        for slot, proc in list(self.processes.items()):
            if slot in self._due or proc.is_alive():
                continue
            lived = now - self._started_at[slot]
            deaths = self._young_deaths[slot] = self._young_deaths.get(slot, 0) + 1 if lived < YOUNG_S else 0
            pause = 0.0 if deaths <= 1 else min(MAX_PAUSE_S, 0.5 * 2 ** (deaths - 1))
            self._due[slot] = now + pause
            log.error(
                "render.process_died", slot=slot, pid=proc.pid, exitcode=proc.exitcode, lived_s=round(lived, 1),
                restart_in_s=pause,
            )  # fmt: skip
        for slot, due in list(self._due.items()):
            if due <= now:
                del self._due[slot]
                self.restarts += 1
                await self._start(slot)

    async def _start(self, slot: int) -> None:
        job = RenderJob(
            settings=self.settings,
            worker=self.worker(slot),
            parent=os.getpid(),
            make_engine=self.make_engine,
            poll_s=self.poll_s,
        )
        proc = self._context.Process(target=render_process, args=(job,), name=f"keng-render-{slot}", daemon=True)
        await asyncio.to_thread(proc.start)  # spawning writes the job to the child: kept off the loop
        dead = self.processes.get(slot)
        if dead is not None:
            dead.close()
        self.processes[slot] = proc
        self._started_at[slot] = time.monotonic()
        log.info("render.process_spawned", slot=slot, pid=proc.pid, worker=job.worker)

    def _stop_all(self) -> None:
        """SIGTERM to each process, a grace period to finish the render in hand, then SIGKILL (blocking: run it in a
        thread)."""
        live = [p for p in self.processes.values() if p.is_alive()]
        for proc in live:
            proc.terminate()
        deadline = time.monotonic() + self.stop_grace_s
        for proc in live:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("render.process_killed", pid=proc.pid, grace_s=self.stop_grace_s)
                proc.kill()
                proc.join(5)
        for proc in self.processes.values():
            if not proc.is_alive():
                proc.close()
        self.processes.clear()
        log.info("render.pool_stopped")
