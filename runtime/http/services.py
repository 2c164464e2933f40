"""What the HTTP layer needs, wired once by the composition root and kept on the app under a typed key."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from datetime import timedelta
from typing import Generic, TypeVar
from uuid import UUID

from aiohttp import web

from keng.adapters.audio_links import AudioLinks
from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.adapters.store.group_commit import GroupCommitter
from keng.domain.access import Integration, integration_events
from keng.domain.area import AREA_EVENTS, Area
from keng.domain.area_registry import AreaRegistry
from keng.domain.authority import Visibility
from keng.domain.staff import Staff
from keng.domain.standing_orders import StandingOrder
from keng.projections.catalog import Catalog
from keng.runtime.config import Settings
from keng.runtime.http.metrics import Metrics
from keng.runtime.workers.readmodels import LiveReadModels
from keng.services.inbound import Intake

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


class TimedCache(Generic[T]):
    """A value re-read at most every `ttl_s` seconds: areas and integrations change rarely, and every signed request
    needs them (a secret rotation or a new ward takes effect within the TTL)."""

    def __init__(self, read: Callable[[], T], ttl_s: float) -> None:
        self.read, self.ttl_s = read, ttl_s
        self._value: T | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at > self.ttl_s:
                self._value, self._read_at = self.read(), time.monotonic()
            return self._value

    @property
    def fresh(self) -> bool:
        """True when `get()` would answer from memory, without reading the store."""
        return self._value is not None and time.monotonic() - self._read_at <= self.ttl_s


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
    area_cache: TimedCache[AreaRegistry] = field(init=False)
    """Every area unit ever recorded (ask `.in_force(app.clock())` for the tree of now)."""
    integration_cache: TimedCache[list[Integration]] = field(init=False)
    committer: GroupCommitter = field(init=False)
    intake: Intake = field(init=False)
    audio_links: AudioLinks = field(init=False)
    cache_ttl_s: float = 5.0
    standing_orders: list[StandingOrder] = field(default_factory=list)
    ratify_within: timedelta = timedelta(minutes=30)
    public_url: str = "http://127.0.0.1:8080"
    read_models: LiveReadModels = field(init=False)  # the reports' live read store: `reports`, else one over `app`
    reports: InitVar[LiveReadModels | None] = None

    def __post_init__(self, reports: LiveReadModels | None) -> None:
        self.read_models = reports or LiveReadModels(self.app)
        self.committer = GroupCommitter(self.app)
        self.audio_links = AudioLinks.in_data_dir(self.settings.data_dir)
        self.catalog = LiveCatalog(self.app)
        self.area_cache = TimedCache(self._fold_areas, 30.0)
        self.integration_cache = TimedCache(self._fold_integrations, self.cache_ttl_s)
        self._areas: dict[UUID, Area] = {}
        self._registry: AreaRegistry | None = None
        self._integrations: dict[UUID, Integration] = {}
        self._area_position = self._integration_position = 0
        self.intake = Intake(
            app=self.app,
            secrets=self.secrets,
            areas=self.area_cache,
            integrations=self.integration_cache,
            committer=self.committer,
            data_dir=self.settings.data_dir,
            standing_orders=self.standing_orders,
        )

    # Each refresh reads only the events recorded since the previous one (a topic-filtered read from a position).
    def _fold_areas(self) -> AreaRegistry:
        position = self.app.fold_topics(AREA_EVENTS, self._areas, since=self._area_position)
        if self._registry is None or position != self._area_position:
            self._registry = AreaRegistry(self._areas.values())
        self._area_position = position
        return self._registry

    def _fold_integrations(self) -> list[Integration]:
        self._integration_position = self.app.fold_topics(
            integration_events(), self._integrations, since=self._integration_position
        )
        return list(self._integrations.values())

    def visibility_of(self, staff: Staff) -> Visibility:
        """What this staff member may read (domain/authority.py); may read the store, so call it off the loop."""
        return self.app.visibility_of(staff, self.area_cache.get().in_force(self.app.clock()))

    async def run(self, fn: Callable[[], T]) -> T:
        """Run blocking store work off the event loop (the eventsourcing library is synchronous)."""
        return await asyncio.to_thread(fn)


SERVICES = web.AppKey("services", Services)
