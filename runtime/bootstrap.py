"""The composition root: the one place that turns settings into a wired application."""

from __future__ import annotations

import gc
from datetime import timedelta
from pathlib import Path

import structlog

from adapters.private_files import loose_paths, touch_private
from adapters.store.app import Clock, Keng, utc_now
from adapters.store.config import locate_store, without_chain
from adapters.store.sqlite import SYNCHRONOUS_FULL, DurabilityError, KengSQLiteFactory
from domain.content import ContentLimits
from runtime.config import Settings

log = structlog.get_logger(__name__)


def freeze_long_lived() -> None:
    """Call once what a process keeps for its whole life is built (the service's wiring, the dispatcher's folded log, a
    fleet worker's devices): collect once, then keep those objects out of the collector's full passes, whose pauses
    otherwise land on request latency or in the middle of a fan-out (a fleet worker stalled for a tenth of a second)."""
    gc.collect()
    gc.freeze()


class StartupError(RuntimeError):
    """keng cannot start with these settings; the message says why."""


def limits_of(settings: Settings) -> ContentLimits:
    """The content bounds the settings ask for."""
    return ContentLimits(max_lifetime=timedelta(days=settings.max_expiry_days))


def open_app(settings: Settings, *, clock: Clock = utc_now, create: bool = True) -> Keng:
    """Open the event store named by the settings and check its durability settings."""
    location = locate_store(settings.store_url, settings.data_dir)
    if location.kind == "sqlite":
        db = settings.data_dir / "keng.db" if not settings.store_url else None
        if db is not None:
            if not create and not db.exists():
                raise StartupError(f"no keng data in {settings.data_dir}: run `keng init` (or `keng init --sample`)")
            touch_private(db)  # 0600 before SQLite opens it, so its -wal and -shm files are 0600 too
    try:
        env = location.env if settings.audit_chain else without_chain(location)
        app = Keng(env=env, clock=clock, limits=limits_of(settings))
    except Exception as e:  # the library wraps driver errors in several types; all mean "cannot open"
        raise StartupError(f"cannot open the event store at {location.display}: {e}") from e
    factory = app.factory
    if isinstance(factory, KengSQLiteFactory) and factory.synchronous_level() != SYNCHRONOUS_FULL:
        raise DurabilityError(f"{location.display}: PRAGMA synchronous is not FULL")
    return app


def warn_loose_permissions(data_dir: Path) -> int:
    """Log a warning for each directory or file in the data directory that group or others may use (an installation
    made before keng kept it private); returns how many. `keng doctor --fix` tightens them."""
    if not data_dir.is_dir():
        return 0
    loose = loose_paths(data_dir)
    for item in loose:
        log.warning("data_dir.permissions_too_wide", **item.as_dict())
    if loose:
        log.warning("data_dir.not_private", data_dir=str(data_dir), paths=len(loose), fix="keng doctor --fix")
    return len(loose)
