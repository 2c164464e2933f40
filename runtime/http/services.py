"""What the HTTP layer needs, wired once by the composition root and kept on the app under a typed key."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

from adapters.secrets import SecretStore
from adapters.store.app import Keng
from domain.area import Area
from projections.catalog import Catalog
from runtime.config import Settings
from runtime.http.metrics import Metrics

T = TypeVar("T")


class LiveCatalog:
    """The catalogue of current states, brought up to date incrementally (only new events) before each read."""

    def __init__(self, app: Keng) -> None:
        self.app = app
        self.catalog = Catalog()
        self._lock = threading.Lock()

    def current(self) -> Catalog:
        with self._lock:
            self.catalog.fold(self.app.read_events(self.catalog.position))
            return self.catalog


class AreaCache:
    """Registered areas, re-read at most every `ttl_s` seconds (areas change rarely; jurisdictions need them)."""

    def __init__(self, app: Keng, ttl_s: float = 30.0) -> None:
        self.app, self.ttl_s = app, ttl_s
        self._areas: list[Area] = []
        self._read_at = float("-inf")

    def get(self) -> list[Area]:
        if time.monotonic() - self._read_at > self.ttl_s:
            self._areas, self._read_at = self.app.areas(), time.monotonic()
        return self._areas


@dataclass
class Services:
    """The service's collaborators."""

    app: Keng
    secrets: SecretStore
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    max_body_bytes: int = 1_048_576
    wall_clock: Callable[[], float] = time.time
    catalog: LiveCatalog = field(init=False)
    area_cache: AreaCache = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = LiveCatalog(self.app)
        self.area_cache = AreaCache(self.app)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run blocking store work off the event loop (the eventsourcing library is synchronous)."""
        return await asyncio.to_thread(fn)


SERVICES = web.AppKey("services", Services)
