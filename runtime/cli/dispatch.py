"""CLI commands for delivery: `dispatch run` (the dispatcher + MQTT bridge), `simulate` (a device fleet), `demo`.

The broker comes from `--broker` or `KENG_MQTT` (`mqtt://user:pass@host:port`, or `mqtts://...` over TLS); with
neither, `dispatch run` starts the embedded amqtt broker in its own process (demos and small sites) on
KENG_BROKER_LISTEN (default 127.0.0.1:1883). Topics live under KENG_TOPIC_ROOT (default keng/v1). The parts are built
by runtime/bootstrap.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import signal
from typing import Any

import orjson
import structlog

from keng.adapters.aio import cancel_and_wait
from keng.adapters.mqtt.broker import BrokerAddress
from keng.adapters.mqtt.topics import TopicRootError, check_root
from keng.adapters.secrets import SecretStore
from keng.runtime.bootstrap import (
    broker_for,
    broker_of,
    build_dispatcher,
    build_pusher,
    delivery_options,
    open_app,
    partitions_of,
    programme_of,
    topics_of,
    warn_loose_permissions,
)
from keng.runtime.cli.args import digits
from keng.runtime.cli.listen import broker_plan
from keng.runtime.config import Settings
from keng.runtime.demo.simulator import DeviceSpec, Fleet, FleetOptions, fleet_specs
from keng.runtime.dispatch.dispatcher import Dispatcher
from keng.runtime.process import freeze_long_lived
from keng.runtime.workers.reporter import Reporter
from keng.runtime.workers.sealer import sealer_for, sealing

log = structlog.get_logger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dispatch run`, `simulate` and `demo`."""
    dispatch = sub.add_parser("dispatch", help="phát lệnh tới thiết bị (deliver broadcasts over MQTT)")
    verbs = dispatch.add_subparsers(dest="action", required=True)
    p = verbs.add_parser("run", help="run the dispatcher: follow the log, publish commands, record acks")
    p.add_argument(
        "--broker",
        default=None,
        help="mqtt://user:pass@host:port or mqtts://...?ca=PATH, several separated by commas for a broker cluster "
        "(default $KENG_MQTT, else embedded)",
    )
    p.add_argument(
        "--embedded-port",
        type=digits("--embedded-port", lo=0, hi=65535),
        default=None,
        help="port of the embedded broker (default: that of $KENG_BROKER_LISTEN, 127.0.0.1:1883; 0: any free port)",
    )
    p.add_argument("--slots", default=None, help="programme slots, e.g. 05:30-06:30,17:00-18:00 (+07:00)")
    p.add_argument("--quiet", default=None, help="quiet hours, e.g. 22:00-05:00 or none (default: the sample's)")
    p.add_argument(
        "--public-url",
        default=None,
        help="base URL devices fetch audio and board pages from, as `keng serve` is reached "
        "(default http://127.0.0.1:8080); links are signed with the data directory's key",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=None,
        help="close a dispatch this many seconds after opening "
        "once every endpoint that answered is done (default: keep it open until expiry)",
    )
    p.set_defaults(handler=cmd_dispatch_run)
    p = verbs.add_parser(
        "workers", help="the workers sharing this store's dispatch work: when each last renewed, the slots it holds"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(handler=cmd_dispatch_workers)

    p = sub.add_parser("simulate", help="a simulated fleet of the store's endpoints, obeying device protocol v1")
    p.add_argument("--devices", type=int, default=None, help="how many endpoints (default: all in the store)")
    p.add_argument(
        "--broker",
        default=None,
        help="mqtt[s]://host:port, several separated by commas for a broker cluster: the devices spread over its nodes "
        "(default $KENG_MQTT or mqtt://127.0.0.1:1883)",
    )
    p.add_argument("--topic-root", type=topic_root, default=None, help="topic root (default $KENG_TOPIC_ROOT, keng/v1)")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: 1 per 2,500 devices)")
    p.add_argument("--offline-rate", type=float, default=0.0, help="share of devices that start offline")
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of commands a device fails to play")
    p.add_argument("--play-scale", type=float, default=0.01, help="simulated playback time per second of audio")
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("demo", help="the whole path on embedded defaults: sample district, broker, fleet, alert")
    p.add_argument("--offline-rate", type=float, default=0.05)
    p.set_defaults(handler=cmd_demo)


def topic_root(text: str) -> str:
    """An argparse `type`: a valid topic root (adapters/mqtt/topics.py)."""
    try:
        return check_root(text)
    except TopicRootError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _dispatch_until_signalled(dispatcher: Dispatcher, broker: BrokerAddress) -> None:
    task = asyncio.create_task(dispatcher.run())
    waiter = asyncio.create_task(_until_signalled())
    ready = asyncio.create_task(dispatcher.ready.wait())
    content: asyncio.Task[bool] | None = None
    # a signal stops it at any stage, also while the broker cannot be reached (never ready) or the voice loads
    await asyncio.wait({task, ready, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if dispatcher.ready.is_set() and not waiter.done():
        content = asyncio.create_task(dispatcher.content_ready())  # an emergency without audio is rendered at once
        await asyncio.wait({task, content, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if content.done():
            print(f"Sẵn sàng phát (dispatcher ready) on {broker.display}", flush=True)
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for t in (task, waiter, ready, *([content] if content else [])):
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t


def cmd_dispatch_workers(args: argparse.Namespace, settings: Settings) -> int:
    """List the live workers (docs/dispatch.md, Several workers on one store)."""
    from keng.adapters.store.leases import Leases, workers_seen

    app = open_app(settings, create=False)
    try:
        leases = Leases.of(app, worker="keng-cli", slots=settings.partitions, ttl_s=settings.lease_ttl_s)
        leases.ensure()
        seen = workers_seen(leases)
    finally:
        app.close()
    held = sum(len(w.slots) for w in seen)
    if args.json:
        rows = [
            {
                "worker": w.worker,
                "started_s_ago": round(w.started_s_ago, 1),
                "seen_s_ago": round(w.seen_s_ago, 2),
                "slots": list(w.slots),
            }
            for w in seen
        ]
        print(orjson.dumps({"partitions": settings.partitions, "held": held, "workers": rows}).decode())
        return 0
    if not seen:
        print(f"Không có tiến trình phát nào đang chạy (no worker holds any of the {settings.partitions} slots)")
        return 0
    print(f"{len(seen)} worker(s), {held}/{settings.partitions} slots held:")
    for w in seen:
        print(f"  {w.worker}  slots={len(w.slots):<4} renewed {w.seen_s_ago:.1f} s ago, up {w.started_s_ago:.0f} s")
    if held < settings.partitions:
        print(f"  {settings.partitions - held} slot(s) free: taken at the workers' next tick, or after a lease expires")
    return 0


def cmd_dispatch_run(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.override(
        broker_url=args.broker, slots=args.slots, quiet=args.quiet, settle_s=args.settle, public_url=args.public_url
    )
    if args.embedded_port is not None:
        settings = settings.override(broker_listen=(settings.broker_listen[0], args.embedded_port))
    settings, broker_line = broker_plan(settings)
    app = open_app(settings, create=False)
    warn_loose_permissions(settings.data_dir)

    async def dispatch() -> None:
        async with broker_for(settings) as (broker, _):
            print(broker_line, flush=True)
            dispatcher = build_dispatcher(
                app,
                broker,
                topics=topics_of(settings),
                programme=programme_of(settings),
                settle_s=settings.settle_s,
                budgets=settings.latency_budgets,
                freeze_gc=True,
                partitions=(partitions := partitions_of(settings, app)),
                **delivery_options(settings),
            )
            # as in `keng serve`: the leader of the workers on this store (slot 0's holder) sends the delivery reports
            # and the pushes, whichever kind of worker it is
            senders = [
                asyncio.create_task(
                    Reporter(app, SecretStore(settings.data_dir), active=lambda: partitions.leader).run()
                ),
                asyncio.create_task(build_pusher(settings, app, active=lambda: partitions.leader).run()),
            ]
            try:
                await _dispatch_until_signalled(dispatcher, broker)
            finally:
                await cancel_and_wait(senders)

    async def main() -> None:
        async with sealing(sealer_for(app, settings)):  # the dispatcher may be the only writer (serve --no-dispatcher)
            await dispatch()

    asyncio.run(main())
    return 0


def _worker(broker: BrokerAddress, specs: list[DeviceSpec], options: FleetOptions, ready: Any) -> None:
    async def main() -> None:
        fleet = Fleet(broker, specs, options)
        connected = await fleet.start()
        freeze_long_lived()  # 5,000 devices' connections, parsers and state
        ready.put(connected)
        await _until_signalled()
        await fleet.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def run_processes(broker: BrokerAddress, specs: list[DeviceSpec], options: FleetOptions, processes: int) -> None:
    """Spread a fleet over worker processes; print `ready N` once all connected; stop on SIGINT/SIGTERM."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    workers = []
    for i in range(processes):
        part = specs[i::processes]
        opts = FleetOptions(**{**vars(options), "seed": options.seed + i})
        proc = ctx.Process(target=_worker, args=(broker, part, opts, ready), daemon=True)
        proc.start()
        workers.append(proc)
    # A signal stops the fleet at any stage, also before every worker reported (a broker that cannot be reached):
    # the workers are ended, never left behind.
    previous = {sig: signal.signal(sig, _stop_fleet) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        connected = sum(ready.get(timeout=600) for _ in workers)
        print(
            f"ready {connected} of {len(specs)} devices in {processes} processes on {broker.display} "
            f"under {options.topic_root}/",
            flush=True,
        )
        while True:
            signal.pause()
    except _FleetStopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.join(10)


class _FleetStopped(Exception):
    """SIGINT or SIGTERM reached `keng simulate`."""


def _stop_fleet(signum: int, frame: object) -> None:
    raise _FleetStopped


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.override(broker_url=args.broker, topic_root=args.topic_root)
    broker = broker_of(settings, "mqtt://127.0.0.1:1883")
    assert broker is not None
    app = open_app(settings, create=False)
    specs = fleet_specs(app, limit=args.devices)
    options = FleetOptions(
        fail_rate=args.fail_rate,
        offline_rate=args.offline_rate,
        play_scale=args.play_scale,
        topic_root=settings.topic_root,
    )
    processes = args.processes or max(1, min(os.cpu_count() or 1, (len(specs) + 2499) // 2500))
    run_processes(broker, specs, options, processes)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from keng.runtime.demo.run import run_demo

    return asyncio.run(run_demo(settings, offline_rate=args.offline_rate))
