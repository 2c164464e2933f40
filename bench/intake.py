"""Benchmark: how fast one connection reads device acks off the broker (the dispatcher's intake), by MQTT client.

python bench/intake.py [--acks 30000] [--senders 2] [--broker mosquitto|mqtt://...] [--json]

For each reader, a fresh flood of `--acks` ack messages (the size and topics of a 10,000-device dispatch) is published
as fast as possible by `--senders` separate processes (20 device connections each, QoS 1), while one subscriber in
this process reads them all (`<root>/ack/+`, the root of KENG_TOPIC_ROOT; QoS 1). Reported per reader: messages/s
from its first to its last message, and the CPU it spent per message. Readers:
- `aiomqtt-v5`: aiomqtt (paho) on MQTT 5, how the dispatcher read acks until this benchmark (the baseline);
- `aiomqtt-v311`: aiomqtt on MQTT 3.1.1 (no property parsing per message);
- `wire`: adapters/mqtt/wire.py, the dispatcher's intake now.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_topics, report, start_broker
from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.broker import BrokerAddress, parse_broker_url
from keng.adapters.mqtt.wire import WireLink

CONNECTIONS_PER_SENDER = 20


def code_of(i: int) -> str:
    return f"021-01-G{i // 20:04d}-S{i % 20:02d}"


async def flood(address: BrokerAddress, first: int, count: int, stride: int) -> None:
    """One sender process: acks number first, first+stride, ... (count of them) over 20 device connections."""
    links = [WireLink(address, client_id=f"flood-{first}-{i}") for i in range(CONNECTIONS_PER_SENDER)]
    topics = bench_topics()
    for link in links:
        link.start()
    for link in links:
        await link.connected.wait()
    print("ready", flush=True)
    sys.stdin.readline()  # go
    dispatch = "5f0c1c9e-0000-4000-8000-000000000000"
    for n in range(count):
        i = first + n * stride
        ack = proto.ack_message(
            code=code_of(i), dispatch_id=dispatch, seq=1, state="received", at=datetime.now(UTC), sha256=None, reason=""
        )
        links[n % len(links)].send(topics.ack(code_of(i)), proto.encode(ack))
        if n % 200 == 199:
            await asyncio.sleep(0)  # let the transports drain
    while any(link._inflight for link in links):  # every PUBACK back: the broker has them all
        await asyncio.sleep(0.05)
    print("sent", flush=True)
    await asyncio.sleep(3600)


class Count:
    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0
        self.first_at = self.last_at = 0.0
        self.cpu0 = self.cpu1 = 0.0
        self.done = asyncio.Event()

    def __call__(self, topic: str, payload: bytes) -> None:
        if not self.seen:
            self.first_at, self.cpu0 = time.perf_counter(), time.process_time()
        self.seen += 1
        if self.seen == self.n:
            self.last_at, self.cpu1 = time.perf_counter(), time.process_time()
            self.done.set()

    def figures(self) -> dict[str, float]:
        seconds = self.last_at - self.first_at
        return {
            "msgs_per_s": round(self.n / seconds) if seconds else 0.0,
            "cpu_us_per_msg": round((self.cpu1 - self.cpu0) / self.n * 1e6, 1),
            "seconds": round(seconds, 2),
        }


async def read_aiomqtt(address: BrokerAddress, v5: bool, count: Count, subscribed: Callable[[], None]) -> None:
    version = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
    async with aiomqtt.Client(
        address.host, address.port, identifier="bench-intake", protocol=version, max_queued_incoming_messages=200_000
    ) as client:
        await client.subscribe(bench_topics().ack_subscription, qos=1)
        subscribed()
        async for message in client.messages:
            count(str(message.topic), bytes(message.payload))  # type: ignore[arg-type,unused-ignore]
            if count.done.is_set():
                return


async def read_wire(address: BrokerAddress, count: Count, subscribed: Callable[[], None]) -> None:
    subscriptions = (bench_topics().ack_subscription,)
    link = WireLink(address, client_id="bench-intake", subscriptions=subscriptions, on_message=count)
    link.start()
    await link.connected.wait()
    subscribed()
    await count.done.wait()
    await link.close()


async def one(address: BrokerAddress, reader: str, args: argparse.Namespace) -> dict[str, float]:
    count = Count(args.acks)
    ready = asyncio.Event()
    if reader == "wire":
        task = asyncio.create_task(read_wire(address, count, ready.set))
    else:
        task = asyncio.create_task(read_aiomqtt(address, reader == "aiomqtt-v5", count, ready.set))
    await asyncio.wait_for(ready.wait(), 30)
    url = f"mqtt://{address.host}:{address.port}"
    senders = [
        subprocess.Popen(
            [sys.executable, __file__, "--flood", url, str(i), str(args.senders), str(args.acks)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for i in range(args.senders)
    ]
    try:
        for s in senders:
            assert s.stdout is not None
            if s.stdout.readline().strip() != b"ready":
                raise RuntimeError("a sender did not connect")
        for s in senders:
            assert s.stdin is not None
            s.stdin.write(b"go\n")
            s.stdin.flush()
        await asyncio.wait_for(task, 120)
    finally:
        for s in senders:
            s.kill()
            s.wait()
    return count.figures()


async def main(args: argparse.Namespace) -> dict[str, object]:
    address, broker_proc = start_broker(args.broker)
    try:
        results = {reader: await one(address, reader, args) for reader in ("aiomqtt-v5", "aiomqtt-v311", "wire")}
    finally:
        if broker_proc:
            broker_proc.terminate()
            broker_proc.wait()
    base, wire = results["aiomqtt-v5"], results["wire"]
    out: dict[str, object] = {"benchmark": "intake", "broker": args.broker, "acks": args.acks, "senders": args.senders}
    for reader, figures in results.items():
        for key, value in figures.items():
            out[f"{reader.replace('-', '_')}_{key}"] = value
    out["ratio"] = round(wire["msgs_per_s"] / base["msgs_per_s"], 2) if base["msgs_per_s"] else None
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--flood":
        _, _, url, first, stride, total = sys.argv
        n = len(range(int(first), int(total), int(stride)))
        asyncio.run(flood(parse_broker_url(url + "?v=3"), int(first), n, int(stride)))
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--acks", type=int, default=30_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--broker", default="mosquitto", help="mosquitto (started here) or mqtt://...")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report(asyncio.run(main(args)), args.json)
