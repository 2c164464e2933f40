"""Process-wide tuning that long-running keng processes (the service, the dispatcher, a fleet worker) share."""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Call once what a process keeps for its whole life is built (the service's wiring, the dispatcher's folded log, a
    fleet worker's devices): collect once, then keep those objects out of the collector's full passes, whose pauses
    otherwise land on request latency or in the middle of a fan-out (a fleet worker stalled for a tenth of a second)."""
    gc.collect()
    gc.freeze()
