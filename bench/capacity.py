"""Capacity: one `keng serve` worker against two on one PostgreSQL store, in the same run: ingest and dispatch.

    python bench/capacity.py [--devices 1000] [--wards 50] [--rounds 3] [--store postgres://USER@HOST:PORT/DB]
                             [--rates 100,200,...] [--step-duration 10] [--fleet-processes 1] [--json]

For each configuration (1 worker, then 2 workers) the run makes a fresh schema in the PostgreSQL database of --store
(default postgres://postgres@127.0.0.1:5432/test), a synthetic district (one district, --wards generated wards,
--devices IP loudspeakers in residential groups of 20 dealt over the wards), one city-source integration, a
mosquitto of its own and the simulated fleet (`keng simulate`), and starts the workers as users run them: `keng
serve` processes (API, dispatcher, render process, report and push workers) on one data directory and one broker
(KENG_MQTT), the default KENG_PARTITIONS (64) and KENG_LEASE_TTL_S (3 s), each started once the previous one is ready,
the measurement starting once the slots are spread evenly over them and every device is recorded online.

(b) Dispatch, first: per round, one emergency per ward (so that both workers get work: a broadcast belongs to the slot
of its first ward), drafted, submitted and rendered ahead by the render processes, then all approved in one
transaction. Measured from that approval: the devices played per second (played acks / time of the last played ack),
the time until every dispatch is closed, the first-ack latency p50/p99 over all devices. The median round is
reported; every round is in --json.

(a) Ingest, then (the fleet stopped): signed city-source webhooks, each a bulletin of its own (a render each, as in
`bench/ingest.py --full`), sent open-loop from a separate process over 64 keep-alive connections dealt over the
workers' ports (each connection takes the next due request when it is free, as a load balancer with
least-outstanding-requests would), in steps of rising rate (--rates, --step-duration seconds each) until a step is
not sustained. A step is sustained when at least 97 % of the offered rate was accepted per second, nothing was
refused and p99 <= --p99-limit-ms (default 1,000 ms: latency counts from each request's due time, so a server that
falls behind shows it). Reported: the highest rate sustained and its p50/p99, and the workers' CPU per webhook there.

Be careful what this shows. This machine has 2 cores, shared by everything the run starts: PostgreSQL, mosquitto,
the fleet, the load generator, every worker and its render process (and by whatever else runs on it). Two workers on
one 2-core box do not get more CPU than one: what the 2-worker column shows is the coordination cost of running two
(lease ticks, the ack stream read by both, read models followed by both, two event loops competing for two cores),
not horizontal scaling. Horizontal scaling needs the workers on machines of their own (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventsourcing.persistence import ProgrammingError

from bench.common import (
    KENG,
    add_city_source,
    cpu_s,
    district,
    district_wards,
    drain,
    free_tcp_port,
    fresh,
    keng_env,
    run_load,
    start_broker,
    wait_line,
    wait_online,
)
from keng.adapters.readstore.sql import SqlDb
from keng.adapters.store.app import Keng
from keng.adapters.store.leases import Leases, shares, slot_of
from keng.domain.broadcast import Broadcast
from keng.domain.delivery import percentile
from keng.domain.dispatch import Dispatch
from keng.runtime.logs import configure_logging
from keng.services import broadcasts

DEFAULT_STORE = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_RATES = "100,200,300,400,600,800,1000,1200,1500"
PARTITIONS = 64  # the default KENG_PARTITIONS, which the workers run with
SUSTAINED_SHARE = 0.97
CAVEAT = (
    "This machine has 2 cores shared by everything in the run (PostgreSQL, mosquitto, the fleet, the load "
    "generator, the workers and their render processes): 2 workers here show the cost of coordinating two, "
    "not horizontal scaling, which needs a machine per worker."
)


class Workers:
    """`keng serve` processes on one data directory, store and broker, each on a port of its own; JSON logs (warnings)
    in a file per worker."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder = env, folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    def start(self) -> None:
        """One more worker, waited for until /readyz answers 200 (the devices' links point at the first one, as
        they would at the load balancer)."""
        port = free_tcp_port()
        public = f"http://127.0.0.1:{self.ports[0] if self.ports else port}"
        with (self.folder / f"worker-{len(self.procs)}.log").open("ab") as log:
            proc = subprocess.Popen(
                [*KENG, "serve", "--port", str(port), "--public-url", public],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.procs.append(proc)
        self.ports.append(port)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker on {port} not ready (exit {proc.poll()}); see {self.folder}")
            time.sleep(0.2)

    def cpu(self) -> float:
        """CPU seconds the workers (not their render processes) have used so far."""
        return sum(cpu_s(p.pid) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                print(f"worker {proc.pid} ignored SIGTERM for 60 s; killed", file=sys.stderr)
                proc.kill()
                proc.wait()


def wait_spread(leases: Leases, workers: int, timeout: float = 60) -> dict[int, str]:
    """Wait until the slots are spread evenly over `workers` live workers; returns slot -> worker."""
    deadline = time.monotonic() + timeout
    want = sorted(shares([str(i) for i in range(workers)], PARTITIONS).values())
    holders: dict[int, str] = {}
    while True:
        with contextlib.suppress(ProgrammingError):  # the first worker's /readyz answers before it makes the tables
            holders = leases.holders()
        if sorted(Counter(holders.values()).values()) == want:
            return holders
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"slots not spread over {workers} workers within {timeout} s: {Counter(holders.values())}"
            )
        time.sleep(0.25)


def dispatch_round(
    app: Keng, wards: list[str], round_no: int, workers: Workers, timeout: float = 300
) -> dict[str, Any]:
    """One emergency per ward, rendered ahead, approved in one transaction; figures from the log once every dispatch
    is closed."""
    bids: list[UUID] = []
    for ward in wards:
        bid = broadcasts.draft(
            app,
            by="lan.nguyen",
            title=f"Diễn tập khẩn cấp {round_no}",
            text="Cảnh báo khẩn cấp thử nghiệm: đây là bản tin diễn tập của hệ thống.",
            priority="emergency",
            target_areas=[ward],
            drill=True,
        )
        broadcasts.submit(app, bid, by="lan.nguyen")
        bids.append(bid)
    deadline = time.monotonic() + 120
    while not all(app.broadcast(b).renders for b in bids):  # the render processes make the audio ahead
        if time.monotonic() > deadline:
            raise RuntimeError("the emergencies were not rendered ahead within 120 s")
        time.sleep(0.5)
    approver, now = app.staff("hung.tran"), app.clock()
    items = [app.broadcast(b) for b in bids]
    for item in items:
        item.approve(by=approver, now=now)
    since = app.max_position()
    cpu0 = workers.cpu()
    app.save_changes(*items)  # one transaction: every ward's emergency approved at the same instant

    mine = set(bids)
    approved_at: dict[UUID, datetime] = {}
    dispatch_of: dict[UUID, UUID] = {}  # dispatch -> broadcast
    opened_at: list[datetime] = []
    first_ack: dict[tuple[UUID, str], datetime] = {}
    played_at: list[datetime] = []
    closed: dict[UUID, Any] = {}
    deadline = time.monotonic() + timeout
    while len(closed) < len(bids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(bids) - len(closed)} of {len(bids)} dispatches still open after {timeout} s")
        time.sleep(0.25)
        for position, event in app.read_events(since):
            since = position
            if isinstance(event, Broadcast.Approved) and event.originator_id in mine:
                approved_at[event.originator_id] = event.timestamp
            elif isinstance(event, Dispatch.Opened) and event.broadcast_id in mine:
                dispatch_of[event.originator_id] = event.broadcast_id
                opened_at.append(event.timestamp)
            elif isinstance(event, Dispatch.AcksRecorded) and event.originator_id in dispatch_of:
                for ack in event.acks:
                    at = datetime.fromisoformat(ack["at"])
                    key = (event.originator_id, ack["endpoint"])
                    first_ack[key] = min(at, first_ack.get(key, at))
                    if ack["state"] in ("played", "displayed"):
                        played_at.append(at)
            elif isinstance(event, Dispatch.Closed) and event.originator_id in dispatch_of:
                closed[event.originator_id] = event
    cpu = workers.cpu() - cpu0
    t0 = min(approved_at.values())
    played = sum(e.summary["played"] for e in closed.values())
    targeted = sum(e.summary["targeted"] for e in closed.values())
    last_played_s = (max(played_at) - t0).total_seconds() if played_at else None
    latencies = sorted(
        max(0.0, (at - approved_at[dispatch_of[did]]).total_seconds() * 1000) for (did, _), at in first_ack.items()
    )
    p50, p99 = (percentile(latencies, p) for p in (50, 99))
    return {
        "broadcasts": len(bids),
        "targeted": targeted,
        "played": played,
        "played_per_s": round(played / last_played_s, 1) if last_played_s else None,
        "last_played_s": round(last_played_s, 3) if last_played_s else None,
        "last_opened_s": round((max(opened_at) - t0).total_seconds(), 3),
        "all_closed_s": round(max((e.timestamp - t0).total_seconds() for e in closed.values()), 3),
        "first_ack_p50_ms": round(p50, 1) if p50 is not None else None,
        "first_ack_p99_ms": round(p99, 1) if p99 is not None else None,
        "workers_cpu_s": round(cpu, 2),
    }


def ingest_steps(
    ports: list[int], secret: str, area: str, rates: list[float], duration: float, p99_limit_ms: float, workers: Workers
) -> list[dict[str, Any]]:
    """Open-loop steps of rising rate until one is not sustained (module docstring)."""
    run_load(ports, secret, 100, 2, f"warmup-{len(ports)}", True, area)
    steps = []
    for rate in rates:
        cpu0 = workers.cpu()
        result = run_load(ports, secret, rate, duration, f"w{len(ports)}-r{rate:g}", True, area)
        cpu = workers.cpu() - cpu0
        result["rate"] = rate
        result["workers_cpu_ms_per_webhook"] = round(cpu * 1000 / result["ok"], 3) if result["ok"] else None
        result["sustained"] = (
            result["per_s"] >= SUSTAINED_SHARE * rate and result["errors"] == 0 and result["p99_ms"] <= p99_limit_ms
        )
        steps.append(result)
        print(
            f"  {len(ports)} worker(s), {rate:g}/s offered: {result['per_s']}/s accepted, p99 {result['p99_ms']} ms, "
            f"{result['errors']} errors, per worker {result['per_replica']}: "
            f"{'sustained' if result['sustained'] else 'not sustained'}",
            file=sys.stderr,
        )
        if not result["sustained"]:
            break
    return steps


def configuration(args: argparse.Namespace, n_workers: int) -> dict[str, Any]:
    """One configuration on a store of its own: set-up, the dispatch rounds, then the ingest steps."""
    with tempfile.TemporaryDirectory(prefix="keng-bench-capacity-") as tmp, fresh(args.store, Path(tmp)) as url:
        folder = Path(tmp)
        data = folder / "data"
        t = time.monotonic()
        _, app = district(args.devices, url, data, wards=args.wards)
        wards = district_wards(args.devices, args.wards)  # those with devices
        address, broker = start_broker("mosquitto")
        env = keng_env(data, url, KENG_MQTT=address.url())
        secret = add_city_source(env, "021")
        fleet_args = ["--processes", str(args.fleet_processes)]
        fleet = subprocess.Popen(
            [*KENG, "simulate", "--devices", str(args.devices), "--broker", address.url(), *fleet_args],
            env=env,
            stdout=subprocess.PIPE,
        )
        workers = Workers(env, folder)
        leases = Leases(SqlDb.of_app(app), worker="bench-observer", slots=PARTITIONS, ttl_s=3.0)
        try:
            wait_line(fleet, "ready", timeout=300)
            drain(fleet)
            for _ in range(n_workers):
                workers.start()
            holders = wait_spread(leases, n_workers)
            online_s = asyncio.run(wait_online(app, args.devices))
            print(
                f"{n_workers} worker(s): district, fleet and workers ready in {time.monotonic() - t:.0f} s "
                f"(statuses recorded {online_s} s after the slots were spread)",
                file=sys.stderr,
            )
            per_worker = sorted(Counter(holders[slot_of(w, PARTITIONS)] for w in wards).values(), reverse=True)
            rounds = []
            for r in range(args.rounds):
                result = dispatch_round(app, wards, r, workers)
                rounds.append(result)
                print(f"  {n_workers} worker(s), dispatch round {r + 1}: {result}", file=sys.stderr)
            fleet.send_signal(signal.SIGTERM)
            fleet.wait(60)
            steps = ingest_steps(
                workers.ports, secret, wards[0], args.rates, args.step_duration, args.p99_limit_ms, workers
            )
        finally:
            if fleet.poll() is None:
                fleet.send_signal(signal.SIGTERM)
                fleet.wait(60)
            workers.stop()
            if broker is not None:
                broker.terminate()
            app.close()
        best = [s for s in steps if s["sustained"]]
        median = sorted(rounds, key=lambda r: r["played_per_s"] or 0)[len(rounds) // 2]
        return {
            "workers": n_workers,
            "wards_per_worker": per_worker,
            "dispatch_rounds": rounds,
            "dispatch": median,
            "ingest_steps": steps,
            "ingest": best[-1] if best else None,
        }


def ratio(a: Any, b: Any) -> float | None:
    """2 workers / 1 worker."""
    return round(b / a, 2) if isinstance(a, int | float) and isinstance(b, int | float) and a else None


def table(one: dict[str, Any], two: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """The figures side by side: (name, 1 worker, 2 workers, ratio)."""

    def row(name: str, key: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> tuple[str, Any, Any, Any]:
        x, y = (a or {}).get(key), (b or {}).get(key)
        return name, x, y, ratio(x, y)

    i1, i2, d1, d2 = one["ingest"], two["ingest"], one["dispatch"], two["dispatch"]
    # CPU per webhook compared at one rate (the highest both sustained): at a lower rate the workers' fixed work
    # (lease ticks, polls) is shared by fewer webhooks
    common = min((c["ingest"] or {"rate": 0})["rate"] for c in (one, two))
    c1, c2 = ({s["rate"]: s for s in c["ingest_steps"]}.get(common) for c in (one, two))
    return [
        row("ingest: highest rate sustained (/s)", "rate", i1, i2),
        row("ingest: accepted there (/s)", "per_s", i1, i2),
        row("ingest: p50 there (ms)", "p50_ms", i1, i2),
        row("ingest: p99 there (ms)", "p99_ms", i1, i2),
        row(f"ingest: workers' CPU per webhook at {common:g}/s (ms)", "workers_cpu_ms_per_webhook", c1, c2),
        row("dispatch: devices played/s (median round)", "played_per_s", d1, d2),
        row("dispatch: last dispatch opened (s)", "last_opened_s", d1, d2),
        row("dispatch: last device played (s)", "last_played_s", d1, d2),
        row("dispatch: all dispatches closed (s)", "all_closed_s", d1, d2),
        row("dispatch: first-ack p50 (ms)", "first_ack_p50_ms", d1, d2),
        row("dispatch: first-ack p99 (ms)", "first_ack_p99_ms", d1, d2),
        row("dispatch: workers' CPU per round (s)", "workers_cpu_s", d1, d2),
        ("dispatch: played of targeted", f"{d1['played']}/{d1['targeted']}", f"{d2['played']}/{d2['targeted']}", ""),
        (
            "wards per worker",
            "/".join(map(str, one["wards_per_worker"])),
            "/".join(map(str, two["wards_per_worker"])),
            "",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--wards", type=int, default=50, help="generated wards the devices are dealt over")
    parser.add_argument("--rounds", type=int, default=3, help="dispatch rounds per configuration")
    parser.add_argument(
        "--store", default=DEFAULT_STORE, help="PostgreSQL database (a schema is made per configuration)"
    )
    parser.add_argument("--rates", default=DEFAULT_RATES, help="ingest steps, webhooks per second, rising")
    parser.add_argument("--step-duration", type=float, default=10.0, help="seconds per ingest step")
    parser.add_argument("--p99-limit-ms", type=float, default=1000.0, help="a step with a higher p99 is not sustained")
    parser.add_argument("--fleet-processes", type=int, default=1, help="processes of the simulated fleet")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.store.startswith(("postgres://", "postgresql://")):
        raise SystemExit("--store must be a PostgreSQL URL: several workers share one store only on PostgreSQL")
    args.rates = [float(r) for r in args.rates.split(",")]
    configure_logging("console", "warning")  # this process's own writes (the district) log nothing on the way
    started, load0 = time.monotonic(), os.getloadavg()[1]
    one = configuration(args, 1)
    two = configuration(args, 2)
    rows = table(one, two)
    store = args.store.split("?")[0].split("@")[-1]
    print(
        f"capacity: 1 vs 2 `keng serve` workers, PostgreSQL {store} (a fresh schema each), {args.devices} devices in "
        f"{args.wards} wards on mosquitto, {os.cpu_count()} CPU cores, run took {time.monotonic() - started:.0f} s; "
        f"5-minute load average {load0:.1f} at the start, {os.getloadavg()[1]:.1f} at the end"
    )
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'':<{width}}{'1 worker':>12}{'2 workers':>12}{'2/1':>8}")
    for name, a, b, c in rows:
        a, b, c = ("-" if v is None else v for v in (a, b, c))
        print(f"{name:<{width}}{a:>12}{b:>12}{c:>8}")
    print(
        f"ingest: signed webhooks, a bulletin each, open-loop steps of {args.step_duration:g} s at "
        f"{','.join(f'{r:g}' for r in args.rates)}/s until one is not sustained (>= {SUSTAINED_SHARE:.0%} accepted, "
        f"no errors, p99 <= {args.p99_limit_ms:g} ms); dispatch: one emergency per ward, rendered ahead, approved at "
        f"once; median of {args.rounds} rounds"
    )
    print(CAVEAT)
    if args.json:
        out = {
            "benchmark": "capacity",
            "store": store,
            "devices": args.devices,
            "wards": args.wards,
            "cores": os.cpu_count(),
            "load_average_5min": [round(load0, 2), round(os.getloadavg()[1], 2)],
            "caveat": CAVEAT,
            "table": [{"figure": r[0], "one": r[1], "two": r[2], "ratio": r[3]} for r in rows],
            "one_worker": one,
            "two_workers": two,
        }
        print(orjson.dumps(out, option=orjson.OPT_NON_STR_KEYS).decode())


if __name__ == "__main__":
    main()
