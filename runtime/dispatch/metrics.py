"""Prometheus views of a running dispatcher: queue depth per priority, devices online, its event counters and its
refusals by kind and reason (read at scrape time by a collector; every label has a value) and the approval-to-ack
latency of every closed dispatch (a histogram per priority)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from keng.domain.values import Priority
from keng.runtime.dispatch.dispatcher import Dispatcher
from keng.runtime.dispatch.live import LiveDispatch
from keng.runtime.http.metrics import Metrics


class DispatcherCollector(Collector):
    """Reads the dispatcher's state when Prometheus scrapes."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def collect(self) -> Iterator[Any]:
        d = self.dispatcher
        depth = GaugeMetricFamily("keng_dispatch_queue_depth", "Commands queued per priority", labels=["priority"])
        for p in Priority:
            depth.add_metric([p.value], sum(lanes.depth(p.rank) for lanes in d.outbox.lanes.values()))
        yield depth
        yield GaugeMetricFamily(
            "keng_devices_online", "Endpoints last seen online", value=sum(1 for up in d.online.values() if up)
        )
        events = CounterMetricFamily("keng_dispatcher_events", "Dispatcher events by kind", labels=["event"])
        for name, count in sorted(d.metrics.items()):
            events.add_metric([name], count)
        yield events
        refused = CounterMetricFamily(
            "keng_dispatcher_refused",
            "Device messages refused (counted and logged, never recorded) by kind and reason",
            labels=["kind", "reason"],
        )
        for (kind, reason), count in sorted(d.intake.refused.items()):
            refused.add_metric([kind, reason], count)
        yield refused
        verdicts = CounterMetricFamily(
            "keng_latency_budget_verdicts",
            "Closed dispatches judged against their priority's latency budget, by verdict (met, breached)",
            labels=["priority", "verdict"],
        )
        breaches = CounterMetricFamily(
            "keng_latency_budget_breaches", "Dispatches that breached their latency budget", labels=["priority"]
        )
        for p in Priority:
            breaches.add_metric([p.value], d.verdicts[(p.value, "breached")])
            for v in ("met", "breached"):
                verdicts.add_metric([p.value, v], d.verdicts[(p.value, v)])
        yield verdicts
        yield breaches


def observe_closed(metrics: Metrics, live: LiveDispatch) -> None:
    """Record each endpoint's approval (or slot) to first-ack latency of a dispatch that just closed."""
    plan = live.plan
    histogram = metrics.dispatch_latency.labels(plan.priority)
    for at in plan.first_at.values():
        histogram.observe(max(0.0, (at - plan.reference_at).total_seconds()))
