"""Where the long-running commands listen and connect (`keng serve`, `keng dispatch run`): each port is checked free,
and the broker URL with its TLS files read, before anything starts or is printed, so that a mistake is one clear
error rather than a banner and a crash."""

from __future__ import annotations

import errno
import socket

from keng.runtime.bootstrap import broker_of
from keng.runtime.cli.output import CommandError
from keng.runtime.config import Settings


def require_free_port(host: str, port: int, *, setting: str = "--port") -> None:
    """Refuse a port something else listens on. Other bind failures (an address not on this machine, a privileged
    port) are met where the listener starts."""
    try:
        with socket.create_server((host, port)):  # SO_REUSEADDR, as aiohttp binds: a closing socket does not count
            pass
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise CommandError(
                f"Cổng {port} đang được chương trình khác sử dụng",
                f"port {port} on {host} is already in use: stop what listens there or choose another {setting}",
                rule="port-in-use",
            ) from None


def broker_plan(settings: Settings) -> tuple[Settings, str]:
    """The settings with the embedded broker's port fixed (port 0 of KENG_BROKER_LISTEN: a free one, chosen now), and
    the line of the start-up banner naming where devices connect: the configured broker (its URL checked, its TLS
    files read), or the embedded broker's listen address (checked free)."""
    configured = broker_of(settings)
    if configured is not None:
        return settings, f"Thiết bị kết nối MQTT (devices connect to) {configured.display}"
    from keng.adapters.mqtt.broker import WILDCARD_HOSTS, free_port

    host, port = settings.broker_listen
    if port == 0:
        try:
            port = free_port("127.0.0.1" if host in WILDCARD_HOSTS else host)
        except OSError as e:
            raise CommandError(
                "Không mở được cổng cho broker nhúng",
                f"KENG_BROKER_LISTEN: cannot listen on {host}: {e.strerror or e}",
                rule="port-in-use",
            ) from None
        settings = settings.override(broker_listen=(host, port))
    require_free_port(host, port, setting="KENG_BROKER_LISTEN (HOST:PORT of the embedded broker)")
    return settings, f"Broker MQTT nhúng (embedded broker) mqtt://{host}:{port}"
