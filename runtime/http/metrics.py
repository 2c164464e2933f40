"""Prometheus metrics, in a registry of the service's own (no global state shared between apps in one process)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The process's CPU, memory, open files and start time (`process_*`, from /proc on Linux) and the Python
        # version (`python_info`): what an operator looks at first when a node misbehaves.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "keng_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "keng_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.webhooks = Counter(
            "keng_webhook_outcomes_total",
            "Signed inbound messages by outcome",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.dispatch_latency = Histogram(
            "keng_dispatch_latency_seconds",
            "Approval (or slot) to each device's first ack, per closed dispatch",
            ["priority"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        # Queue depth per priority, devices online and dispatcher counters come from a collector registered by
        # the process that runs the dispatcher (runtime/dispatch/metrics.py).

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
