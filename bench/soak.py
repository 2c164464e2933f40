"""Soak: the full `keng serve` under mixed load for minutes; errors must stay at 0 and no process may keep growing.

    python bench/soak.py [--minutes 10] [--devices 1000] [--webhook-rate 100] [--dispatch-every 10] [--streams 20]
                         [--store postgres://...] [--broker embedded|mosquitto|mqtt://...] [--json]

The configuration users run: `keng serve` with everything in it (the dispatcher, the render processes, the report
and push workers, the audit sealer) over a fresh store (SQLite in a temporary directory, or a new schema on the
PostgreSQL server of `--store`) holding a district of `--devices` IP loudspeakers (bench/common.py `district`), and
`keng simulate` playing every one of them. The broker is a mosquitto started here, as a site of 1,000 loudspeakers
runs one (`keng serve --broker`); `--broker embedded` uses `keng serve`'s own amqtt broker instead (demos and small
sites: a few hundred devices; on this project's 2-core machine it did not connect 1,000 simulated devices within the
simulator's 60 s). For `--minutes`, at once:

- signed city-source webhooks, open loop at `--webhook-rate` per second from a separate process (bench/common.py's
  client), each a bulletin of its own (so each broadcast needs a render), signed when it is sent;
- every `--dispatch-every` seconds a drill broadcast (emergency and normal in turn) to every ward that holds the
  fleet, drafted, submitted and approved over the HTTP API by two staff members, expiring `--drill-expiry` seconds
  after its draft (default 120: a drill is over in minutes); it must close `complete` with every device's `played`
  (the dispatch's summary, read from the store) within `--dispatch-timeout` seconds;
- `--streams` clients of `GET /api/v1/stream`, reconnecting with Last-Event-ID as a browser does; each must carry
  every dispatch's `Dispatch.Closed`.

Errors (target 0): webhooks answered non-2xx, timed out or cut off; stream errors and disconnects, and closed
dispatches a stream never carried; dispatches that did not complete; devices that did not play; processes of the
service or the fleet that exited during the run. The resident memory of every process (`keng serve`, each of its
children found through /proc: render processes, the multiprocessing resource tracker; the simulator and its workers;
a broker started here) is sampled every `--sample-every` seconds: the value after the first minute (half the run when
it is shorter) and at the end of the load, and the growth in % (target: at most +10 % for each). Also: webhook
throughput and latency (per minute too), dispatch completion times, the render backlog at the end, and the CPU the
soak's own clients took from the shared cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    InProcess,
    cpu_s,
    district,
    district_wards,
    drain,
    free_tcp_port,
    fresh,
    hook_body,
    hook_request,
    open_loop,
    start_broker,
    wait_line,
    wait_online,
)
from bench.ingest import render_figures
from keng.adapters.mqtt.broker import BrokerAddress
from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.domain.delivery import percentile
from keng.domain.dispatch import Dispatch
from keng.services import access

ROOT = Path(__file__).resolve().parent.parent
KENG = [sys.executable, "-m", "keng.runtime.cli"]
TARGET_ERRORS = 0
TARGET_GROWTH_PCT = 10.0
STALL_S = 45.0  # a stream that carries nothing, not even its 15 s ping, for this long is stalled (an error)
SSE_SEPARATOR = re.compile(rb"\r\n\r\n|\n\n")


# -- the webhooks, from a process of their own ---------------------------------------------------------------------


def _webhooks(port: int, secret: str, rate: float, duration: float, area: str, timeout_s: float) -> Any:
    """Signed city-source webhooks, open loop; each signed when it is due (a run longer than the signature's 5-minute
    tolerance must not send stale timestamps), each a bulletin of its own."""

    def request(i: int) -> bytes:
        return hook_request(secret, f"soak-{i}", int(time.time()), hook_body("soak", i, True, area))

    result = asyncio.run(open_loop(port, rate, duration, request, timeout_s=timeout_s, window_s=60.0))
    result["cpu_s"] = round(cpu_s(os.getpid()), 1)
    return result


# -- the live-status streams ---------------------------------------------------------------------------------------


@dataclass
class Stream:
    """One `GET /api/v1/stream` client: counts what it carries, notes each `Dispatch.Closed` and how late it came,
    and reconnects with Last-Event-ID after any error (each one counted)."""

    number: int
    token: str
    messages: int = 0
    connects: int = 0
    errors: list[str] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)
    lags_ms: list[float] = field(default_factory=list)
    last_id: str | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False

    async def run(self, session: aiohttp.ClientSession, base: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=STALL_S)
        while not self.stopping:
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            try:
                async with session.get(f"{base}/api/v1/stream", headers=headers, timeout=timeout) as response:
                    if response.status != 200:
                        self._error(f"HTTP {response.status}")
                        await asyncio.sleep(1.0)
                        continue
                    self.connects += 1
                    self.connected.set()
                    buffer = b""
                    async for chunk in response.content.iter_any():
                        *messages, buffer = SSE_SEPARATOR.split(buffer + chunk)
                        for message in messages:
                            self._on(message)
                self._error("disconnected")
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                self._error(f"{type(e).__name__}: {e}"[:200])
                await asyncio.sleep(0.5)

    def _error(self, what: str) -> None:
        if not self.stopping:
            self.errors.append(what)

    def _on(self, message: bytes) -> None:
        event, data = b"", b""
        for line in message.splitlines():
            if line.startswith(b"id:"):
                self.last_id = line[3:].strip().decode()
            elif line.startswith(b"event:"):
                event = line[6:].strip()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if not data:
            return  # a ping (an SSE comment)
        self.messages += 1
        if event == b"Dispatch.Closed":
            view = orjson.loads(data)
            self.closed.add(view["dispatch_id"])
            at = datetime.fromisoformat(view["time"])
            self.lags_ms.append(max(0.0, (datetime.now(UTC) - at).total_seconds() * 1000))
        elif event == b"revoked":
            self._error(f"revoked: {data.decode()[:200]}")


# -- the dispatches ------------------------------------------------------------------------------------------------


class Api:
    """The operator API as the console's users reach it, with a bearer token per person."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with self.session.request(
            method,
            self.base + path,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            data=orjson.dumps(body or {}) if method == "POST" else None,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            payload = await response.read()
            if not 200 <= response.status < 300:
                raise RuntimeError(f"{method} {path}: HTTP {response.status} {payload[:300]!r}")
            result: dict[str, Any] = orjson.loads(payload)
            return result


@dataclass
class DispatchRun:
    """One broadcast of the soak and what became of its dispatch."""

    number: int
    priority: str
    broadcast_id: str = ""
    dispatch_id: str = ""
    completion_s: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    verdict: str | None = None
    error: str | None = None

    @property
    def complete(self) -> bool:
        return (
            self.error is None
            and self.summary.get("outcome") == "complete"
            and self.summary.get("played") == self.summary.get("targeted")
        )

    def not_played(self, devices: int) -> int:
        return devices - int(self.summary.get("played", 0)) if self.summary else devices


class Dispatches:
    """A drill broadcast to the fleet's wards every `every` seconds, emergency and normal in turn (or one of them),
    approved over the HTTP API; each one followed to its dispatch's close in the store (one thread reads it)."""

    def __init__(
        self, api: Api, app: Keng, tokens: tuple[str, str], wards: list[str], args: argparse.Namespace
    ) -> None:
        self.api, self.app, self.wards = api, app, wards
        self.drafter, self.approver = tokens
        self.every, self.timeout, self.mode = args.dispatch_every, args.dispatch_timeout, args.priority
        self.expiry = timedelta(seconds=args.drill_expiry)
        self.runs: list[DispatchRun] = []
        self.store = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soak-store")

    async def run(self, until: float) -> None:
        tasks = []
        number = 0
        while time.monotonic() < until:
            priority = self.mode if self.mode != "mixed" else ("emergency", "normal")[number % 2]
            item = DispatchRun(number, priority)
            self.runs.append(item)
            tasks.append(asyncio.create_task(self.one(item)))
            number += 1
            await asyncio.sleep(max(0.0, min(until, self._t0 + number * self.every) - time.monotonic()))
        await asyncio.gather(*tasks)

    def start(self) -> None:
        self._t0 = time.monotonic()

    async def one(self, item: DispatchRun) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            body = {
                "title": f"Diễn tập {item.number}",
                "text": f"Bản tin diễn tập số {item.number}: đề nghị bà con chú ý theo dõi loa truyền thanh.",
                "priority": item.priority,
                "targets": {"areas": self.wards},
                "drill": True,
                # a drill is over in minutes; the devices keep a dispatch's de-duplication entries until it expires
                "expires_at": (datetime.now(UTC) + self.expiry).isoformat(),
            }
            view = await self.api.call("POST", "/api/v1/broadcasts", self.drafter, body)
            item.broadcast_id = view["id"]
            path = f"/api/v1/broadcasts/{item.broadcast_id}"
            await self.api.call("POST", f"{path}/submit", self.drafter)
            view = await self.api.call("POST", f"{path}/approve", self.approver)
            approved_at = datetime.fromisoformat(view["approvals"][-1]["at"])
            while not view["dispatches"]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no dispatch opened within {self.timeout:g} s of the approval")
                await asyncio.sleep(0.25)
                view = await self.api.call("GET", path, self.drafter)
            item.dispatch_id = str(view["dispatches"][0])
            loop = asyncio.get_running_loop()
            while True:
                dispatch = await loop.run_in_executor(self.store, self._dispatch, item.dispatch_id)
                if dispatch.closed:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the dispatch did not close within {self.timeout:g} s of the approval")
                await asyncio.sleep(0.5)
            item.summary = dict(dispatch.summary)
            item.verdict = dispatch.verdict.get("verdict") if dispatch.verdict else None
            item.completion_s = round((dispatch.modified_on - approved_at).total_seconds(), 2)
        except Exception as e:
            item.error = f"{type(e).__name__}: {e}"[:300]

    def _dispatch(self, dispatch_id: str) -> Dispatch:
        return self.app.load(Dispatch, UUID(dispatch_id), "dispatch")


# -- the processes and their memory -------------------------------------------------------------------------------


def children() -> dict[int, list[int]]:
    """Every process's children (from /proc)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], list(tree.get(pid, []))
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(tree.get(child, []))
    return sorted(found)


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def role(pid: int, parent: str) -> str:
    """What a child is, from its command line: the multiprocessing resource tracker, or a spawned worker (a render
    process of `keng serve`, a device process of `keng simulate`)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"{parent}-child"
    if b"resource_tracker" in cmdline:
        return f"{parent}-resource-tracker"
    if b"spawn_main" in cmdline:
        return {"serve": "serve-render-process", "simulator": "simulator-devices"}.get(parent, f"{parent}-worker")
    return f"{parent}-child"


@dataclass
class Tracked:
    label: str
    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the load, RSS MB)
    cpu: list[float] = field(default_factory=list)  # CPU seconds used, at each sample
    gone_at: float | None = None


class Memory:
    """Samples the resident memory of the service's, the fleet's and the broker's processes (and their descendants,
    found anew each time through /proc)."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.tracked: dict[int, Tracked] = {}
        self.t0 = time.monotonic()

    def sample(self) -> None:
        at = round(time.monotonic() - self.t0, 1)
        tree = children()
        alive: set[int] = set()
        for name, root in self.roots.items():
            for pid in [root, *descendants(root, tree)]:
                kb = rss_kb(pid)
                if kb is None:
                    continue
                if pid not in self.tracked:
                    label = name if pid == root else role(pid, name)
                    same = sum(1 for t in self.tracked.values() if t.label.startswith(label))
                    self.tracked[pid] = Tracked(f"{label}-{same + 1}" if pid != root else label, pid)
                self.tracked[pid].samples.append((at, round(kb / 1024, 1)))
                with contextlib.suppress(OSError, IndexError, ValueError):
                    self.tracked[pid].cpu.append(cpu_s(pid))
                alive.add(pid)
        for pid, tracked in self.tracked.items():
            if pid not in alive and tracked.gone_at is None:
                tracked.gone_at = at

    async def run(self, every: float) -> None:
        while True:
            self.sample()
            await asyncio.sleep(every)

    def figures(self, baseline_at: float) -> dict[str, dict[str, Any]]:
        out = {}
        for t in self.tracked.values():
            base = next(((at, mb) for at, mb in t.samples if at >= baseline_at), t.samples[0])
            end = t.samples[-1]
            out[t.label] = {
                "pid": t.pid,
                "baseline_at_s": base[0],
                "baseline_mb": base[1],
                "end_mb": end[1],
                "peak_mb": max(mb for _, mb in t.samples),
                "growth_pct": round((end[1] - base[1]) / base[1] * 100, 1) if base[1] else None,
                "exited_at_s": t.gone_at,
                "cpu_s": round(t.cpu[-1] - t.cpu[0], 1) if t.cpu else None,  # during the load
            }
        return out


# -- the run -------------------------------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def serve_env(data: Path, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "KENG_DATA": str(data),
        "KENG_STORE": url,
        "KENG_LOG_LEVEL": os.environ.get("KENG_BENCH_LOG_LEVEL", "warning"),
        "KENG_LOG_FORMAT": "json",
        # keng as this checkout has it, ahead of any installed copy
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p),
    }


async def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"keng serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.25)
    raise RuntimeError(f"keng serve not ready within {timeout:g} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes], grace: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(grace)
    except subprocess.TimeoutExpired:
        print(f"process {proc.pid} ignored SIGTERM for {grace:g} s; killed", file=sys.stderr)
        proc.kill()
        return proc.wait()


def logged_errors(log: Path) -> list[str]:
    """The events `keng serve` logged at level error or above (JSON lines)."""
    found = []
    for line in log.read_bytes().splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            entry = orjson.loads(line)
            if isinstance(entry, dict) and entry.get("level") in ("error", "critical", "exception"):
                found.append(str(entry.get("event")))
    return found


async def soak(args: argparse.Namespace, data: Path, url: str) -> dict[str, Any]:
    duration = args.minutes * 60
    t = time.monotonic()
    _, app = district(args.devices, url, data)
    wards = district_wards(args.devices)
    secret = access.add_integration(
        app, SecretStore(data), name="city-source", kind="city-source", jurisdiction=["021"], by="admin"
    )
    tokens = (
        access.issue_token(app, staff="lan.nguyen", label="soak", by="admin"),  # drafter
        access.issue_token(app, staff="hung.tran", label="soak", by="admin"),  # approver
    )
    say(f"district of {args.devices} loudspeakers in {len(wards)} wards stored in {time.monotonic() - t:.1f} s")

    env = serve_env(data, url)
    broker_proc: subprocess.Popen[bytes] | None = None
    if args.broker == "embedded":
        address = BrokerAddress("127.0.0.1", free_tcp_port(), mqtt5=False)  # `keng serve`'s own (amqtt, in-process)
        env["KENG_BROKER_LISTEN"] = f"{address.host}:{address.port}"
        broker_args: list[str] = []
    else:
        address, broker_proc = start_broker(args.broker)
        broker_args = ["--broker", address.url()]
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    log = data / "serve.log"
    with log.open("ab") as out:
        serve = subprocess.Popen(
            [*KENG, "serve", "--port", str(port), "--slots", "00:00-24:00", *broker_args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    sim: subprocess.Popen[bytes] | None = None
    streams: list[Stream] = []
    stream_tasks: list[asyncio.Task[None]] = []
    try:
        await wait_ready(base, serve, log)
        say(f"keng serve ready on {base} ({time.monotonic() - t:.1f} s)")
        sim = subprocess.Popen(
            [
                *KENG,
                "simulate",
                "--devices",
                str(args.devices),
                "--broker",
                address.url(),
                "--fail-rate",
                str(args.fail_rate),
            ],
            env=env,
            stdout=subprocess.PIPE,
        )
        # wait_line blocks on the pipe: bounded here, and the pipe ends when `finally` stops the simulator
        say(await asyncio.wait_for(asyncio.to_thread(wait_line, sim, "ready"), 300))
        drain(sim)
        say(f"{args.devices} devices online in {await wait_online(app, args.devices)} s")

        roots = {"serve": serve.pid, "simulator": sim.pid}
        if broker_proc is not None:
            roots["broker"] = broker_proc.pid
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            streams = [Stream(i, tokens[i % 2]) for i in range(args.streams)]
            stream_tasks = [asyncio.create_task(s.run(session, base)) for s in streams]
            await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in streams)), 60)
            say(f"{args.streams} streams open; soaking for {args.minutes:g} min")

            own_cpu0 = cpu_s(os.getpid())
            memory = Memory(roots)
            sampler = asyncio.create_task(memory.run(args.sample_every))
            hooks = InProcess(_webhooks, port, secret, args.webhook_rate, duration, wards[0], args.timeout)
            driver = Dispatches(Api(session, base), app, tokens, wards, args)
            driver.start()
            until = memory.t0 + duration
            dispatching = asyncio.create_task(driver.run(until))
            await asyncio.sleep(max(0.0, until - time.monotonic()))
            sampler.cancel()
            memory.sample()  # the end of the load
            hook_result: dict[str, Any] = await asyncio.to_thread(hooks.result, duration + 300)
            await dispatching
            closed = {r.dispatch_id for r in driver.runs if r.summary}
            settle = time.monotonic() + 10  # the streams' last Dispatch.Closed may be a poll behind
            while time.monotonic() < settle and any(closed - s.closed for s in streams):
                await asyncio.sleep(0.2)
            own_cpu = cpu_s(os.getpid()) - own_cpu0
            for s in streams:
                s.stopping = True
            for task in stream_tasks:
                task.cancel()
            await asyncio.gather(*stream_tasks, return_exceptions=True)
    finally:
        for s in streams:
            s.stopping = True
        for task in stream_tasks:
            task.cancel()
        serve_exit = stop(serve)
        if sim is not None:
            stop(sim)
        if broker_proc is not None:
            broker_proc.terminate()
            broker_proc.wait(10)
    renders = render_figures(url, data)
    app.close()
    return figures(args, hook_result, driver.runs, streams, closed, memory, duration, own_cpu) | {
        "render_backlog_at_end": renders["render_backlog"],
        "renders_done": renders["renders_done"],
        "broadcasts": renders["broadcasts"],
        "serve_exit_status": serve_exit,
        "serve_logged_errors": dict(Counter(logged_errors(log))),
    }


def figures(
    args: argparse.Namespace,
    hooks: dict[str, Any],
    runs: list[DispatchRun],
    streams: list[Stream],
    closed: set[str],
    memory: Memory,
    duration: float,
    own_cpu: float,
) -> dict[str, Any]:
    baseline_at = min(60.0, duration / 2)
    rss = memory.figures(baseline_at)
    missed = sum(len(closed - s.closed) for s in streams)
    stream_errors = [e for s in streams for e in s.errors]
    incomplete = [r for r in runs if not r.complete]
    exits = [label for label, r in rss.items() if r["exited_at_s"] is not None]
    kinds = {
        "webhook_non_2xx": hooks["errors"] - hooks["timeouts"] - hooks["broken"],
        "webhook_timeouts": hooks["timeouts"],
        "webhook_broken_connections": hooks["broken"],
        "stream_errors": len(stream_errors),
        "stream_missed_dispatch_closes": missed,
        "dispatches_not_completed": len(incomplete),
        "devices_not_played": sum(r.not_played(args.devices) for r in runs),
        "process_exits": len(exits),
    }
    completions = sorted(r.completion_s for r in runs if r.completion_s is not None)
    lags = sorted(lag for s in streams for lag in s.lags_ms)
    growths = [r["growth_pct"] for r in rss.values() if r["growth_pct"] is not None]
    worst = max(growths) if growths else None
    by_priority = {
        p: sorted(r.completion_s for r in runs if r.priority == p and r.completion_s is not None)
        for p in ("emergency", "normal")
    }
    errors = sum(kinds.values())
    return {
        "benchmark": "soak",
        "minutes": args.minutes,
        "store": "postgres" if args.store else "sqlite",
        "broker": args.broker,
        "devices": args.devices,
        "webhook_rate": args.webhook_rate,
        "dispatch_every_s": args.dispatch_every,
        "streams": args.streams,
        "errors": errors,
        "errors_target": TARGET_ERRORS,
        "errors_met": errors <= TARGET_ERRORS,
        "errors_by_kind": kinds,
        "webhooks_sent": hooks["sent"],
        "webhooks_ok": hooks["ok"],
        "webhook_statuses": hooks["statuses"],
        "webhook_per_s": hooks["per_s"],
        "webhook_p50_ms": hooks["p50_ms"],
        "webhook_p99_ms": hooks["p99_ms"],
        "webhook_max_ms": hooks["max_ms"],
        "webhook_p99_ms_by_minute": [w["p99_ms"] for w in hooks.get("windows", [])],
        "dispatches": len(runs),
        "dispatches_completed": len(runs) - len(incomplete),
        "dispatch_failures": [
            {"number": r.number, "priority": r.priority, "error": r.error, "summary": r.summary} for r in incomplete
        ][:10],
        "dispatch_completion_s_p50": percentile(completions, 50),
        "dispatch_completion_s_max": completions[-1] if completions else None,
        "dispatch_completion_s_by_priority": {
            p: {"p50": percentile(v, 50), "max": v[-1] if v else None} for p, v in by_priority.items()
        },
        "dispatch_received_p99_ms_max": max(
            (r.summary["latency_ms"][r.priority]["p99"] or 0 for r in runs if r.summary),
            default=None,
        ),
        "dispatch_budget_verdicts": dict(Counter(f"{r.priority} {r.verdict}" for r in runs if r.verdict)),
        "stream_messages": sum(s.messages for s in streams),
        "stream_connects": sum(s.connects for s in streams),
        "stream_error_samples": stream_errors[:5],
        "stream_close_lag_ms_p99": round(percentile(lags, 99) or 0.0, 1) if lags else None,
        "rss_baseline_at_s": baseline_at,
        "rss": rss,
        "rss_growth_max_pct": worst,
        "rss_growth_target_pct": TARGET_GROWTH_PCT,
        "rss_growth_met": worst is not None and worst <= TARGET_GROWTH_PCT,
        "process_exits": exits,
        "client_cpu_s": {"webhooks": hooks.get("cpu_s"), "streams_and_dispatches": round(own_cpu, 1)},
    }


def show(r: dict[str, Any]) -> None:
    """The figures and the targets, for a person."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    print(
        f"soak {r['minutes']:g} min, {r['store']}, broker {r['broker']}: {r['devices']} devices, "
        f"{r['webhook_rate']:g} webhooks/s, a dispatch every {r['dispatch_every_s']:g} s, {r['streams']} streams"
    )
    print(f"errors: {r['errors']} (target {TARGET_ERRORS}: {verdict(r['errors_met'])})")
    for kind, n in r["errors_by_kind"].items():
        print(f"  {kind:<32}{n:>8}")
    print(
        f"webhooks: {r['webhooks_ok']} of {r['webhooks_sent']} accepted, {r['webhook_per_s']}/s, "
        f"p50 {r['webhook_p50_ms']} ms, p99 {r['webhook_p99_ms']} ms, max {r['webhook_max_ms']} ms"
    )
    print(f"  p99 by minute (ms): {r['webhook_p99_ms_by_minute']}")
    print(
        f"dispatches: {r['dispatches_completed']} of {r['dispatches']} complete with every device's `played`; "
        f"completion (approval -> closed) p50 {r['dispatch_completion_s_p50']} s, "
        f"max {r['dispatch_completion_s_max']} s; by priority {r['dispatch_completion_s_by_priority']}"
    )
    print(f"  latency budget verdicts: {r['dispatch_budget_verdicts']}")
    print(
        f"streams: {r['stream_messages']} messages, {r['stream_connects']} connections, Dispatch.Closed lag p99 "
        f"{r['stream_close_lag_ms_p99']} ms"
    )
    print(f"render backlog at the end: {r['render_backlog_at_end']} (renders done {r['renders_done']})")
    print(f"resident memory (MB), after {r['rss_baseline_at_s']:g} s and at the end of the load:")
    for label, m in r["rss"].items():
        gone = f", exited at {m['exited_at_s']} s" if m["exited_at_s"] is not None else ""
        print(
            f"  {label:<32}{m['baseline_mb']:>9}{m['end_mb']:>9}  {m['growth_pct']:+}%  (peak {m['peak_mb']}, "
            f"CPU {m['cpu_s']} s{gone})"
        )
    print(
        f"RSS growth, worst process: {r['rss_growth_max_pct']:+}% (target <= +{TARGET_GROWTH_PCT:g}%: "
        f"{verdict(r['rss_growth_met'])})"
    )
    if r["serve_logged_errors"]:
        print(f"keng serve logged errors: {r['serve_logged_errors']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--devices", type=int, default=1000, help="simulated loudspeakers (default 1,000)")
    parser.add_argument("--webhook-rate", type=float, default=100.0, help="signed webhooks per second (default 100)")
    parser.add_argument("--dispatch-every", type=float, default=10.0, help="seconds between dispatches (default 10)")
    parser.add_argument("--dispatch-timeout", type=float, default=60.0, help="approval -> closed, at most (s)")
    parser.add_argument(
        "--drill-expiry", type=float, default=120.0, help="each drill broadcast expires this long after its draft (s)"
    )
    parser.add_argument("--priority", choices=("mixed", "emergency", "normal"), default="mixed")
    parser.add_argument("--streams", type=int, default=20, help="SSE clients of /api/v1/stream (default 20)")
    parser.add_argument("--timeout", type=float, default=10.0, help="a webhook unanswered this long is an error (s)")
    parser.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        help="share of commands the simulated devices fail to play (default 0; above it, a check that the soak counts "
        "what did not play)",
    )
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    parser.add_argument(
        "--store", default=None, help="postgres://... (a new schema there; default: SQLite in a temp dir)"
    )
    parser.add_argument(
        "--broker",
        default="mosquitto",
        help="mosquitto (started here, the default), embedded (keng serve's own amqtt broker) or mqtt://...",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object, last")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keng-soak-") as tmp, fresh(args.store, Path(tmp)) as url:
        result = asyncio.run(soak(args, Path(tmp), url))
    show(result)
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode())


if __name__ == "__main__":
    main()
