"""Signed city-source webhooks at a steady arrival rate from a separate process; keng against a bare aiohttp handler.

    python bench/ingest.py [--rate 1000] [--duration 30] [--store URL] [--full] [--json]

Starts `keng serve --no-dispatcher` (the API alone; SQLite in a temporary directory unless --store is given, sample
district, one integration), then sends signed webhooks open-loop at --rate per second for --duration seconds from a
separate process, each with a new webhook id; then does the same against a bare aiohttp handler that answers 200 (the
baseline) on the same machine. A 2xx from keng means the message and its broadcast are durably stored (SQLite
synchronous=FULL).

With --full, every webhook carries a bulletin text of its own (so that each broadcast needs its own audio), and the
same load also runs against the full `keng serve` (the dispatcher with an embedded broker, the render processes, the
report and push workers), beside the API-only run, in the same invocation: both figures, the render backlog when the
load ended and the renders done by then, and the ratio full / API-only. Targets: full >= 0.9x the API-only
throughput, and full p99 <= 50 ms at the rate offered when the API-only run sustains it, else at the highest rate
the API-only run sustains. The API alone sustains a rate when it accepts 99 % of it with p99 <= 50 ms; when it does
not at the offered rate, the API-only run steps down by --step per second until it does, and the full service runs
again at that rate, where its p99 is judged (the output says which rate, and the figures at both).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import KENG, add_city_source, free_tcp_port, keng_env, run_load, wait_port

TARGET_P99_MS = 50.0
TARGET_RATIO = 0.9


BARE = """
from aiohttp import web
async def ok(request):
    await request.read()
    return web.json_response({"ok": True})
app = web.Application()
app.router.add_post("/api/v1/hooks/city-source", ok)
web.run_app(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), print=None, access_log=None)
"""


def render_figures(store_url: str, data: Path) -> dict[str, int]:
    """Read from the store as it stands: the broadcasts that still need audio (the render backlog), and those whose
    audio is recorded (renders done)."""
    from keng.adapters.store.app import Keng
    from keng.adapters.store.config import locate_store
    from keng.domain.broadcast import BROADCAST_EVENTS

    app = Keng(env=locate_store(store_url, data).env)
    try:
        states = app.aggregates_of(*BROADCAST_EVENTS).values()
        return {
            "broadcasts": len(states),
            "render_backlog": sum(1 for b in states if b.needs_render),
            "renders_done": sum(1 for b in states if any(r["channel"] == "speaker" for r in b.renders)),
        }
    finally:
        app.close()


def keng_ingest(
    rate: float, duration: float, store: str | None, *, full: bool = False, distinct: bool = False, **env_extra: str
) -> dict[str, Any]:
    """`keng serve --no-dispatcher` (or, `full`, the whole `keng serve`: dispatcher, render processes, workers) over
    a fresh data directory (and `store`), loaded open-loop; its figures (`full`: with the render backlog and the
    renders done when the load ended)."""
    with tempfile.TemporaryDirectory(prefix="keng-bench-") as tmp:
        # the full service's embedded broker listens on a free port (keng_env)
        env = keng_env(tmp, store, KENG_LOG_LEVEL="warning", **env_extra)
        subprocess.run([*KENG, "init", "--sample"], env=env, check=True, capture_output=True)
        secret = add_city_source(env, "01")
        port = free_tcp_port()
        # API-only: the ingest path alone, the dispatcher, render and report workers off (--no-dispatcher). Full:
        # everything `keng serve` runs, a render for every distinct bulletin among it.
        server = subprocess.Popen(
            [*KENG, "serve", *([] if full else ["--no-dispatcher"]), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
            run_load(port, secret, min(rate, 200), 2, "warmup", distinct)
            result = run_load(port, secret, rate, duration, "bench", distinct)
            if full:
                url = store or f"sqlite:///{Path(tmp) / 'keng.db'}"
                result.update(render_figures(url, Path(tmp)))
            return result
        finally:
            server.terminate()
            server.wait(60)


def bare_ingest(rate: float, duration: float) -> dict[str, Any]:
    """The same load against a bare aiohttp handler that answers 200 (the baseline)."""
    port = free_tcp_port()
    bare = subprocess.Popen(
        [sys.executable, "-c", BARE, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        return run_load(port, None, rate, duration, "base")
    finally:
        bare.terminate()
        bare.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--store", default=None, help="event store URL (default: SQLite in a temp dir)")
    parser.add_argument(
        "--full",
        action="store_true",
        help="distinct bulletins, and the full keng serve (dispatcher, render processes) beside the API-only run",
    )
    parser.add_argument(
        "--step", type=float, default=100, help="with --full: how far each API-only step down goes (per second)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    keng_result = keng_ingest(args.rate, args.duration, args.store, distinct=args.full)
    full = keng_ingest(args.rate, args.duration, args.store, full=True, distinct=True) if args.full else None
    judged: tuple[float, dict[str, Any], dict[str, Any]] | None = None
    if full is not None:
        judged = (args.rate, keng_result, full)
        if not sustains(keng_result, args.rate):
            judged = step_down(args.rate, args.step, args.duration, args.store)
    base = bare_ingest(args.rate, args.duration)
    result = {
        "rate": args.rate,
        "duration_s": args.duration,
        "store": args.store or "sqlite",
        "accepted_per_s": keng_result["per_s"],
        "p50_ms": keng_result["p50_ms"],
        "p99_ms": keng_result["p99_ms"],
        "max_ms": keng_result["max_ms"],
        "errors": keng_result["errors"],
        "statuses": keng_result["statuses"],
        "baseline_per_s": base["per_s"],
        "baseline_p50_ms": base["p50_ms"],
        "baseline_p99_ms": base["p99_ms"],
        "ratio": round(keng_result["per_s"] / base["per_s"], 3) if base["per_s"] else None,
    }
    print(f"{'':<26}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    print(
        f"{'keng (signed, durable)':<26}{keng_result['per_s']:>12}{keng_result['p50_ms']:>10}"
        f"{keng_result['p99_ms']:>10}{keng_result['errors']:>8}"
    )
    print(
        f"{'baseline: bare aiohttp':<26}{base['per_s']:>12}{base['p50_ms']:>10}{base['p99_ms']:>10}{base['errors']:>8}"
    )
    print(f"ratio keng/baseline (throughput): {result['ratio']}")
    if full is not None:
        result.update(full_figures(keng_result, full, judged))
        print_full(result)
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode())


def sustains(api: dict[str, Any], rate: float) -> bool:
    """Whether the API alone keeps up with a rate: 99 % of it accepted per second, with p99 within the target."""
    return bool(api["per_s"] >= 0.99 * rate and api["p99_ms"] <= TARGET_P99_MS)


def step_down(
    rate: float, step: float, duration: float, store: str | None
) -> tuple[float, dict[str, Any], dict[str, Any]] | None:
    """The highest rate below `rate` (in steps of `step`) that the API alone sustains, its figures and the full
    service's at that rate; None when the API alone sustains none of them."""
    current = rate - step
    while current >= step:
        print(f"the API alone does not sustain {current + step:g}/s: trying {current:g}/s", file=sys.stderr)
        api = keng_ingest(current, duration, store, distinct=True)
        if sustains(api, current):
            return current, api, keng_ingest(current, duration, store, full=True, distinct=True)
        current -= step
    return None


def full_figures(
    api: dict[str, Any], full: dict[str, Any], judged: tuple[float, dict[str, Any], dict[str, Any]] | None
) -> dict[str, Any]:
    """The full service's figures beside the API-only run's at the offered rate, the ratio and the targets'
    verdicts. The p99 target applies at `judged`: the offered rate when the API alone sustains it, else the highest
    rate it sustains (with the API-only and full figures there)."""
    ratio = round(full["per_s"] / api["per_s"], 3) if api["per_s"] else None
    at_rate, api_at, full_at = judged if judged is not None else (None, None, None)
    return {
        "full_accepted_per_s": full["per_s"],
        "full_p50_ms": full["p50_ms"],
        "full_p99_ms": full["p99_ms"],
        "full_max_ms": full["max_ms"],
        "full_errors": full["errors"],
        "full_statuses": full["statuses"],
        "full_render_backlog": full["render_backlog"],
        "full_renders_done": full["renders_done"],
        "full_broadcasts": full["broadcasts"],
        "full_ratio": ratio,
        "api_sustains_rate": judged is not None and judged[1] is api,
        "p99_judged_at_per_s": at_rate,
        "api_p99_ms_at_judged": api_at["p99_ms"] if api_at else None,
        "full_per_s_at_judged": full_at["per_s"] if full_at else None,
        "full_p50_ms_at_judged": full_at["p50_ms"] if full_at else None,
        "full_p99_ms_at_judged": full_at["p99_ms"] if full_at else None,
        "full_ratio_met": ratio is not None and ratio >= TARGET_RATIO,
        "full_p99_met": full_at is not None and full_at["p99_ms"] <= TARGET_P99_MS,
    }


def print_full(r: dict[str, Any]) -> None:
    print(
        f"{'keng full (with renders)':<26}{r['full_accepted_per_s']:>12}{r['full_p50_ms']:>10}"
        f"{r['full_p99_ms']:>10}{r['full_errors']:>8}"
    )
    print(
        f"full keng serve: render backlog when the load ended {r['full_render_backlog']}, renders done "
        f"{r['full_renders_done']} (of {r['full_broadcasts']} broadcasts, warm-up included)"
    )
    print(
        f"ratio full/API-only (throughput): {r['full_ratio']} (target >= {TARGET_RATIO}: "
        f"{'met' if r['full_ratio_met'] else 'missed'})"
    )
    verdict = f"target <= {TARGET_P99_MS:g} ms: {'met' if r['full_p99_met'] else 'missed'}"
    if r["api_sustains_rate"]:
        print(f"the API alone sustains the offered {r['rate']:g}/s; full p99 there {r['full_p99_ms']} ms ({verdict})")
    elif r["p99_judged_at_per_s"] is None:
        print(f"the API alone sustains no rate down to --step (p99 <= {TARGET_P99_MS:g} ms): p99 not judged")
    else:
        print(
            f"the API alone does not sustain {r['rate']:g}/s (99 % accepted, p99 <= {TARGET_P99_MS:g} ms); the "
            f"highest rate it sustains is {r['p99_judged_at_per_s']:g}/s (API p99 {r['api_p99_ms_at_judged']} ms), "
            f"where the full service accepted {r['full_per_s_at_judged']}/s, p50 {r['full_p50_ms_at_judged']} ms, "
            f"p99 {r['full_p99_ms_at_judged']} ms ({verdict})"
        )


if __name__ == "__main__":
    main()
