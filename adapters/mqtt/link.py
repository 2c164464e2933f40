"""One MQTT connection that survives broker restarts: aiomqtt in a reconnect loop with capped backoff.

`publish` waits for a connection instead of failing, and retries a publish that a disconnect interrupted (QoS 1 is
at-least-once; devices de-duplicate). Incoming messages go to a callback that must not block: the dispatcher's
callback puts them on bounded queues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

import aiomqtt
import structlog
from paho.mqtt.properties import Properties

from keng.adapters.aio import cancel_and_wait
from keng.adapters.mqtt.broker import BrokerAddress, is_tls_refusal, tls_refusal_fields
from keng.adapters.mqtt.protocol import HEARTBEAT_S, QOS, expiry_properties

log = structlog.get_logger(__name__)
OnMessage = Callable[[str, bytes], None]
MAX_BACKOFF_S = 5.0


class LinkClosed(RuntimeError):
    """The link was closed while a publish was waiting."""


class CommandLink(Protocol):
    """The dispatcher's outbound link: what it needs to send commands (and its ack-barrier markers) to devices.
    `MqttLink` is the real one; tests/fakes.py has a recording fake."""

    connected: asyncio.Event

    def start(self) -> object:
        """Start connecting in the background; `connected` is set once publishing can begin."""
        ...

    async def publish(self, topic: str, payload: bytes, *, expires_at: datetime | None = None) -> bool:
        """Publish at QoS 1, waiting out disconnects; False when the message expired before it could be sent; raise
        LinkClosed once the link is closed."""
        ...

    async def close(self) -> None:
        """Stop reconnecting and disconnect."""
        ...


class MqttLink:
    """A reconnecting client: `run()` in a task; `publish()` from anywhere in the same loop."""

    def __init__(
        self,
        broker: BrokerAddress,
        *,
        client_id: str,
        subscriptions: tuple[str, ...] = (),
        on_message: OnMessage | None = None,
        will: aiomqtt.Will | None = None,
        on_connect: Callable[[MqttLink], Awaitable[None]] | None = None,
        max_backoff_s: float = MAX_BACKOFF_S,
        keepalive: int = HEARTBEAT_S,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.subscriptions = subscriptions
        self.on_message = on_message
        self.will = will
        self.on_connect = on_connect
        self.max_backoff_s = max_backoff_s
        self.keepalive = keepalive
        self.connected = asyncio.Event()
        self.connects = 0
        self._client: aiomqtt.Client | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Run the connection loop in a task (kept, and cancelled by `close`)."""
        self._task = asyncio.create_task(self.run(), name=f"mqtt-{self.client_id}")
        return self._task

    def _make_client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.broker.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if self.broker.mqtt5 else aiomqtt.ProtocolVersion.V311,
            will=self.will,
            keepalive=self.keepalive,
            timeout=10,
            max_queued_incoming_messages=100_000,
            tls_context=self.broker.ssl_context(),  # verifies the broker's certificate and host name (mqtts://)
        )

    async def run(self) -> None:
        """Connect, subscribe, deliver messages; on any MQTT error wait (1 s, doubling, capped) and reconnect."""
        backoff = 0.25
        while not self._closing:
            try:
                async with self._make_client() as client:
                    for topic in self.subscriptions:
                        await client.subscribe(topic, qos=QOS)
                    self._client = client
                    self.connects += 1
                    backoff = 0.25
                    self.connected.set()
                    if self.connects > 1:
                        log.info("mqtt.reconnected", client_id=self.client_id, broker=self.broker.display)
                    if self.on_connect is not None:
                        await self.on_connect(self)
                    async for message in client.messages:
                        if self.on_message is not None:
                            self.on_message(str(message.topic), bytes(message.payload))  # type: ignore[arg-type,unused-ignore]
            except aiomqtt.MqttError as e:
                if self._closing:
                    break
                refused = is_tls_refusal(e)
                if refused is not None:
                    log.error(
                        "mqtt.tls_refused",
                        client_id=self.client_id,
                        retry_in_s=backoff,
                        **tls_refusal_fields(self.broker, refused),
                    )
                else:
                    log.warning("mqtt.disconnected", client_id=self.client_id, error=str(e), retry_in_s=backoff)
            finally:
                self._client = None
                self.connected.clear()
            if not self._closing:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        expires_at: datetime | None = None,
        qos: int = QOS,
        attempts: int = 1_000_000,
    ) -> bool:
        """Publish, waiting out disconnects; False when the message expired before it could be sent."""
        for _ in range(attempts):
            if self._closing:
                raise LinkClosed(self.client_id)
            await self.connected.wait()
            client = self._client
            if client is None:
                await asyncio.sleep(0.05)
                continue
            props: Properties | None = None
            if expires_at is not None:
                props = expiry_properties(expires_at, datetime.now(UTC))
                if props is None:
                    return False
                if not self.broker.mqtt5:
                    props = None
            try:
                await client.publish(topic, payload, qos=qos, retain=retain, properties=props, timeout=10)
                return True
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.05)
        return False

    async def close(self) -> None:
        """Stop reconnecting and disconnect."""
        self._closing = True
        self.connected.set()  # wake publishers so they see LinkClosed
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
