"""Latency budgets: the longest acceptable time from a broadcast's dispatch opening (approval, or its scheduled time)
to the devices' `received`, judged on the 99th percentile, per priority. Emergencies: one second.

Deployments may override them (configuration); these are the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping

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
