"""One broker, several keng processes and installations: dispatchers of their own processes never take each other's
client id (so never disconnect each other), and installations under different topic roots (KENG_TOPIC_ROOT) never
see each other's commands, acks or statuses, even with the same endpoint codes (both are the sample district)."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.topics import Topics
from keng.adapters.mqtt.wire import WireLink
from keng.domain.dispatch import Dispatch
from tests.integration.conftest import Mosquitto, no_broker
from tests.integration.harness import Harness
from tests.keng_process import KENG, KengHome, keng_home

pytestmark = pytest.mark.mqtt
CONNECTED = re.compile(r"New client connected from \S+ as (\S+) \(")


class Processes:
    """Long-running `keng` commands of a test, each logging to a file; all stopped (SIGTERM) at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, home: KengHome, *argv: str, ready: str, env: dict[str, str] | None = None) -> Path:
        log = self.folder / f"proc-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*KENG, *argv], env=env or home.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        deadline = time.monotonic() + 60
        while ready not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        return log

    def running(self) -> bool:
        return all(proc.poll() is None for proc, _ in self.procs)

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop()


@pytest.fixture
def logged_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto that logs every connection (to `.log`)."""
    if shutil.which("mosquitto") is None:
        no_broker("the mosquitto binary is not installed (apt-get install mosquitto)")
    broker = Mosquitto(tmp_path, log=tmp_path / "mosquitto.log")
    broker.start()
    yield broker
    broker.stop()


def test_two_dispatcher_processes_on_one_broker_never_evict_each_other(
    tmp_path: Path, logged_mosquitto: Mosquitto, processes: Processes
) -> None:
    url = f"mqtt://127.0.0.1:{logged_mosquitto.port}"
    for name in ("one", "two"):
        home = keng_home(tmp_path / name)
        home.run("init")
        processes.start(home, "dispatch", "run", "--broker", url, ready="Sẵn sàng phát")
    time.sleep(5)  # with one client id between them, each would knock the other off within a second, again and again
    assert processes.running()
    assert logged_mosquitto.log is not None
    log = logged_mosquitto.log.read_text(errors="replace")
    connects = Counter(m[1] for m in CONNECTED.finditer(log) if m[1].startswith("keng-dispatcher-"))
    assert len(connects) == 4, log  # two processes, each with its command link and its intake
    assert set(connects.values()) == {1}, connects
    assert "already connected, closing old connection" not in log
    outbound = sorted(c for c in connects if not c.endswith("-intake"))
    assert len(outbound) == 2 and all(f"{c}-intake" in connects for c in outbound)


async def test_two_installations_with_different_topic_roots_never_see_each_others_traffic(
    tmp_path: Path, mosquitto: Mosquitto, processes: Processes
) -> None:
    """Installation A runs as a user runs it (`keng dispatch run` under KENG_TOPIC_ROOT, `keng simulate --topic-root`),
    installation B in this process (a dispatcher and a fleet under the default root); a listener on `#` sees all."""
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    seen: list[tuple[str, bytes]] = []
    spy = WireLink(mosquitto.address, client_id="test-spy", subscriptions=("#",), subscribe_qos=0)
    spy.on_message = lambda topic, payload: seen.append((topic, payload))
    spy.start()
    await asyncio.wait_for(spy.connected.wait(), 10)

    a_root = "site-a/keng"
    a = keng_home(tmp_path / "a", KENG_MQTT=url, KENG_TOPIC_ROOT=a_root)
    a.run("init", "--sample")
    dispatch_log = processes.start(a, "dispatch", "run", "--slots", "00:00-24:00", "--settle", "2", ready="Sẵn sàng")
    fleet_env = {k: v for k, v in a.env.items() if k != "KENG_TOPIC_ROOT"}  # the fleet's root comes from its option
    processes.start(a, "simulate", "--topic-root", a_root, "--play-scale", "0.001", ready="ready ", env=fleet_env)

    (tmp_path / "b").mkdir()
    b = Harness(tmp_path / "b", mosquitto.address)
    try:
        b_fleet = await b.start_fleet(play_scale=0.001)  # the default root, keng/v1: the same codes as A's fleet
        b_dispatcher = await b.start_dispatcher(settle_s=2.0)
        assert b_dispatcher.topics == Topics()

        def a_cli(*argv: str) -> str:
            return a.run(*argv).stdout.strip()

        # A's sample is today's: 00598 (Thượng Cát since 2025-07-01) holds B's ward 00595's groups, and more.
        a_bid = a_cli("broadcast", "draft", "--as", "lan.nguyen", "--title", "A", "--text", "Thử A", "--priority",
                      "emergency", "--area", "00598")  # fmt: skip
        a_cli("broadcast", "submit", a_bid, "--as", "lan.nguyen")
        a_cli("broadcast", "approve", a_bid, "--as", "hung.tran")
        b_bid = b.broadcast("emergency")
        await b.until(lambda: b.closed(b_bid), timeout=60)
        b_dispatch = b.dispatch_of(b_bid)
        assert b_dispatch is not None and b_dispatch.summary["played"] == len(b_fleet.devices) > 0

        def a_played() -> set[str]:
            codes = set()
            for topic, payload in list(seen):
                if topic.startswith(f"{a_root}/ack/") and (b'"played"' in payload or b'"displayed"' in payload):
                    codes.add(proto.decode(payload)["endpoint"])
            return codes

        await b.until(lambda: a_played() >= set(b_fleet.devices), timeout=60)  # A's devices of the ward played A's
        b_opened = [str(e.originator_id) for e in b.events(Dispatch.Opened)]
        # the two fleets share endpoint codes but not client ids: no device of B was knocked off by its namesake in A
        reconnected = [c for c, d in b_fleet.devices.items() if d.link is None or d.link.connects != 1]
    finally:
        await b.close()
        await spy.close()
    a_topics, b_topics = Topics(a_root), Topics()
    a_dispatches, b_dispatches = set(), set()
    for topic, payload in seen:
        assert topic.startswith((f"{a_root}/", "keng/v1/")), topic
        message = proto.decode(payload) if payload else {}
        if not isinstance(message, dict) or "dispatch" not in message:
            continue
        (a_dispatches if topic.startswith(f"{a_root}/") else b_dispatches).add(message["dispatch"])
    assert len(a_dispatches) == 1 and len(b_dispatches) == 1 and a_dispatches.isdisjoint(b_dispatches)
    (b_dispatch_id,) = b_dispatches
    # B's devices played B's alert once and never A's; B's store never heard of A's dispatch or A's devices' acks.
    assert all(dict(device.plays) == {b_dispatch_id: 1} for device in b_fleet.devices.values())
    assert all(a_topics.parse_ack(t) is None for t, _ in seen if b_topics.parse_ack(t) is not None)
    assert not b_dispatcher.intake.refused, b_dispatcher.intake.refused
    assert b_opened == [b_dispatch_id]
    assert reconnected == []
    assert "acks.refused" not in dispatch_log.read_text(errors="replace")
