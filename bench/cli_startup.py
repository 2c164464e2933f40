"""Benchmark: how long `keng` takes to answer `--help`, beside the interpreter starting and doing nothing
(`python -c pass`: the baseline), measured in the same run, the commands interleaved round by round; each figure is
the median wall time over the rounds.

    python bench/cli_startup.py [--rounds 21] [--json]

`keng --help` imports no command module (runtime/cli/main.py); `keng broadcast --help` and `keng serve --help` import
their own command's module, and with it what that module needs at import time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "python -c pass (baseline)": ["-c", "pass"],
    "keng --help": ["-m", "keng.runtime.cli", "--help"],
    "keng broadcast --help": ["-m", "keng.runtime.cli", "broadcast", "--help"],
    "keng serve --help": ["-m", "keng.runtime.cli", "serve", "--help"],
}


def wall(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from starting the interpreter to its exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(rounds: int) -> dict[str, float]:
    """Median seconds per case; one warm-up round first (the page cache, .pyc files), not counted."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's code, whatever is installed
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for round_ in range(rounds + 1):
        for name, argv in CASES.items():
            seconds = wall(argv, env)
            if round_:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    medians = measure(args.rounds)
    baseline = medians["python -c pass (baseline)"]
    if args.json:
        import orjson

        print(orjson.dumps({"rounds": args.rounds, "median_s": medians}).decode())
        return
    print(f"median wall time over {args.rounds} rounds (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    for name, seconds in medians.items():
        print(f"  {name:<28} {seconds * 1000:7.1f} ms   ({(seconds - baseline) * 1000:+7.1f} ms over the baseline)")


if __name__ == "__main__":
    main()
