"""A real broker cluster for tests: three NATS servers with MQTT over clustered JetStream, on free ports (below the
kernel's ephemeral range: `listen_port`).

Each node has a client port, a cluster (route) port, an MQTT port, an HTTP monitoring port and a store directory of
its own; every node lists the routes of all three (a route to itself is ignored). The MQTT streams are made with three
replicas (`stream_replicas`: NATS would otherwise size them from the routes it counts), and the JetStream consumers of
QoS 1 subscriptions keep their state in memory (`consumer_memory_storage`, still replicated on three nodes: keng's
devices use clean sessions, whose consumers live only as long as the connection). `start()` returns once the routes
are up on every node, JetStream has a meta leader and is current on every node, and an MQTT message published on each
node has reached a subscriber on another, which also makes the MQTT streams. `kill(i)` (SIGKILL) or `stop(i)`
(SIGTERM) takes a node down, `restart(i)` brings it back on the same ports and store, and waits until it has caught
up and serves MQTT again.

The configuration written here is the one docs/broker.md shows ("Broker clusters"). The binary is `nats-server` on
PATH or in /usr/sbin (Debian's package), or KENG_TEST_NATS_SERVER.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keng.adapters.mqtt.broker import BrokerAddress, free_port
from keng.adapters.mqtt.wire import WireLink

CLUSTER_NAME = "keng-test"
NODE_CONF = """# keng test cluster, node {name}
server_name: {name}
listen: 127.0.0.1:{client}
http: 127.0.0.1:{http}

jetstream {{
  store_dir: "{store}"
  max_memory_store: 256MB
  max_file_store: 2GB
}}

cluster {{
  name: {cluster}
  listen: 127.0.0.1:{route}
  routes: [
{routes}
  ]
}}

mqtt {{
  host: 127.0.0.1
  port: {mqtt}
  stream_replicas: {replicas}
{mqtt_extra}}}
"""


def nats_server_binary() -> str | None:
    """Where nats-server is: KENG_TEST_NATS_SERVER, PATH, or the sbin folders Debian installs it in."""
    configured = os.environ.get("KENG_TEST_NATS_SERVER")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/local/sbin:/sbin")


def listen_port() -> int:
    """A free port below the kernel's ephemeral range, which no outgoing connection can take as its own port while a
    node is down (a restarted node must get its ports back: its peers' routes and the clients' URLs name them); one
    from `free_port` where the range leaves no room below it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    rng = random.SystemRandom()
    for _ in range(100 if low > 12_000 else 0):
        port = rng.randrange(10_000, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


@dataclass
class NatsNode:
    """One server of the cluster: its ports, files and process."""

    name: str
    folder: Path
    client: int = field(default_factory=listen_port)
    route: int = field(default_factory=listen_port)
    mqtt: int = field(default_factory=listen_port)
    http: int = field(default_factory=listen_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.folder / "nats.conf"

    @property
    def log(self) -> Path:
        return self.folder / "nats.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def monitor(self, path: str) -> dict[str, Any]:
        """A monitoring endpoint's JSON (`/routez`, `/jsz` ...); raises when the node does not answer."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=2) as response:
            body = json.loads(response.read())
        assert isinstance(body, dict)
        return body


class NatsCluster:
    """Three (or `size`) NATS servers clustered with JetStream and MQTT; `address(i)` is the cluster's address listing
    node i first (MQTT 3.1.1: NATS speaks no MQTT 5). `excuse` is told every message its readiness probes publish,
    so that a contract tap on the cluster (tests/contract.py) does not count them."""

    def __init__(
        self,
        workdir: Path,
        binary: str,
        size: int = 3,
        excuse: Callable[[str, bytes], None] | None = None,
        consumer_memory: bool = True,
    ) -> None:
        self.binary = binary
        self.excuse = excuse
        self.workdir, self.size, self.consumer_memory = workdir, size, consumer_memory
        self.nodes: list[NatsNode] = []
        self._configure()

    def _configure(self) -> None:
        """Free ports for every node, and its configuration file."""
        self.nodes = [NatsNode(f"n{i + 1}", self.workdir / f"n{i + 1}") for i in range(self.size)]
        routes = ",\n".join(f"    nats-route://127.0.0.1:{n.route}" for n in self.nodes)
        for node in self.nodes:
            node.folder.mkdir(parents=True, exist_ok=True)
            node.conf.write_text(
                NODE_CONF.format(
                    name=node.name,
                    client=node.client,
                    http=node.http,
                    store=node.folder / "jetstream",
                    cluster=CLUSTER_NAME,
                    route=node.route,
                    routes=routes,
                    mqtt=node.mqtt,
                    replicas=min(3, self.size),
                    mqtt_extra="  consumer_memory_storage: true\n" if self.consumer_memory else "",
                )
            )

    def address(self, first: int = 0) -> BrokerAddress:
        """Every node's MQTT listener, node `first` first: what KENG_MQTT lists for a client that prefers it."""
        head, *rest = self.nodes
        others = tuple(("127.0.0.1", n.mqtt) for n in rest)
        return BrokerAddress("127.0.0.1", head.mqtt, mqtt5=False, others=others).rotated(first)

    def node_address(self, i: int) -> BrokerAddress:
        """Node i alone."""
        return BrokerAddress("127.0.0.1", self.nodes[i].mqtt, mqtt5=False)

    # -- processes -----------------------------------------------------------------------------------------------

    def _spawn(self, node: NatsNode) -> None:
        with node.log.open("ab") as out:
            node.proc = subprocess.Popen(
                [self.binary, "-c", str(node.conf)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    async def start(self, timeout_s: float = 60.0, attempts: int = 3) -> None:
        """Start every node and wait until the cluster serves MQTT on each. A port taken between `free_port` and the
        node's bind (by then an outgoing connection's, such as another node's first route dial, can hold it) starts
        the whole cluster again on other ports."""
        for attempt in range(1, attempts + 1):
            for node in self.nodes:
                self._spawn(node)
            try:
                await self.wait_ready(timeout_s)
                return
            except RuntimeError:
                if attempt == attempts or not any(_lost_its_port(node) for node in self.nodes):
                    raise
            self.close()
            for node in self.nodes:  # its log, and a JetStream store that knows peers of the cluster given up
                shutil.rmtree(node.folder, ignore_errors=True)
            self._configure()

    async def kill(self, i: int) -> None:
        """SIGKILL node i (no goodbye to its clients, no last wills sent) and wait for it to be gone."""
        await self._end(self.nodes[i], signal.SIGKILL)

    async def stop(self, i: int) -> None:
        """Stop node i cleanly (SIGTERM)."""
        await self._end(self.nodes[i], signal.SIGTERM)

    async def restart(self, i: int, timeout_s: float = 120.0) -> None:
        """Start node i again (same ports and store) and wait until it has caught up (hundreds of replicated consumers,
        on a busy 2-core machine: up to a minute) and the whole cluster serves MQTT again."""
        node = self.nodes[i]
        if node.running:
            await self.stop(i)
        self._spawn(node)
        await self.wait_ready(timeout_s)

    async def _end(self, node: NatsNode, sig: signal.Signals) -> None:
        proc = node.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), 15)
        except TimeoutError:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        node.proc = None

    def close(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 10 s)."""
        for node in self.nodes:
            if node.running:
                assert node.proc is not None
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(10)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
            node.proc = None

    # -- readiness -----------------------------------------------------------------------------------------------

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until every running node routes to the others, JetStream has a meta leader, every node says it is healthy
        (`/healthz`: its JetStream streams and consumers are current, which a restarted node takes a while to catch
        up on), and MQTT messages go from each running node to a subscriber on another."""
        deadline = time.monotonic() + timeout_s
        up = [n for n in self.nodes if n.running]
        while True:
            problem = await asyncio.to_thread(self._cluster_problem, up)
            if problem is None:
                break
            if time.monotonic() > deadline or any(not n.running for n in up):  # an exited node does not come back
                raise RuntimeError(f"the NATS cluster did not form within {timeout_s:.0f} s: {problem}\n{self.tails()}")
            await asyncio.sleep(0.2)
        for k, node in enumerate(up):
            other = up[(k + 1) % len(up)]
            remaining = max(1.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(self._round_trip(node, other), remaining)
            except TimeoutError:
                raise RuntimeError(
                    f"no MQTT message went from {node.name} to {other.name} within {timeout_s:.0f} s\n{self.tails()}"
                ) from None

    def _cluster_problem(self, up: list[NatsNode]) -> str | None:
        for node in up:
            if not node.running:
                return f"{node.name} exited"
            try:
                routes = node.monitor("/routez")
                jsz = node.monitor("/jsz")
            except OSError as e:
                return f"{node.name} does not answer on its monitoring port ({e})"
            if routes.get("num_routes", 0) < len(up) - 1:
                return f"{node.name} has {routes.get('num_routes', 0)} routes of {len(up) - 1}"
            meta = jsz.get("meta_cluster") or {}
            if not meta.get("leader"):
                return f"{node.name} knows no JetStream meta leader yet"
            try:
                health = node.monitor("/healthz")
            except urllib.error.HTTPError as e:  # 503 until its JetStream streams and consumers are current
                return f"{node.name} is not healthy yet: {e.read()[:300].decode(errors='replace')}"
            except OSError as e:
                return f"{node.name} does not answer on its monitoring port ({e})"
            if health.get("status") != "ok":
                return f"{node.name} is not healthy yet: {health}"
        return None

    async def _round_trip(self, sender: NatsNode, receiver: NatsNode) -> None:
        """Publish at QoS 1 on `sender`, until a QoS 1 subscriber on `receiver` has it (the first connections also make
        the MQTT streams; a node still catching up refuses them, and the links retry)."""
        tag = uuid.uuid4().hex[:8]
        topic = f"keng-test/probe/{tag}"
        got = asyncio.Event()
        sub = WireLink(
            BrokerAddress("127.0.0.1", receiver.mqtt, mqtt5=False),
            client_id=f"probe-sub-{tag}",
            subscriptions=(topic,),
            on_message=lambda _t, _p: got.set(),
            max_backoff_s=1.0,
        )
        pub = WireLink(BrokerAddress("127.0.0.1", sender.mqtt, mqtt5=False), client_id=f"probe-pub-{tag}")
        sub.start()
        pub.start()
        try:
            await sub.connected.wait()
            n = 0
            while not got.is_set():
                n += 1
                payload = f"probe {n}".encode()
                if self.excuse is not None:
                    self.excuse(topic, payload)
                await pub.publish(topic, payload)
                try:
                    await asyncio.wait_for(got.wait(), 1.0)
                except TimeoutError:
                    continue
        finally:
            await pub.close()
            await sub.close()

    def tails(self, lines: int = 15) -> str:
        """The last lines of every node's log (for a failure message)."""
        out = []
        for node in self.nodes:
            text = node.log.read_text(errors="replace").splitlines()[-lines:] if node.log.exists() else []
            out.append(f"--- {node.name} ({'up' if node.running else 'down'}) ---\n" + "\n".join(text))
        return "\n".join(out)


def _lost_its_port(node: NatsNode) -> bool:
    """Whether the node exited because one of its ports was taken."""
    if node.running or not node.log.exists():
        return False
    return "address already in use" in node.log.read_text(errors="replace")
