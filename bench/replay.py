"""Benchmark: rebuild every read model from a store of N events, beside a plain sequential read of the same stored
records (the baseline, same run), and `keng audit verify` over the same store.

    .venv/bin/python bench/replay.py --events 1000000 [--json] [--dir DIR]

The store is generated with `runtime.synthetic.History` (real domain commands, bulk-inserted through the recorder), in
a child process, so that the peak RSS reported is that of the rebuild, seal and verify, not of the generator. An
existing store in DIR with at least N events is reused.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keng.adapters.audit.chain import CHAIN_TABLE, CHECKPOINT_TABLE, seal
from keng.adapters.audit.keys import Signer
from keng.adapters.audit.verify import verify
from keng.adapters.readstore.source import FactSource
from keng.adapters.readstore.sql import SqlDb
from keng.adapters.readstore.store import ReadStore
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.projections.runner import run_facts
from keng.runtime.workers.readmodels import REBUILD_BATCH
from tests.synthetic import History


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="keng-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    app = Keng(env=locate_store(f"sqlite:///{directory / 'events.db'}", directory).env)
    if args.generate_only:
        History(app, seed=2022, wards=13, groups=18).run(args.events)
        return 0
    t = time.perf_counter()
    if app.max_position() < args.events:
        command = [sys.executable, __file__, "--generate-only", "--events", str(args.events), "--dir", str(directory)]
        subprocess.run(command, check=True)
    n = app.max_position()
    gen_s = time.perf_counter() - t

    t, count, start = time.perf_counter(), 0, 1
    while batch := app.recorder.select_notifications(start=start, limit=5000):
        count += len(batch)
        start = batch[-1].id + 1
    baseline = count / (time.perf_counter() - t)

    source = FactSource.of_app(app)
    t = time.perf_counter()
    decoded = sum(1 for _ in source.facts())
    decode_rate = decoded / (time.perf_counter() - t)

    store = ReadStore.sqlite_file(directory / f"rebuild-{time.time_ns()}.db")
    t = time.perf_counter()
    folded = run_facts(source.facts(), store, batch_size=REBUILD_BATCH)
    rebuild = folded / (time.perf_counter() - t)
    store.close()

    db, signer = SqlDb.of_app(app), Signer.generate()
    with db.transaction(commit=True) as c:  # a reused store: seal it afresh with this run's key
        for table in (CHAIN_TABLE, CHECKPOINT_TABLE):
            db.execute(c, f"DROP TABLE IF EXISTS {table}")
    t = time.perf_counter()
    seal(db, app.recorder.events_table_name, signer)
    seal_rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    report = verify(db, app.recorder.events_table_name, signer)
    verify_rate = report.events / (time.perf_counter() - t)
    result = {
        "events": n, "generate_s": round(gen_s, 1), "baseline_events_per_s": round(baseline),
        "raw_decode_events_per_s": round(decode_rate), "rebuild_events_per_s": round(rebuild),
        "ratio": round(rebuild / baseline, 3),
        "seal_events_per_s": round(seal_rate), "verify_events_per_s": round(verify_rate), "verify_ok": report.ok,
        "peak_rss_mb": peak_rss_mb(), "store": str(directory),
    }  # fmt: skip
    if not args.json:
        for k, v in result.items():
            print(f"{k:>28}: {v}")
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
