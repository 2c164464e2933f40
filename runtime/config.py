"""Settings, read once by the composition root from arguments and the environment (never at import time).

This is the only module that reads the environment: every `KENG_*` variable keng knows is read in `load_settings`,
and a command's own options (`--broker`, `--slots`, `--public-url` ...) are laid over the result with
`Settings.override`, so that the bootstrap (runtime/bootstrap.py) builds everything from one object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from keng.adapters.mqtt.topics import DEFAULT_ROOT, TopicRootError, check_root
from keng.domain.budgets import parse_budgets
from keng.domain.errors import InvalidValue
from keng.domain.values import parse_digits

VIETNAM = timezone(timedelta(hours=7), "ICT")
DEFAULT_TOPIC_ROOT = DEFAULT_ROOT
DEFAULT_BROKER_LISTEN = ("127.0.0.1", 1883)
TTS_ENGINES = ("espeak", "coqui")


@dataclass(frozen=True)
class Settings:
    """Every setting of a keng process: where it keeps its data, how it logs, how it reaches the broker and the
    voices, and the service's limits."""

    data_dir: Path
    store_url: str | None
    log_format: str  # auto | json | console (KENG_LOG_FORMAT)
    log_level: str  # KENG_LOG_LEVEL
    display_tz: timezone = VIETNAM
    max_expiry_days: int = 30  # a broadcast expires at most this many days after it is accepted
    audit_chain: bool = True  # KENG_AUDIT_CHAIN=off: a benchmark's baseline only, never production
    audit_seal_interval_s: float = 60.0  # KENG_AUDIT_SEAL_INTERVAL_S: longest wait of an event for its checkpoint
    broker_url: str | None = None  # --broker / KENG_MQTT (URLs separated by commas: a cluster); None: embedded
    mqtt_ca: Path | None = None  # KENG_MQTT_CA: CA bundle verifying an mqtts:// broker (None: the system's store)
    mqtt_cert: Path | None = None  # KENG_MQTT_CERT: client certificate for an mqtts:// broker
    mqtt_key: Path | None = None  # KENG_MQTT_KEY: its key (None: in the certificate's file)
    topic_root: str = DEFAULT_TOPIC_ROOT  # KENG_TOPIC_ROOT: this installation's MQTT topics live under it
    broker_listen: tuple[str, int] = DEFAULT_BROKER_LISTEN  # KENG_BROKER_LISTEN: the embedded broker (port 0: any)
    tts_engine: str = "espeak"  # KENG_TTS_ENGINE
    tts_model: Path | None = None  # KENG_TTS_MODEL (coqui checkpoint)
    tts_config: Path | None = None  # KENG_TTS_CONFIG (coqui config.json)
    standing_orders_file: Path | None = None  # KENG_STANDING_ORDERS; None: <data dir>/standing-orders.json
    ratify_within: timedelta = timedelta(minutes=30)  # KENG_RATIFY_WITHIN_MIN
    slots: str | None = None  # --slots: programme slots for normal items; None: the sample slots
    quiet: str | None = None  # --quiet: quiet hours; None: the sample's (22:00-05:00) with the sample slots, else none
    latency_budgets: Mapping[str, int] | None = None  # KENG_LATENCY_BUDGETS, e.g. emergency=1000,priority=30000
    settle_s: float | None = None  # dispatch run --settle
    public_url: str | None = None  # --public-url: the base URL devices reach the service at (audio links)
    max_body_bytes: int = 1_048_576  # serve --max-body
    feedback_due: str = ""  # KENG_FEEDBACK_DUE_DAYS, e.g. security=1,other=14 (domain/feedback.py has the defaults)
    # The render processes of `keng serve` (runtime/workers/render_pool.py, docs/tts.md "Rendering processes"):
    render_processes: int = 1  # KENG_RENDER_PROCESSES: how many (0: this service renders nothing ahead)
    render_queue: int = 64  # KENG_RENDER_QUEUE: broadcasts each holds, most urgent first; the rest wait in the log
    render_nice: int = 10  # KENG_RENDER_NICE: added to their rendering threads' niceness (0..19): HTTP goes first
    render_lease_s: float = 60.0  # KENG_RENDER_LEASE_S: a render claim's lease; then another may take over
    # Several workers on one store (runtime/dispatch/partitions.py, docs/deploy.md):
    partitions: int = 64  # KENG_PARTITIONS: slots the dispatch work is cut into (the same on every worker)
    lease_ttl_s: float = 3.0  # KENG_LEASE_TTL_S: a worker's slots are taken over this long after it last renewed

    @property
    def standing_orders_path(self) -> Path:
        """Where the standing orders are read from."""
        return self.standing_orders_file or self.data_dir / "standing-orders.json"

    def override(self, **values: Any) -> Settings:
        """These settings with a command's options laid over them; an option left out (None) keeps the setting."""
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in values.items() if v is not None})


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
        audit_seal_interval_s=_positive(env, "KENG_AUDIT_SEAL_INTERVAL_S", 60.0, most=3600.0, unit="seconds"),
        broker_url=env.get("KENG_MQTT") or None,
        mqtt_ca=_path(env, "KENG_MQTT_CA"),
        mqtt_cert=_path(env, "KENG_MQTT_CERT"),
        mqtt_key=_path(env, "KENG_MQTT_KEY"),
        topic_root=_topic_root(env),
        broker_listen=_listen(env, "KENG_BROKER_LISTEN"),
        tts_engine=_tts_engine(env),
        tts_model=_path(env, "KENG_TTS_MODEL"),
        tts_config=_path(env, "KENG_TTS_CONFIG"),
        standing_orders_file=_path(env, "KENG_STANDING_ORDERS"),
        ratify_within=timedelta(minutes=_positive(env, "KENG_RATIFY_WITHIN_MIN", 30.0, most=10_080.0, unit="minutes")),
        feedback_due=_feedback_due(env),
        latency_budgets=_budgets(env),
        render_processes=_whole(env, "KENG_RENDER_PROCESSES", 1, hi=64),
        render_queue=_whole(env, "KENG_RENDER_QUEUE", 64, lo=1, hi=100_000),
        render_nice=_whole(env, "KENG_RENDER_NICE", 10, hi=19),
        render_lease_s=_positive(env, "KENG_RENDER_LEASE_S", 60.0, most=86_400.0, unit="seconds"),
        partitions=_whole(env, "KENG_PARTITIONS", 64, lo=1, hi=4096),
        lease_ttl_s=_lease_ttl(env),
    )


def _lease_ttl(env: Mapping[str, str]) -> float:
    ttl = _positive(env, "KENG_LEASE_TTL_S", 3.0, most=300.0, unit="seconds")
    if ttl < 1.0:  # the leases are renewed every 0.5 s and dropped 0.75 s before they expire
        raise InvalidValue(f"KENG_LEASE_TTL_S must be at least 1 second, got {ttl:g}")
    return ttl


def _whole(env: Mapping[str, str], name: str, default: int, *, lo: int = 0, hi: int) -> int:
    raw = env.get(name, "").strip()
    return parse_digits(raw, name, lo=lo, hi=hi) if raw else default


def _feedback_due(env: Mapping[str, str]) -> str:
    from keng.domain.feedback import parse_due_days

    raw = env.get("KENG_FEEDBACK_DUE_DAYS", "").strip()
    try:
        parse_due_days(raw)
    except InvalidValue as e:
        raise InvalidValue(f"KENG_FEEDBACK_DUE_DAYS: {e}") from None
    return raw


def _budgets(env: Mapping[str, str]) -> dict[str, int] | None:
    raw = env.get("KENG_LATENCY_BUDGETS", "").strip()
    if not raw:
        return None
    try:
        return parse_budgets(raw)
    except InvalidValue as e:
        raise InvalidValue(f"KENG_LATENCY_BUDGETS: {e.message}") from None


def _topic_root(env: Mapping[str, str]) -> str:
    raw = env.get("KENG_TOPIC_ROOT", "").strip()
    if not raw:
        return DEFAULT_TOPIC_ROOT
    try:
        return check_root(raw)
    except TopicRootError as e:
        raise InvalidValue(f"KENG_TOPIC_ROOT: {e}") from None


def parse_listen(raw: str, name: str) -> tuple[str, int]:
    """`HOST:PORT` (an IPv4 address or a host name; port 0 to 65535, 0: any free port) -> (host, port)."""
    host, sep, port = raw.strip().rpartition(":")
    if not sep or not host or ":" in host or "[" in host:
        raise InvalidValue(
            f"{name} must be HOST:PORT with an IPv4 address or a host name, e.g. 127.0.0.1:1883, not {raw!r}"
        )
    if not host.isascii() or not all(c.isalnum() or c in ".-_" for c in host):
        raise InvalidValue(f"{name}: {host!r} is not a host name or IPv4 address")
    return host, parse_digits(port, name, lo=0, hi=65535)


def _listen(env: Mapping[str, str], name: str) -> tuple[str, int]:
    raw = env.get(name, "").strip()
    return parse_listen(raw, name) if raw else DEFAULT_BROKER_LISTEN


def _on_off(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "on").strip().lower()
    if value not in ("on", "off"):
        raise InvalidValue(f"{name} must be 'on' or 'off', not {value!r}")
    return value == "on"


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    return Path(raw).expanduser() if raw else None


def _tts_engine(env: Mapping[str, str]) -> str:
    engine = env.get("KENG_TTS_ENGINE", "").strip() or "espeak"
    if engine not in TTS_ENGINES:
        raise InvalidValue(f"KENG_TTS_ENGINE must be one of {', '.join(TTS_ENGINES)}, not {engine!r}")
    return engine


def _positive(env: Mapping[str, str], name: str, default: float, *, most: float, unit: str) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidValue(f"{name} must be a number of {unit}, not {raw!r}") from None
    if not 0 < value <= most:
        raise InvalidValue(f"{name} must be more than 0 and at most {most:g} {unit}, not {raw!r}")
    return value
