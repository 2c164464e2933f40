"""One MQTT connection that survives broker restarts: aiomqtt in a reconnect loop with capped backoff.

`publish` waits for a connection instead of failing, and retries a publish that a disconnect interrupted (QoS 1 is
at-least-once; devices de-duplicate): one waiting for its PUBACK when the connection drops is sent again on the next
connection at once, not after its timeout. A subscription the broker refuses is asked for again until granted. Incoming
messages go to a callback that must not block: the dispatcher's callback puts them on bounded queues.

A broker cluster (an address with several nodes, adapters/mqtt/broker.py) is served one node at a time: the link
connects to the first node that answers, in the order listed, and when its connection fails or drops it tries the
next one (subscribing again there), except that a node which closed a connection it served is tried once more first;
the backoff grows only once every node has failed in a row. With one node this is the reconnect loop it always was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

import aiomqtt
import structlog
from paho.mqtt import client as mqtt_client
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from keng.adapters.aio import cancel_and_wait
from keng.adapters.mqtt.broker import NEXT_NODE_S, BrokerAddress, is_tls_refusal, tls_refusal_fields
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
        self.refused_subscriptions = 0  # topic filters the broker refused (subscribed again until granted)
        self.node = broker.nodes[0]  # the node it is connected to, or tries next
        self._client: aiomqtt.Client | None = None
        self._lost: asyncio.Future[None] | None = None  # resolved when the current connection ends
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Run the connection loop in a task (kept, and cancelled by `close`)."""
        self._task = asyncio.create_task(self.run(), name=f"mqtt-{self.client_id}")
        return self._task

    def _make_client(self, node: BrokerAddress) -> aiomqtt.Client:
        return aiomqtt.Client(
            node.host,
            node.port,
            username=node.username,
            password=node.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if node.mqtt5 else aiomqtt.ProtocolVersion.V311,
            will=self.will,
            keepalive=self.keepalive,
            timeout=10,
            max_queued_incoming_messages=100_000,
            tls_context=node.ssl_context(),  # verifies the broker's certificate and host name (mqtts://)
        )

    async def run(self) -> None:
        """Connect, subscribe, deliver messages; on any MQTT error wait (0.25 s, doubling, capped) and reconnect, to
        the next node of a cluster (the wait grows once every node has failed in a row). A node of a cluster that
        closes a connection it served is tried once more first (then the next), as WireLink does: it is usually up
        (NATS closes the connections of QoS 1 publishers it cannot store for, while its stream elects a leader), and
        moving on would split the dispatcher's two links over two nodes. A connection that went silent (keepalive,
        an operation's timeout) moves on at once."""
        backoff = 0.25
        nodes = self.broker.nodes
        index = failed = 0
        while not self._closing:
            self.node = node = nodes[index]
            again = False  # try this node once more before the next one
            connects = self.connects
            try:
                async with self._make_client(node) as client:
                    await self._subscribe(client, node)
                    self._client = client
                    self._lost = asyncio.get_running_loop().create_future()
                    self.connects += 1
                    backoff, failed = 0.25, 0
                    self.connected.set()
                    if self.connects > 1:
                        log.info("mqtt.reconnected", client_id=self.client_id, broker=node.display)
                    if self.on_connect is not None:
                        await self.on_connect(self)
                    async for message in client.messages:
                        if self.on_message is not None:
                            self.on_message(str(message.topic), bytes(message.payload))  # type: ignore[arg-type,unused-ignore]
            except aiomqtt.MqttError as e:
                if self._closing:
                    break
                # a node that served this connection and closed it is probably up: try it once more first
                again = self.connects > connects and len(nodes) > 1 and not _went_silent(e)
                wait = backoff if again or failed + 1 >= len(nodes) else NEXT_NODE_S
                refused = is_tls_refusal(e)
                if refused is not None:
                    log.error(
                        "mqtt.tls_refused",
                        client_id=self.client_id,
                        retry_in_s=wait,
                        **tls_refusal_fields(node, refused),
                    )
                else:
                    fields = {"broker": node.display} if len(nodes) > 1 else {}
                    log.warning("mqtt.disconnected", client_id=self.client_id, error=str(e), retry_in_s=wait, **fields)
            finally:
                self._client = None
                self.connected.clear()
                if self._lost is not None and not self._lost.done():
                    self._lost.set_result(None)  # publishes waiting for a PUBACK on it are sent again
            if self._closing:
                break
            if again:
                await asyncio.sleep(backoff)
                continue
            index, failed = (index + 1) % len(nodes), failed + 1
            if failed >= len(nodes):  # every node failed in a row (a single broker: each failure)
                await asyncio.sleep(backoff)
                backoff, failed = min(backoff * 2, self.max_backoff_s), 0
            else:
                await asyncio.sleep(NEXT_NODE_S)  # the next node of the cluster, at once

    async def _subscribe(self, client: aiomqtt.Client, node: BrokerAddress) -> None:
        """Subscribe to every topic filter, and again to those the broker refused (a failure reason code: NATS server
        answers so while its cluster elects leaders), after a pause that doubles up to `max_backoff_s`, until all
        are granted (wire.py's reader does the same)."""
        topics, pause = self.subscriptions, 0.5
        while topics:
            refused = []
            for topic in topics:
                codes = await client.subscribe(topic, qos=QOS)
                if any((code if isinstance(code, int) else code.value) >= 0x80 for code in codes):
                    refused.append(topic)
            topics = tuple(refused)
            if topics:
                self.refused_subscriptions += len(topics)
                log.warning(
                    "mqtt.subscription_refused",
                    client_id=self.client_id,
                    broker=node.display,
                    topics=list(topics),
                    retry_in_s=pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_backoff_s)

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
            lost = self._lost
            sent = asyncio.ensure_future(
                client.publish(topic, payload, qos=qos, retain=retain, properties=props, timeout=10)
            )
            try:
                if lost is not None:
                    await asyncio.wait((sent, lost), return_when=asyncio.FIRST_COMPLETED)
                    if not sent.done():  # the connection dropped before the PUBACK: send it again on the next one
                        sent.cancel()
                        raise aiomqtt.MqttError("connection lost before the PUBACK")
                await sent
                return True
            except aiomqtt.MqttError:
                # Sent again: on the next connection (`run` clears `connected` when this one ends), or on this one when
                # it is still up (a PUBACK later than the timeout: NATS stores a QoS 1 message in a replicated stream
                # first, which waits while the stream elects a leader). Clearing `connected` here would stop every
                # publish until the connection happened to drop.
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                sent.cancel()
                raise
        return False

    async def close(self) -> None:
        """Stop reconnecting and disconnect."""
        self._closing = True
        self.connected.set()  # wake publishers so they see LinkClosed
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None


def _went_silent(error: aiomqtt.MqttError) -> bool:
    """Whether a connection ended because the broker stopped answering (paho's keepalive, an operation's timeout)
    rather than because it was closed."""
    rc = getattr(error.__cause__, "rc", None)  # aiomqtt's MqttCodeError: paho's reason for the disconnect
    if isinstance(rc, ReasonCode):
        keepalive = rc.getName() == "Keep alive timeout"  # what paho reports for MQTT_ERR_KEEPALIVE (callback API 2)
    else:
        keepalive = rc == mqtt_client.MQTT_ERR_KEEPALIVE
    return keepalive or "timed out" in str(error)
