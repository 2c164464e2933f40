"""Benchmark: no priority inversion. 50,000 `normal` commands queued (throttled), then one `emergency` broadcast.

python bench/priority.py --devices 2000 [--normal 50000] [--broker mosquitto|embedded|mqtt://...] [--json]

1. Baseline: an emergency to the whole district with nothing queued (approval -> each device's `received`).
2. Backlog: `--normal` commands / `--devices` normal broadcasts, each targeting every endpoint one by one (so that
   each is one command per endpoint on its own topic, drained by the outbox at the channel's rate), are approved
   and opened; as soon as the first of them reaches a device, the emergency is approved.
3. The emergency's p99 must stay within the 1.0 s budget of an unloaded one; `ratio` = emergency p99 / baseline p99.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Observer,
    cli,
    district,
    drain,
    latencies_ms,
    report,
    rss_mb,
    start_broker,
    stop_all,
    wait_line,
    wait_online,
)
from keng.adapters.store.app import Keng
from keng.domain.broadcast import Broadcast
from keng.domain.delivery import percentile
from keng.runtime.demo.simulator import fleet_specs
from keng.services import broadcasts


def approve(app: Keng, priority: str, **targets: Any) -> UUID:
    """Draft, submit and approve a drill broadcast; returns its id."""
    bid = broadcasts.draft(
        app,
        by="lan.nguyen",
        title=f"Bench {priority}",
        text="Thông báo thử nghiệm: đề nghị bà con chú ý theo dõi.",
        priority=priority,
        drill=True,
        **targets,
    )
    broadcasts.submit(app, bid, by="lan.nguyen")
    broadcasts.approve(app, bid, by="hung.tran")
    return bid


def approved_at(app: Keng, bid: UUID, since: int) -> datetime:
    return next(
        e.timestamp for _, e in app.read_events(since) if isinstance(e, Broadcast.Approved) and e.originator_id == bid
    )


async def dispatch_of(app: Keng, bid: UUID, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not app.broadcast(bid).dispatches:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no dispatch for {bid} within {timeout} s")
        await asyncio.sleep(0.01)
    return str(app.broadcast(bid).dispatches[0])


async def emergency(app: Keng, observer: Observer, n: int) -> tuple[list[float], str]:
    position = app.max_position()
    bid = approve(app, "emergency", target_areas=["021"])
    t0 = approved_at(app, bid, position)
    did = await dispatch_of(app, bid)
    await observer.wait(did, n, 120)
    return latencies_ms(observer.received[did], t0), did


def stats(values: list[float], prefix: str = "") -> dict[str, float | None]:
    return {
        f"{prefix}p50_ms": percentile(values, 50),
        f"{prefix}p99_ms": percentile(values, 99),
        f"{prefix}max_ms": values[-1] if values else None,
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    address, broker_proc = start_broker(args.broker)
    url, app = district(args.devices)
    codes = [s.code for s in fleet_specs(app)]
    broker_url = address.url()
    sim = cli("--store", url, "simulate", "--broker", broker_url, "--processes", str(args.processes), stdout=-1)
    print(wait_line(sim, "ready"), file=sys.stderr)
    drain(sim)
    observer = Observer(address)
    await observer.start()
    disp = cli(
        "--store", url, "dispatch", "run", "--broker", broker_url, "--slots", "00:00-24:00", "--settle", "10", stdout=-1
    )
    wait_line(disp, "ready")
    drain(disp)
    print(f"statuses recorded in {await wait_online(app, args.devices)} s", file=sys.stderr)

    base, _ = await emergency(app, observer, args.devices)
    print(f"baseline emergency: {stats(base)}", file=sys.stderr)
    await asyncio.sleep(3)  # let its acks settle

    waves = max(1, args.normal // len(codes))
    normal_ids = [approve(app, "normal", target_endpoints=codes) for _ in range(waves)]
    normal_dids = [await dispatch_of(app, bid) for bid in normal_ids]
    while not any(observer.received[d] for d in normal_dids):  # the backlog is draining: the throttle is busy
        await asyncio.sleep(0.005)
    before = sum(len(observer.received[d]) for d in normal_dids)
    loaded, _ = await emergency(app, observer, args.devices)
    after = sum(len(observer.received[d]) for d in normal_dids)
    rss = rss_mb(disp.pid)
    deadline = time.monotonic() + args.drain_s
    while sum(len(observer.received[d]) for d in normal_dids) < waves * len(codes) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    normal_total = sum(len(observer.received[d]) for d in normal_dids)

    await stop_all(observer.link, (disp, sim), broker_proc)
    e, b = stats(loaded), stats(base)
    return {
        "benchmark": "priority",
        "broker": args.broker,
        "devices": args.devices,
        "normal_commands": waves * len(codes),
        "normal_received_when_emergency_approved": before,
        "normal_received_when_emergency_done": after,
        "normal_received_total": normal_total,
        "received": len(loaded),
        **e,
        "emergency_p99_ms": e["p99_ms"],
        "baseline_received": len(base),
        "baseline_p50_ms": b["p50_ms"],
        "baseline_p99_ms": b["p99_ms"],
        "baseline_max_ms": b["max_ms"],
        "ratio": round(e["p99_ms"] / b["p99_ms"], 2) if e["p99_ms"] and b["p99_ms"] else None,
        "within_budget": bool(e["p99_ms"] is not None and e["p99_ms"] <= 1000 and len(loaded) == args.devices),
        "dispatcher_rss_mb": round(rss[0], 1),
        "dispatcher_peak_rss_mb": round(rss[1], 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--normal", type=int, default=50_000, help="normal commands to queue before the emergency")
    parser.add_argument("--broker", default="mosquitto", help="mosquitto (started here), embedded, or mqtt://...")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--drain-s", type=float, default=60, help="how long to wait for the backlog afterwards")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    report(asyncio.run(main(arguments)), arguments.json)
