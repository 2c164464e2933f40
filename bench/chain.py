"""Benchmark: what the automatic audit chain costs; chain on beside chain off (KENG_AUDIT_CHAIN=off, the library's own
recorder: the baseline), measured in the same run, rounds alternating (off-on, on-off, ...); each figure is the median
over the rounds.

    python bench/chain.py [--rate 1000] [--duration 30] [--rounds 2] [--devices 1000] [--store URL] [--json]

1. writes: aggregates saved straight into a store, 1 per transaction (a CLI command) and 64 per transaction (a group
   commit under load): events/s and p99 of one transaction.
2. ingest: bench/ingest.py's signed city-source webhooks through `keng serve --no-dispatcher`: accepted/s, p50, p99.
3. dispatch: bench/fanout.py's emergency to the whole district (mosquitto): p99 approval -> received, and when the
   last ack was recorded (the dispatcher's writes are chained or not). `--devices 0` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fanout
from bench.common import fresh, report
from bench.ingest import keng_ingest
from keng.adapters.audit import chain
from keng.adapters.store import postgres as store_postgres
from keng.adapters.store import sqlite as store_sqlite
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store, without_chain
from keng.domain.delivery import percentile
from keng.domain.staff import Staff

MODES = ("off", "on")


class Timed:
    """Wraps the recorders' `extend` to add up the time the chain takes inside each transaction (with the chain off,
    nothing calls it)."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0

    def __enter__(self) -> Timed:
        def timed(*args: Any) -> int:
            t0 = time.perf_counter()
            try:
                return chain.extend(*args)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1

        for module in (store_sqlite, store_postgres):
            module.extend = timed  # type: ignore[attr-defined]
        return self

    def __exit__(self, *_: object) -> None:
        for module in (store_sqlite, store_postgres):
            module.extend = chain.extend  # type: ignore[attr-defined]


def writes(store: str | None, chained: bool, per_transaction: int, transactions: int) -> dict[str, float]:
    """Save `transactions` transactions of `per_transaction` new aggregates each; events/s and latency percentiles,
    and the microseconds the chain took inside one transaction."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="keng-bench-chain-") as tmp, fresh(store, Path(tmp)) as url:
        location = locate_store(url, Path(tmp))
        app = Keng(env=location.env if chained else without_chain(location))
        with Timed() as timed:
            elapsed = _save(app, per_transaction, transactions, times)
    times.sort()
    return {
        "events_per_s": round(per_transaction * transactions / elapsed),
        "p50_ms": percentile(times, 50) or 0.0,
        "p99_ms": percentile(times, 99) or 0.0,
        "chain_us_per_tx": round(timed.seconds / transactions * 1e6, 1),
    }


def _save(app: Keng, per_transaction: int, transactions: int, times: list[float]) -> float:
    try:
        started = time.perf_counter()
        for t in range(transactions):
            batch = [
                Staff.enrol(handle=f"s-{t}-{i}", name="Bench", roles=["auditor"], wards=[], by="admin")
                for i in range(per_transaction)
            ]
            t0 = time.perf_counter()
            app.save(*batch)
            times.append((time.perf_counter() - t0) * 1000)
        return time.perf_counter() - started
    finally:
        app.close()


def ratio(on: float | None, off: float | None) -> float | None:
    return round(on / off, 3) if on and off else None


def compare(name: str, runs: dict[str, list[dict[str, Any]]], keys: tuple[str, ...]) -> dict[str, Any]:
    """Per key: the median over rounds with the chain on and off (a shared machine's outliers hit single rounds),
    and on/off."""
    out: dict[str, Any] = {}
    for key in keys:
        middle = {m: round(statistics.median(r[key] for r in runs[m]), 2) for m in MODES}
        out |= {f"{name}_{key}_on": middle["on"], f"{name}_{key}_off": middle["off"]}
        out[f"{name}_{key}_ratio"] = ratio(middle["on"], middle["off"])
    return out


def order(round_: int) -> tuple[str, ...]:
    """Off then on, then on then off (ABBA): a drift in the machine's load favours neither."""
    return MODES if round_ % 2 == 0 else MODES[::-1]


def print_table(result: dict[str, Any]) -> None:
    print(f"{'':<34}{'chain on':>12}{'chain off':>12}{'on/off':>9}")
    for key in result:
        if key.endswith("_on"):
            stem = key[:-3]
            print(f"{stem:<34}{result[key]:>12}{result[stem + '_off']:>12}{result[stem + '_ratio'] or '-':>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--devices", type=int, default=1000, help="fan-out size (0: skip the dispatch part)")
    parser.add_argument("--no-ingest", action="store_true", help="skip part 2")
    parser.add_argument("--store", default=None, help="event store URL (default: SQLite in a temp dir)")
    parser.add_argument("--writes-only", action="store_true", help="only part 1 (e.g. with a PostgreSQL --store)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"rate": args.rate, "duration_s": args.duration, "rounds": args.rounds,
                              "store": args.store or "sqlite"}  # fmt: skip
    for per_tx, count in ((1, 500), (64, 200)):  # one CLI command; a group commit under load
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        for r in range(args.rounds):
            for mode in order(r):
                runs[mode].append(writes(args.store, mode == "on", per_tx, count))
        result |= compare(f"write{per_tx}", runs, ("events_per_s", "p50_ms", "p99_ms", "chain_us_per_tx"))
    if args.writes_only:
        print_table(result)
        report(result, args.json)
        return
    if not args.no_ingest:
        runs = {m: [] for m in MODES}
        for r in range(args.rounds):
            for mode in order(r):
                runs[mode].append(keng_ingest(args.rate, args.duration, args.store, KENG_AUDIT_CHAIN=mode))
                print(f"ingest chain {mode}: {runs[mode][-1]}", file=sys.stderr)
        result |= compare("ingest", runs, ("per_s", "p50_ms", "p99_ms", "errors"))
    if args.devices:
        runs = {m: [] for m in MODES}
        for r in range(args.rounds):
            for mode in order(r):
                os.environ["KENG_AUDIT_CHAIN"] = mode  # the `dispatch run` child inherits it
                fan = argparse.Namespace(devices=args.devices, broker="mosquitto", processes=2, json=False)
                runs[mode].append(asyncio.run(fanout.main(fan)))
                print(f"dispatch chain {mode}: p99 {runs[mode][-1]['p99_ms']} ms", file=sys.stderr)
        result |= compare("dispatch", runs, ("p99_ms", "last_ack_recorded_s", "dispatcher_cpu_s"))
    print_table(result)
    report(result, args.json)


if __name__ == "__main__":
    main()
