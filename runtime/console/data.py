"""Where console pages read from: the live state, or the state "as of" a chosen instant (`?asof=`).

The as-of view is the auditor's: the catalogue (broadcasts, endpoints, staff, areas) folded from the log up to the
instant, and the read models (reports, timelines) replayed up to it into a private temporary SQLite file, exactly as
`keng audit replay --as-of` builds them. The last few instants asked for are kept, so that browsing an as-of console
replays once. As-of pages are read-only: a state-changing request carrying `asof` is refused.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

from aiohttp import web

from keng.adapters.readstore.source import FactSource
from keng.adapters.readstore.store import ReadStore
from keng.adapters.store.app import Keng
from keng.projections.catalog import Catalog
from keng.projections.facts import facts_until
from keng.projections.runner import run_facts
from keng.runtime.http.services import SERVICES
from keng.runtime.workers.readmodels import REBUILD_BATCH

T = TypeVar("T")
AS_OF = "console_as_of"
KEEP = 3  # as-of instants kept (catalogue and read store each)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # before any store existed: an empty console, still a time we can show
MAX_IN_FLIGHT = 2  # as-of reads at once (each may replay the log): more are refused (429), not queued on threads


class BadInstant(ValueError):
    """`asof` is not a time."""


@dataclass(frozen=True)
class AsOf:
    """The instant a read-only console view shows, and the link back to the present."""

    at: datetime
    exit_href: str

    @property
    def iso(self) -> str:
        return self.at.isoformat()


def parse_instant(value: str, tz: object) -> datetime:
    """An ISO 8601 time; one without an offset (a browser's datetime-local field) is read in the display zone."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInstant(f"'asof' phải là một thời điểm, ví dụ 2026-11-30T08:00 (got {value[:40]!r})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)  # type: ignore[arg-type]
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00, 9999-12-31T23:59-14:00: no such instant in UTC
        in_utc = None
    if in_utc is None or in_utc < EARLIEST:
        raise BadInstant(f"'asof' phải sau 01/01/1970 (got {value[:40]!r})")
    return moment


def as_of_of(request: web.Request) -> AsOf | None:
    """The as-of instant of a request (`?asof=`), None for the live view."""
    raw = request.query.get("asof")
    if raw is None or raw == "":
        return None
    services = request.app[SERVICES]
    at = parse_instant(raw, services.settings.display_tz)
    if at > services.app.clock():
        raise BadInstant(f"'asof' là một thời điểm trong tương lai; chỉ xem được quá khứ (got {raw[:40]!r})")
    rest = {k: v for k, v in request.query.items() if k != "asof"}
    exit_href = request.path + (f"?{urlencode(rest)}" if rest else "")
    return AsOf(at, exit_href)


def as_of(request: web.Request) -> AsOf | None:
    found = request.get(AS_OF)
    return found if isinstance(found, AsOf) else None


def link(request: web.Request, path: str) -> str:
    """`path` in the same view (as of the same instant, when the page is an as-of one)."""
    moment = as_of(request)
    if moment is None:
        return path
    return path + ("&" if "?" in path else "?") + urlencode({"asof": moment.iso})


class AsOfCache:
    """As-of catalogues and read stores by instant (the last KEEP of each)."""

    def __init__(self) -> None:
        self.in_flight = 0  # as-of reads running or waiting (counted on the event loop)
        self._lock = threading.Lock()
        self._catalogs: OrderedDict[str, Catalog] = OrderedDict()
        self._stores: OrderedDict[str, tuple[ReadStore, Path]] = OrderedDict()

    def catalog(self, app: Keng, at: datetime) -> Catalog:
        key = at.isoformat()
        with self._lock:
            if key in self._catalogs:
                self._catalogs.move_to_end(key)
                return self._catalogs[key]
            catalog = Catalog()
            for position, event in app.read_events(0):
                if getattr(event, "timestamp", at) > at:
                    break
                catalog.fold([(position, event)])
            self._catalogs[key] = catalog
            while len(self._catalogs) > KEEP:
                self._catalogs.popitem(last=False)
            return catalog

    def query(self, app: Keng, at: datetime, fn: Callable[[ReadStore], T]) -> T:
        key = at.isoformat()
        with self._lock:
            if key not in self._stores:
                directory = Path(tempfile.mkdtemp(prefix="keng-console-asof-"))
                store = ReadStore.sqlite_file(directory / "asof.db")
                store.clear()
                run_facts(facts_until(FactSource.of_app(app).facts(), at), store, batch_size=REBUILD_BATCH)
                self._stores[key] = (store, directory)
                while len(self._stores) > KEEP:
                    _, (old, old_dir) = self._stores.popitem(last=False)
                    old.close()
                    shutil.rmtree(old_dir, ignore_errors=True)
            self._stores.move_to_end(key)
            return fn(self._stores[key][0])

    def close(self) -> None:
        with self._lock:
            for store, directory in self._stores.values():
                store.close()
                shutil.rmtree(directory, ignore_errors=True)
            self._stores.clear()
            self._catalogs.clear()


AS_OF_CACHE = web.AppKey("console_as_of_cache", AsOfCache)


async def _as_of_read(request: web.Request, fn: Callable[[AsOfCache], T]) -> T:
    """Run an as-of read off the loop, unless MAX_IN_FLIGHT already run or wait: each new instant replays the log
    under one lock, and waiting reads would hold the worker threads every other request needs."""
    cache = request.app[AS_OF_CACHE]
    if cache.in_flight >= MAX_IN_FLIGHT:
        raise web.HTTPTooManyRequests(
            text="Đang dựng trạng thái tại một thời điểm khác; xin thử lại sau giây lát.", headers={"Retry-After": "5"}
        )
    cache.in_flight += 1
    try:
        return await request.app[SERVICES].run(lambda: fn(cache))
    finally:
        cache.in_flight -= 1


async def catalog(request: web.Request) -> Catalog:
    """The catalogue the page shows: live, or as of the request's instant."""
    services = request.app[SERVICES]
    moment = as_of(request)
    if moment is None:
        return await services.run(services.catalog.current)
    return await _as_of_read(request, lambda cache: cache.catalog(services.app, moment.at))


async def read_models(request: web.Request, fn: Callable[[ReadStore], T]) -> T:
    """`fn` over the read models the page shows: live (caught up), or replayed up to the request's instant."""
    services = request.app[SERVICES]
    moment = as_of(request)
    if moment is None:
        return await services.read_models.ask(fn)
    return await _as_of_read(request, lambda cache: cache.query(services.app, moment.at, fn))


def now(request: web.Request) -> datetime:
    """The page's "now": the as-of instant, else the service's clock."""
    moment = as_of(request)
    return moment.at if moment is not None else request.app[SERVICES].app.clock()
