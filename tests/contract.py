"""The device protocol's contract in tests: check MQTT messages against docs/asyncapi.json, and tap a test broker.

`Contract.check(topic, payload)` picks the channel by topic (its address, with the parameters checked: `class` from
its enum, `endpoint` and `area` as registry codes), then the message by the channel's discriminator (`op` on
command topics, `state` on ack and status topics), and validates the payload against that message's JSON Schema.
It also holds what a schema cannot say: a payload's `endpoint` equals the one in its topic, and a command goes only
to the class it is for (`x-keng-class`). Barrier markers (`<root>/ack/~<client id>`) are keng-internal: documented
(channel `ackBarrier`), never checked as device traffic. An empty payload on a status topic clears a retained
status (MQTT), and is not a message.

`Taps` (the `contract_tap` fixture, tests/conftest.py) subscribes to `#` (or a topic filter it is given) on each broker
a test uses, with a client of its own, and at teardown fails the test naming the first message that breaks the
contract. A test that publishes invalid messages on purpose excuses them (`contract_tap.excuse(topic, payload)`).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion

from keng.adapters.mqtt.asyncapi import asyncapi_document
from keng.adapters.mqtt.broker import BrokerAddress

DOCS_COPY = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.json"
ANY_ROOT = r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+){0,4}"
SEGMENT = r"[^/#+]+"


@dataclass(frozen=True)
class Channel:
    name: str
    pattern: re.Pattern[str]
    discriminator: str | None
    internal: bool
    messages: dict[str, list[str]]  # discriminator value -> message names (components/messages)


class Contract:
    """The document's channels and message schemas, ready to check messages; `root=None` accepts any topic root."""

    def __init__(self, document: dict[str, Any] | None = None, root: str | None = None) -> None:
        self.document = document or asyncapi_document()
        components = self.document["components"]
        self.messages: dict[str, Any] = components["messages"]
        code = re.compile(components["schemas"]["EndpointCode"]["pattern"])
        self.param_checks: dict[str, Any] = {"endpoint": code.match, "area": code.match}
        self.channels: list[Channel] = []
        for name, channel in self.document["channels"].items():
            self.channels.append(self._channel(name, channel, root))
        # The internal channels first: `<root>/ack/~x` is a barrier marker, not the ack of an endpoint `~x`.
        self.channels.sort(key=lambda c: not c.internal)
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    def _channel(self, name: str, channel: dict[str, Any], root: str | None) -> Channel:
        params = {k: self._resolve(v) for k, v in channel.get("parameters", {}).items()}

        def group(m: re.Match[str]) -> str:
            param = m.group(1)
            if param == "root":
                return f"(?P<root>{re.escape(root) if root else ANY_ROOT})"
            choices = params.get(param, {}).get("enum")
            body = "|".join(re.escape(c) for c in choices) if choices else SEGMENT
            return f"(?P<{param}>{body})"

        address = re.sub(r"\\\{(\w+)\\\}", group, re.escape(channel["address"]))
        disc = channel.get("x-keng-discriminator")
        by_value: dict[str, list[str]] = {}
        for ref in channel["messages"].values():
            message_name = ref["$ref"].rsplit("/", 1)[1]
            schema = self._resolve(self.messages[message_name]["payload"])
            value = schema.get("properties", {}).get(disc, {}).get("const") if disc else ""
            by_value.setdefault(str(value), []).append(message_name)
        return Channel(name, re.compile(f"^{address}$"), disc, bool(channel.get("x-keng-internal")), by_value)

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def validator(self, message_name: str) -> jsonschema.protocols.Validator:
        """The validator of one message's payload (components/messages/<name>)."""
        if message_name not in self._validators:
            payload = self.messages[message_name]["payload"]
            schema = {**payload, "components": self.document["components"]}
            self._validators[message_name] = jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
        return self._validators[message_name]

    def match(self, topic: str) -> tuple[Channel, dict[str, str]] | None:
        """The channel of a topic and its parameter values, or None."""
        for channel in self.channels:
            m = channel.pattern.match(topic)
            if m is None:
                continue
            values = m.groupdict()
            if all(self.param_checks.get(k, lambda _: True)(v) for k, v in values.items()):
                return channel, values
        return None

    def check(self, topic: str, payload: bytes) -> str | None:
        """None when (topic, payload) follows the contract or is keng-internal; else what is wrong."""
        found = self.match(topic)
        if found is None:
            return "no channel of the document has this topic"
        channel, params = found
        if channel.internal:
            return None
        if not payload and channel.name == "status":
            return None  # clears a retained status
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            return f"not JSON ({e})"
        if not isinstance(message, dict):
            return "not a JSON object"
        value = message.get(channel.discriminator) if channel.discriminator else ""
        names = channel.messages.get(value) if isinstance(value, str) else None
        if not names:
            return f"channel {channel.name} has no message with {channel.discriminator} = {value!r}"
        if "endpoint" in params and "endpoint" in message and message["endpoint"] != params["endpoint"]:
            return f"endpoint {message['endpoint']!r} is not the topic's {params['endpoint']!r}"
        first_error = ""
        for name in names:
            cls = self.messages[name].get("x-keng-class")
            if cls and "class" in params and params["class"] != cls:
                first_error = first_error or f"message {name} is for {cls}s, sent on a {params['class']} topic"
                continue
            error = jsonschema.exceptions.best_match(self.validator(name).iter_errors(message))
            if error is None:
                return None
            where = "/".join(str(p) for p in error.absolute_path) or "(payload)"
            first_error = first_error or f"message {name}: at {where}: {error.message}"
        return first_error


@cache
def contract() -> Contract:
    """The document as shipped, any topic root."""
    return Contract()


@dataclass
class Tap:
    """A client of its own subscribed to `#` on one broker, recording (topic, payload) of every message it sees."""

    address: BrokerAddress
    topic: str = "#"
    seen: list[tuple[str, bytes]] = field(default_factory=list)
    subscribed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"keng-contract-tap-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
        )
        if self.address.username:
            self.client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self.client.tls_set(
                ca_certs=str(self.address.ca_file) if self.address.ca_file else None,
                certfile=str(self.address.cert_file) if self.address.cert_file else None,
                keyfile=str(self.address.key_file) if self.address.key_file else None,
            )
        self.client.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]  # seconds: paho takes a float
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)  # again after a broker restart: the session is clean

    def _on_subscribe(self, *_: Any) -> None:
        self.subscribed.set()

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        if message.topic.startswith("$"):
            return  # the broker's own topics (MQTT 4.7.2; NATS server 2.9 lets `#` match its `$JS/...` API)
        self.seen.append((message.topic, bytes(message.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Taps:
    """The taps of one test and the messages it excused; `check()` fails the test on the first invalid message."""

    def __init__(self) -> None:
        self.taps: list[Tap] = []
        self.excused: set[tuple[str, bytes]] = set()

    def attach(self, address: BrokerAddress, timeout_s: float = 10.0, topic: str = "#") -> Tap:
        """Tap a broker in another thread or process (mosquitto), once the subscription (`topic`) is in place."""
        tap = self._tap(address, topic)
        if not tap.subscribed.wait(timeout_s):
            raise RuntimeError(f"the contract tap could not subscribe at {address.display}")
        return tap

    async def attach_async(self, address: BrokerAddress, timeout_s: float = 10.0, topic: str = "#") -> Tap:
        """Tap a broker that runs in this event loop (the embedded one), or one that must not be kept waiting: wait
        without blocking the loop."""
        tap = self._tap(address, topic)
        deadline = time.monotonic() + timeout_s
        while not tap.subscribed.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the contract tap could not subscribe at {address.display}")
            await asyncio.sleep(0.02)
        return tap

    def _tap(self, address: BrokerAddress, topic: str = "#") -> Tap:
        tap = Tap(address, topic)
        self.taps.append(tap)
        return tap

    def excuse(self, topic: str, payload: bytes) -> None:
        """A message the test publishes on purpose although it breaks the contract."""
        self.excused.add((topic, payload))

    @property
    def seen(self) -> list[tuple[str, bytes]]:
        return [m for tap in self.taps for m in tap.seen]

    def close(self) -> None:
        for tap in self.taps:
            tap.close()

    def problems(self) -> list[tuple[str, bytes, str]]:
        """Every distinct message seen that breaks the contract (excused ones aside), in the order seen."""
        found, done = [], set(self.excused)
        for topic, payload in self.seen:
            if (topic, payload) in done:
                continue
            done.add((topic, payload))
            error = contract().check(topic, payload)
            if error is not None:
                found.append((topic, payload, error))
        return found

    def check(self) -> None:
        """Fail the running test when a message broke the contract."""
        problems = self.problems()
        if problems:
            topic, payload, error = problems[0]
            kinds = Counter(e for _, _, e in problems).most_common(5)
            pytest.fail(
                f"{len(problems)} MQTT message(s) of {len(self.seen)} seen break docs/asyncapi.json; the first, on "
                f"{topic}: {error}\npayload: {payload[:600]!r}\nby problem: "
                + "; ".join(f"{n} x {e}" for e, n in kinds),
                pytrace=False,
            )
