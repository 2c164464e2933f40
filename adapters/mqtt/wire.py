"""A minimal MQTT 3.1.1 client on a raw asyncio transport: the simulated fleet, the benchmarks, and the dispatcher's
intake of what devices say (acks and statuses).

Why not aiomqtt here (the card's MQTT library, which keng uses for everything it publishes: adapters/mqtt/link.py):
- Reading. aiomqtt runs paho, which reads a packet with several `recv` calls, builds a message object (and, on MQTT 5,
  a property set), matches it against its callback filters and, at QoS 1, registers and unregisters a socket writer
  for each PUBACK. A 10,000-device dispatch brings 30,000 acks within about a second; `bench/intake.py` (30,000 acks
  from 2 sender processes, mosquitto, 2 cores) measured one aiomqtt connection reading 6,573 acks/s at 142 us of CPU
  each on MQTT 5 and 15,754/s at 55 us on 3.1.1, against 51,982/s at 7.9 us here: with aiomqtt the dispatcher took
  4 to 8 s to record the acks that this reads in under one. No maintained Python client reads faster behind the
  card's library, so the intake, which only subscribes and acknowledges, uses this.
- The fleet. Each aiomqtt client is a paho client with its own socket callbacks, futures and a task per publish;
  10,000 of them in a few Python processes on 2 cores made the simulated fleet, not keng, the bottleneck of the
  fan-out benchmark (docs/dispatch.md).
This client is an `asyncio.Protocol`: one parser per connection, no task per message, the packets written while
handling one read (PUBACKs, and a device's acks) leave in one `send`, and fire-and-forget QoS 1 publishes (`send`)
stay in flight until the PUBACK and are resent on reconnect. It speaks only what a device or a reader needs: CONNECT
(with a retained last will), SUBSCRIBE, PUBLISH/PUBACK at QoS 0/1, PINGREQ, DISCONNECT, over TCP or, for an
`mqtts://` broker, TLS (asyncio's, with the address's verifying context: CA and host name, as MqttLink). MQTT
3.1.1 works with mosquitto (which strips MQTT 5 properties such as the message expiry for 3.1.1 subscribers; devices
read the expiry from the payload), with the embedded broker and with NATS server's MQTT.

A broker cluster (an address with several nodes) is served as MqttLink serves it: the first node that answers, the
next one when the connection fails or drops (subscribing again, and sending again what is still in flight there), the
same one once more first when it closed a connection it had served.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from keng.adapters.mqtt.broker import NEXT_NODE_S, BrokerAddress, is_tls_refusal, tls_refusal_fields
from keng.adapters.mqtt.protocol import HEARTBEAT_S, QOS

log = structlog.get_logger(__name__)
OnMessage = Callable[[str, bytes], None]
CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
MAX_INFLIGHT = 1000  # unacknowledged publishes kept for resend; the oldest is dropped (and counted) beyond this
MAX_BACKOFF_S = 5.0
CONNECT_TIMEOUT_S = 10.0  # a node that does not answer (a host down, a partition) is given up for the next one
SUBACK_TIMEOUT_S = 10.0  # a broker silent this long after a SUBSCRIBE (or the SUBACK before) is given up
_TLS_REFUSED: set[str] = set()  # brokers whose certificate a device refused: logged as an error once per process


class WireError(ConnectionError):
    """The broker refused the connection or sent something this client does not understand."""


@dataclass(frozen=True)
class WireWill:
    """A last will: published by the broker when the connection drops without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = QOS
    retain: bool = True


class MessageSource(Protocol):
    """The dispatcher's intake of what devices say: a subscription (to acks and statuses, chosen by whoever builds it)
    that hands each message to `on_message(topic, payload)`, which must not block. `WireLink` is the real one;
    tests/fakes.py has a fake that a test feeds by hand."""

    connected: asyncio.Event
    on_message: OnMessage | None

    def start(self) -> object:
        """Start connecting and subscribing in the background; `connected` is set once subscribed."""
        ...

    async def close(self) -> None:
        """Stop reconnecting and disconnect."""
        ...


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    n = len(body)
    if n < 16384:  # every ack and command: one or two length bytes, built without the loop
        head = (kind << 4 | flags, n) if n < 128 else (kind << 4 | flags, n & 0x7F | 0x80, n >> 7)
        return bytes(head) + body
    length = bytearray()
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes([kind << 4 | flags]) + bytes(length) + body


def connect_packet(
    client_id: str, keepalive: int, will: WireWill | None, username: str | None, password: str | None
) -> bytes:
    """CONNECT, protocol level 4 (3.1.1), clean session."""
    flags = 0x02
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | will.qos << 3 | (0x20 if will.retain else 0)
        payload += _string(will.topic) + _string(will.payload)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
        if password is not None:
            flags |= 0x40
            payload += _string(password)
    return _packet(CONNECT, 0, _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + payload)


def publish_packet(topic: str | bytes, payload: bytes, *, qos: int, retain: bool, packet_id: int) -> bytes:
    """PUBLISH (packet id only at QoS > 0); `topic` as text, or already length-prefixed bytes (`_string`)."""
    head = (topic if isinstance(topic, bytes) else _string(topic)) + (struct.pack("!H", packet_id) if qos else b"")
    return _packet(PUBLISH, qos << 1 | (1 if retain else 0), head + payload)


def subscribe_packet(packet_id: int, topics: tuple[str, ...], qos: int = QOS) -> bytes:
    """SUBSCRIBE to every topic filter in one packet."""
    return _packet(SUBSCRIBE, 0x02, struct.pack("!H", packet_id) + b"".join(_string(t) + bytes([qos]) for t in topics))


def parse_packets(buffer: bytearray) -> list[tuple[int, int, bytes]]:
    """Cut every complete packet off the front of `buffer`: (type, flags, body)."""
    out: list[tuple[int, int, bytes]] = []
    pos, end = 0, len(buffer)
    while end - pos >= 2:
        multiplier, length, i = 1, 0, pos + 1
        while True:
            if i >= end:
                del buffer[:pos]
                return out
            byte = buffer[i]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            i += 1
            if not byte & 0x80:
                break
            if multiplier > 128**4:
                raise WireError("malformed remaining length")
        if end - i < length:
            break
        out.append((buffer[pos] >> 4, buffer[pos] & 0x0F, bytes(buffer[i : i + length])))
        pos = i + length
    del buffer[:pos]
    return out


class _Connection(asyncio.Protocol):
    def __init__(self, link: WireLink) -> None:
        self.link = link
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.batch: list[bytes] | None = None  # writes made while handling received data go out in one send

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.batch = []
        try:
            for kind, flags, body in parse_packets(self.buffer):
                self.link._packet(self, kind, flags, body)
        except (WireError, struct.error, UnicodeDecodeError, IndexError) as e:
            self._fail(WireError(str(e)))
            if self.transport is not None:
                self.transport.close()
        finally:
            batch, self.batch = self.batch, None
            if batch and self.transport is not None and not self.transport.is_closing():
                self.transport.write(b"".join(batch))  # PUBACK and the acks it caused: one syscall, not three
                self.link._last_write = asyncio.get_running_loop().time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("connection closed by the broker"))

    def _fail(self, exc: BaseException) -> None:
        if not self.lost.done():
            self.lost.set_exception(exc)
            self.lost.exception()  # marked retrieved: the session may already have stopped waiting


class WireLink:
    """A reconnecting device connection with the surface of `MqttLink` that the simulator uses."""

    def __init__(
        self,
        broker: BrokerAddress,
        *,
        client_id: str,
        subscriptions: tuple[str, ...] = (),
        on_message: OnMessage | None = None,
        will: WireWill | None = None,
        on_connect: Callable[[WireLink], Awaitable[None]] | None = None,
        keepalive: int = HEARTBEAT_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        announce: bool = False,
        subscribe_qos: int = QOS,
    ) -> None:
        self.broker = broker
        self.announce = announce  # disconnects logged as warnings (the dispatcher's intake), not debug (a device)
        self.client_id = client_id
        self.subscriptions = subscriptions
        self.subscribe_qos = subscribe_qos
        self.on_message = on_message
        self.will = will
        self.on_connect = on_connect
        self.keepalive = keepalive
        self.max_backoff_s = max_backoff_s
        self.connected = asyncio.Event()
        self.connects = 0
        self.node = broker.nodes[0]  # the node it is connected to, or tries next
        self.dropped_inflight = 0
        self.tls_refusals = 0  # handshakes that refused the broker's certificate
        self.refused_subscriptions = 0  # topic filters a SUBACK refused (subscribed again until granted)
        self._conn: _Connection | None = None
        self._inflight: dict[int, bytes] = {}
        self._topics: dict[str, bytes] = {}
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._handshake: dict[int, asyncio.Future[bytes]] = {}
        self._next_id = 0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._ping: asyncio.TimerHandle | None = None
        self._last_write = 0.0

    def start(self) -> asyncio.Task[None]:
        """Run the connection loop in a task (kept, and cancelled by `close`)."""
        self._task = asyncio.create_task(self.run(), name=f"wire-{self.client_id}")
        return self._task

    async def run(self) -> None:
        """Connect, subscribe, serve; on a lost connection wait (0.25 s, doubling, capped) and reconnect, to the next
        node of a cluster (the wait grows once every node has failed in a row). A node of a cluster that closes a
        connection it served is tried once more first (then the next): it is usually up (NATS closes the connections
        of QoS 1 publishers it cannot store for, while its stream elects a leader), and moving on would split the
        clients that share its list (the dispatcher's two links) over two nodes for no gain. A connection that went
        silent (a timeout) moves on at once."""
        backoff = 0.25
        nodes = self.broker.nodes
        index = failed = 0
        while not self._closing:
            self.node = node = nodes[index]
            again = False  # try this node once more before the next one
            connects = self.connects
            try:
                await self._session(node)
                backoff = 0.25
            except (OSError, WireError, TimeoutError) as e:
                if self._closing:
                    break
                if self.connects > connects:  # it had connected: the wait starts again from the shortest
                    backoff, failed = 0.25, 0
                    again = len(nodes) > 1 and not isinstance(e, TimeoutError)  # closed by a node that was up
                wait = backoff if again or failed + 1 >= len(nodes) else NEXT_NODE_S
                refused = is_tls_refusal(e)
                if refused is not None:
                    self.tls_refusals += 1
                    first = node.display not in _TLS_REFUSED
                    _TLS_REFUSED.add(node.display)
                    (log.error if self.announce or first else log.debug)(
                        "mqtt.tls_refused",
                        client_id=self.client_id,
                        retry_in_s=wait,
                        **tls_refusal_fields(node, refused),
                    )
                else:
                    fields = {"broker": node.display} if len(nodes) > 1 else {}
                    (log.warning if self.announce else log.debug)(
                        "mqtt.disconnected", client_id=self.client_id, error=str(e), retry_in_s=wait, **fields
                    )
            finally:
                self._teardown()
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

    async def _session(self, node: BrokerAddress) -> None:
        loop = asyncio.get_running_loop()
        context = node.ssl_context()
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Connection(self),
                node.host,
                node.port,
                ssl=context,
                server_hostname=node.host if context is not None else None,
                ssl_handshake_timeout=10 if context is not None else None,
            ),
            CONNECT_TIMEOUT_S,
        )
        self._conn = conn
        connack = self._expect(CONNACK << 16)
        self._write(connect_packet(self.client_id, self.keepalive, self.will, node.username, node.password))
        body = await asyncio.wait_for(self._race(connack, conn), 10)
        if len(body) < 2 or body[1] != 0:
            raise WireError(f"connection refused (return code {body[1] if len(body) > 1 else '?'})")
        self._schedule_ping()
        await self._subscribe(conn, node)
        self.connects += 1
        if self.announce and self.connects > 1:
            log.info("mqtt.reconnected", client_id=self.client_id, broker=node.display)
        for packet in self._inflight.values():  # QoS 1: resend what the broker never acknowledged, marked DUP
            self._write(bytes([packet[0] | 0x08]) + packet[1:])
        self.connected.set()
        if self.on_connect is not None:
            await self.on_connect(self)
        await conn.lost

    async def _subscribe(self, conn: _Connection, node: BrokerAddress) -> None:
        """SUBSCRIBE to every topic filter, and again to those the SUBACK refused (return code 0x80: NATS server
        answers so when it cannot make the JetStream consumer of a QoS 1 subscription, while its cluster elects
        leaders), after a pause that doubles up to `max_backoff_s`, until the broker has granted them all: a
        connection is `connected` only once it hears everything it subscribed to.

        Each filter goes in a SUBSCRIBE of its own (all written at once) and each SUBACK is awaited in turn for up to
        `SUBACK_TIMEOUT_S` after the one before: a broker that makes the subscriptions one after the other (NATS: a
        replicated JetStream consumer each, up to 4 s apiece while its cluster recovers) is given up on only when it
        stops answering, not while it works through them. Giving up on one that is still working would leave it
        finishing a session that the next node then has to take over and undo, for every device at once."""
        topics, pause = self.subscriptions, 0.5
        while topics:
            pending = []
            for topic in topics:
                pid = self._packet_id()
                pending.append((topic, self._expect(SUBACK << 16 | pid)))
                self._write(subscribe_packet(pid, (topic,), self.subscribe_qos))
            refused = []
            for topic, suback in pending:
                body = await asyncio.wait_for(self._race(suback, conn), SUBACK_TIMEOUT_S)
                if len(body) < 3 or body[2] & 0x80:
                    refused.append(topic)
            topics = tuple(refused)
            if topics:
                self.refused_subscriptions += len(topics)
                (log.warning if self.announce else log.debug)(
                    "mqtt.subscription_refused",
                    client_id=self.client_id,
                    broker=node.display,
                    topics=list(topics),
                    retry_in_s=pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_backoff_s)

    async def _race(self, future: asyncio.Future[bytes], conn: _Connection) -> bytes:
        waiting: set[asyncio.Future[Any]] = {future, conn.lost}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not future.done():
            await conn.lost  # raises why the connection was lost
        return future.result()

    def _expect(self, key: int) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._handshake[key] = future
        return future

    def _teardown(self) -> None:
        self.connected.clear()
        if self._ping is not None:
            self._ping.cancel()
            self._ping = None
        for future in self._handshake.values():
            future.cancel()
        self._handshake.clear()
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()
        self._conn = None

    def _packet(self, conn: _Connection, kind: int, flags: int, body: bytes) -> None:
        if kind == PUBLISH:
            qos = flags >> 1 & 0x03
            n = body[0] << 8 | body[1]
            topic = body[2 : 2 + n].decode()
            start = 2 + n
            if qos:
                self._write(_packet(PUBACK, 0, body[start : start + 2]))
                start += 2
            if self.on_message is not None:
                self.on_message(topic, body[start:])
        elif kind == PUBACK:
            pid = body[0] << 8 | body[1]
            self._inflight.pop(pid, None)
            waiter = self._waiters.pop(pid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif kind in (CONNACK, SUBACK):
            key = kind << 16 | (0 if kind == CONNACK else body[0] << 8 | body[1])
            future = self._handshake.pop(key, None)
            if future is not None and not future.done():
                future.set_result(body)
        elif kind != PINGRESP:
            raise WireError(f"unexpected packet type {kind}")

    def _write(self, packet: bytes) -> None:
        conn = self._conn
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            if conn.batch is not None:
                conn.batch.append(packet)  # written, and _last_write set, at the end of data_received
            else:
                conn.transport.write(packet)
                self._last_write = asyncio.get_running_loop().time()

    def _schedule_ping(self) -> None:
        self._ping = asyncio.get_running_loop().call_later(self.keepalive * 0.5, self._keepalive)

    def _keepalive(self) -> None:
        if asyncio.get_running_loop().time() - self._last_write >= self.keepalive * 0.5:
            self._write(_packet(PINGREQ, 0, b""))
        self._schedule_ping()

    def _packet_id(self) -> int:
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._inflight:
                return self._next_id
        raise WireError("no free packet id")

    def send(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = QOS) -> int:
        """Publish without waiting: at QoS 1 the message stays in flight (resent on reconnect) until its PUBACK.
        While disconnected it waits in flight too (bounded by MAX_INFLIGHT). Returns the packet id (0 at QoS 0)."""
        pid = self._packet_id() if qos else 0
        encoded = self._topics.get(topic)
        if encoded is None:
            encoded = self._topics[topic] = _string(topic)  # a device publishes to two topics, over and over
        packet = publish_packet(encoded, payload, qos=qos, retain=retain, packet_id=pid)
        if qos:
            if len(self._inflight) >= MAX_INFLIGHT:
                del self._inflight[next(iter(self._inflight))]
                self.dropped_inflight += 1
            self._inflight[pid] = packet
        if self.connected.is_set():
            self._write(packet)
        return pid

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = QOS) -> bool:
        """Publish and wait for the broker's PUBACK (QoS 1), waiting out disconnects."""
        await self.connected.wait()
        if self._closing:
            return False
        pid = self.send(topic, payload, retain=retain, qos=qos)
        if not qos:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[pid] = waiter
        try:
            await waiter
        finally:
            self._waiters.pop(pid, None)
        return True

    async def close(self) -> None:
        """Disconnect cleanly (the broker does not publish the will) and stop reconnecting."""
        self._closing = True
        with contextlib.suppress(Exception):
            self._write(_packet(DISCONNECT, 0, b""))
        self._teardown()
        self.connected.set()  # wake publishers waiting for a connection; they see `_closing`
        for waiter in self._waiters.values():
            waiter.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
