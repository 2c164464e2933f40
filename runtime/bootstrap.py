"""The composition root: the one place that turns settings into a wired application."""

from __future__ import annotations

import gc

from adapters.store.app import Clock, Keng, utc_now
from adapters.store.config import locate_store, without_chain
from adapters.store.sqlite import SYNCHRONOUS_FULL, DurabilityError, KengSQLiteFactory
from runtime.config import Settings


def freeze_long_lived() -> None:
    """Call once what a process keeps for its whole life is built (the service's wiring, the dispatcher's folded log, a
    fleet worker's devices): collect once, then keep those objects out of the collector's full passes, whose pauses
    otherwise land on request latency or in the middle of a fan-out (a fleet worker stalled for a tenth of a second)."""
    gc.collect()
    gc.freeze()


class StartupError(RuntimeError):
    """keng cannot start with these settings; the message says why."""


def open_app(settings: Settings, *, clock: Clock = utc_now, create: bool = True) -> Keng:
    """Open the event store named by the settings and check its durability settings."""
    location = locate_store(settings.store_url, settings.data_dir)
    if location.kind == "sqlite":
        db = settings.data_dir / "keng.db" if not settings.store_url else None
        if db is not None:
            if not create and not db.exists():
                raise StartupError(f"no keng data in {settings.data_dir}: run `keng init` (or `keng init --sample`)")
            settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        app = Keng(env=location.env if settings.audit_chain else without_chain(location), clock=clock)
    except Exception as e:  # the library wraps driver errors in several types; all mean "cannot open"
        raise StartupError(f"cannot open the event store at {location.display}: {e}") from e
    factory = app.factory
    if isinstance(factory, KengSQLiteFactory) and factory.synchronous_level() != SYNCHRONOUS_FULL:
        raise DurabilityError(f"{location.display}: PRAGMA synchronous is not FULL")
    return app
