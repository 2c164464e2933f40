"""Settings, read once by the composition root from arguments and the environment (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path

from domain.errors import InvalidValue
from domain.values import parse_digits

VIETNAM = timezone(timedelta(hours=7), "ICT")


@dataclass(frozen=True)
class Settings:
    """Where keng keeps its data and how it talks to people."""

    data_dir: Path
    store_url: str | None
    log_format: str  # auto | json | console
    log_level: str
    display_tz: timezone = VIETNAM
    max_expiry_days: int = 30  # a broadcast expires at most this many days after it is accepted
    audit_chain: bool = True  # KENG_AUDIT_CHAIN=off: a benchmark's baseline only, never production
    audit_seal_interval_s: float = 60.0  # KENG_AUDIT_SEAL_INTERVAL_S: longest wait of an event for its checkpoint


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """`KENG_DATA`, else `$XDG_DATA_HOME/keng`, else `~/.local/share/keng`."""
    if environ.get("KENG_DATA"):
        return Path(environ["KENG_DATA"]).expanduser()
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "keng"


def load_settings(
    *, data_dir: str | None = None, store_url: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings: explicit arguments win over the environment, which wins over defaults."""
    env = os.environ if environ is None else environ
    return Settings(
        data_dir=Path(data_dir).expanduser() if data_dir else default_data_dir(env),
        store_url=store_url or env.get("KENG_STORE") or None,
        log_format=env.get("KENG_LOG_FORMAT", "auto"),
        log_level=env.get("KENG_LOG_LEVEL", "info"),
        max_expiry_days=parse_digits(env.get("KENG_MAX_EXPIRY_DAYS", "30"), "KENG_MAX_EXPIRY_DAYS", lo=1, hi=3650),
        audit_chain=_on_off(env, "KENG_AUDIT_CHAIN"),
        audit_seal_interval_s=_seconds(env, "KENG_AUDIT_SEAL_INTERVAL_S", 60.0, most=3600.0),
    )


def _on_off(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "on").strip().lower()
    if value not in ("on", "off"):
        raise InvalidValue(f"{name} must be 'on' or 'off', not {value!r}")
    return value == "on"


def _seconds(env: Mapping[str, str], name: str, default: float, *, most: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidValue(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= most:
        raise InvalidValue(f"{name} must be more than 0 and at most {most:g} seconds, not {raw!r}")
    return value
