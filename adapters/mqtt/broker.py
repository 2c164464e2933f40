"""Which broker to use: a URL (`mqtt://user:pass@host:port`, e.g. mosquitto) or an embedded amqtt broker.

The embedded broker (amqtt, pure Python, MQTT 3.1.1) starts in-process when no broker URL is configured, so that the
README's run command needs no system package. It is for demos and small sites: MQTT 3.1.1 has no message-expiry
property (expiry is still enforced by the dispatcher and by devices from the payload), and one Python process carries
every message (see docs/dispatch.md for its measured limit). Production runs on mosquitto or a cluster.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit


class BrokerConfigError(ValueError):
    """The broker URL could not be understood."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens and how to log in; `mqtt5` is False for brokers that only speak 3.1.1."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    mqtt5: bool = True

    @property
    def display(self) -> str:
        """For logs: never includes the password."""
        user = f"{self.username}@" if self.username else ""
        return f"mqtt://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtt://[user[:password]@]host[:port]` (port 1883 by default); `?v=3` for a broker without MQTT 5."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp"):
        raise BrokerConfigError(f"unsupported broker URL scheme {parts.scheme!r}: use mqtt://host:port")
    if not parts.hostname:
        raise BrokerConfigError(f"broker URL {url!r} names no host")
    return BrokerAddress(
        host=parts.hostname,
        port=parts.port or 1883,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        mqtt5="v=3" not in parts.query,
    )


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """An amqtt broker in this process's event loop (anonymous, loopback by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port()
        self._broker: Any = None

    @property
    def address(self) -> BrokerAddress:
        """The address clients connect to (MQTT 3.1.1)."""
        return BrokerAddress(self.host, self.port, mqtt5=False)

    async def start(self) -> BrokerAddress:
        """Start listening; returns the address."""
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": -1}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = Broker(config)
        await self._broker.start()
        return self.address

    async def stop(self) -> None:
        """Shut the broker down (idempotent)."""
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()
