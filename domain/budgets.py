"""Latency budgets: the longest acceptable time from a broadcast's dispatch opening (approval, or its scheduled time)
to the devices' `received`, judged on the 99th percentile, per priority. Emergencies: one second.

Deployments may override them (configuration); these are the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from keng.domain.errors import InvalidValue
from keng.domain.records import BudgetVerdict
from keng.domain.values import Priority

DEFAULT_BUDGET_MS: dict[str, int] = {
    Priority.EMERGENCY.value: 1_000,
    Priority.PRIORITY.value: 30_000,
    Priority.NORMAL.value: 300_000,
}


def budget_ms(priority: str, overrides: Mapping[str, int] | None = None) -> int:
    """The latency budget of a priority in milliseconds (an override, else the default)."""
    if overrides and priority in overrides:
        return int(overrides[priority])
    return DEFAULT_BUDGET_MS.get(priority, DEFAULT_BUDGET_MS[Priority.NORMAL.value])


def parse_budgets(text: str) -> dict[str, int]:
    """`emergency=1000,priority=30000,normal=300000` (milliseconds; any subset) into overrides, validated."""
    out: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name not in DEFAULT_BUDGET_MS:
            raise InvalidValue(f"latency budget for {name!r}: the classes are {', '.join(DEFAULT_BUDGET_MS)}")
        if not value.strip().isdigit() or not 1 <= int(value) <= 86_400_000:
            raise InvalidValue(f"latency budget {part.strip()!r}: milliseconds from 1 to 86400000")
        out[name] = int(value)
    return out


def judge(
    *, priority: str, latencies_ms: Collection[float], silent: int, overrides: Mapping[str, int] | None = None
) -> BudgetVerdict:
    """Judge a dispatch: the nearest-rank 99th percentile of the online endpoints' latencies, counting those that never
    acknowledged (`silent`) as late, against the priority's budget."""
    budget = budget_ms(priority, overrides)
    values = sorted(latencies_ms) + [math.inf] * silent
    p99 = values[max(0, math.ceil(0.99 * len(values)) - 1)] if values else None
    late = sum(1 for v in values if v > budget)
    return {
        "priority": priority,
        "budget_ms": budget,
        "p99_ms": None if p99 is None or math.isinf(p99) else round(float(p99), 1),
        "verdict": "breached" if p99 is not None and p99 > budget else "met",
        "late": late,
        "counted": len(values),
        "late_share": round(late / len(values), 4) if values else 0.0,
    }
