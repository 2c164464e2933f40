"""Shared set-up for the benchmarks: a generated district of N loudspeakers, brokers, the fleet, an ack observer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from keng.adapters import sample_district
from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.broker import BrokerAddress, free_port, parse_broker_url
from keng.adapters.mqtt.topics import Topics
from keng.adapters.mqtt.wire import WireLink
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.runtime.process import freeze_long_lived
from keng.services.access import SYSTEM, enrol_by_system
from keng.services.inventory import bootstrap_admin, load_rows

MOSQUITTO_CONF = (
    "listener {port} 127.0.0.1\nallow_anonymous true\n"
    "max_queued_messages 200000\nmax_inflight_messages 0\npersistence false\n"
)
PER_GROUP = 20


def district(n: int, url: str | None = None) -> tuple[str, Keng]:
    """A store with the 13 sample wards and `n` generated IP loudspeakers (20 per residential group): a new SQLite
    file, or the store at `url` (an empty PostgreSQL database, say)."""
    data = Path(tempfile.mkdtemp(prefix="keng-bench-")) if url is None else Path(tempfile.gettempdir())
    url = url or f"sqlite:///{data / 'keng.db'}"
    app = Keng(env=locate_store(url, data).env)
    bootstrap_admin(app)
    rows: list[dict[str, Any]] = [{"record": "district", "code": "021", "name": "Quận Bắc Từ Liêm"}]
    wards = sample_district.wards()
    rows += [{"record": "ward", "parent": "021", "code": w["code"], "name": w["name"]} for w in wards]
    for i in range(n):
        ward = wards[(i // PER_GROUP) % len(wards)]["code"]
        group = f"{ward}-G{i // PER_GROUP:04d}"
        if i % PER_GROUP == 0:
            rows.append({"record": "group", "parent": ward, "code": group, "name": f"Tổ {i // PER_GROUP}"})
        rows.append(
            {
                "record": "endpoint",
                "parent": group,
                "code": f"{group}-S{i % PER_GROUP:02d}",
                "kind": "ip-speaker",
                "technology": "ip-wired",
                "condition": "good",
            }
        )
    located = [(f"row {i}", {k: str(v) for k, v in r.items()}) for i, r in enumerate(rows)]
    load_rows(app, located, by=SYSTEM, generated=True)
    for m in sample_district.STAFF:
        if m["handle"] in ("lan.nguyen", "hung.tran"):
            enrol_by_system(app, **m)
    return url, app


def cli(*args: str, **kw: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KENG_LOG_LEVEL": os.environ.get("KENG_BENCH_LOG_LEVEL", "warning"), "KENG_LOG_FORMAT": "json"}
    return subprocess.Popen([sys.executable, "-m", "keng.runtime.cli", *args], env=env, **kw)


def wait_line(proc: subprocess.Popen[bytes], word: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if word in line:
            return line.strip()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before printing {word!r}")
    raise RuntimeError(f"no {word!r} within {timeout} s")


def bench_topics() -> Topics:
    """The topics of the installation the benchmark plays (KENG_TOPIC_ROOT, as the `keng` processes it starts read it
    from the environment they inherit)."""
    from keng.runtime.config import load_settings

    return Topics(load_settings().topic_root)


def tls_files() -> Path:
    """A folder with a CA (ca.pem) and a server certificate for localhost and 127.0.0.1 (server.pem, server.key) made
    by keng (adapters/mqtt/certs.py), readable by user `mosquitto` (mosquitto started as root reads them as that)."""
    from keng.adapters.mqtt.certs import make_ca, make_server_cert

    folder = Path(tempfile.mkdtemp(prefix="keng-bench-tls-"))
    folder.chmod(0o755)
    ca = make_ca("keng bench CA")
    ca.write(folder / "ca.pem", folder / "ca.key")
    make_server_cert(ca, ["localhost", "127.0.0.1"]).write(folder / "server.pem", folder / "server.key")
    (folder / "server.key").chmod(0o644)  # a benchmark's throwaway key
    return folder


def start_broker(spec: str, *, tls: bool = False) -> tuple[BrokerAddress, subprocess.Popen[bytes] | None]:
    """`mosquitto` (own process, free port; with `tls`, its one listener speaks TLS with a certificate made here, and
    the address verifies it), `embedded` (amqtt in its own process) or a URL."""
    if spec not in ("mosquitto", "embedded"):
        return parse_broker_url(spec), None
    port = free_port()
    if spec == "mosquitto":
        conf = Path(tempfile.mkdtemp()) / "mosquitto.conf"
        text = MOSQUITTO_CONF.format(port=port)
        address = BrokerAddress("127.0.0.1", port)
        if tls:
            files = tls_files()
            text += f"certfile {files / 'server.pem'}\nkeyfile {files / 'server.key'}\n"
            address = parse_broker_url(f"mqtts://127.0.0.1:{port}?ca={files / 'ca.pem'}")
        conf.write_text(text)
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    else:
        if tls:
            raise SystemExit("--tls needs --broker mosquitto: the embedded broker speaks plain MQTT only")
        code = (
            "import asyncio\nfrom keng.adapters.mqtt.broker import EmbeddedBroker\n"
            f"async def m():\n    await EmbeddedBroker(port={port}).start()\n    await asyncio.Event().wait()\n"
            "asyncio.run(m())"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
        address = BrokerAddress("127.0.0.1", port, mqtt5=False)
    time.sleep(1.0)
    return address, proc


class Observer:
    """Collects `received` acks (device time) per dispatch id. It reads every ack of the fleet on the same 2 cores as
    what it measures, so it stays light: the fleet's client, QoS 0 (no PUBACK per ack for the broker to handle), and
    only `received` acks decoded."""

    def __init__(self, broker: BrokerAddress, topics: Topics | None = None) -> None:
        self.received: dict[str, dict[str, datetime]] = defaultdict(dict)
        self.topics = topics or bench_topics()
        self.link = WireLink(
            broker,
            client_id="bench-observer",
            subscriptions=(self.topics.ack_subscription,),
            on_message=self._on,
            subscribe_qos=0,
        )

    async def start(self) -> None:
        """Connect; then keep the set-up's objects out of full collections, which would pause the timing."""
        self.link.start()
        await self.link.connected.wait()
        freeze_long_lived()

    def _on(self, topic: str, payload: bytes) -> None:
        if b'"received"' not in payload or self.topics.is_barrier_topic(topic):
            return  # a later state, or the dispatcher's ack barrier
        msg = proto.decode(payload)
        if msg.get("state") == "received":
            self.received[msg["dispatch"]].setdefault(msg["endpoint"], datetime.fromisoformat(msg["at"]))

    async def wait(self, dispatch: str, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received[dispatch]) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


async def wait_online(app: Keng, n: int, timeout: float = 300) -> float:
    """Wait until the dispatcher has recorded `n` endpoints online (the fleet's retained statuses), so that a
    benchmark measures a dispatch in steady state, not the dispatcher's start-up intake. Returns seconds waited."""
    from keng.domain.endpoint import Endpoint

    t0, position, online = time.monotonic(), 0, 0
    while online < n and time.monotonic() - t0 < timeout:
        for at, event in app.read_events(position):
            online += isinstance(event, Endpoint.CameOnline)
            position = at
        await asyncio.sleep(0.2)
    return round(time.monotonic() - t0, 2)


def drain(proc: subprocess.Popen[bytes]) -> None:
    """Keep reading a child's stdout in a thread, so that a full pipe never blocks it."""
    import threading

    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: stream.read(), daemon=True).start()


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def report(result: dict[str, Any], as_json: bool) -> None:
    """Print a benchmark's figures as a table, then (with --json) as one JSON object, last."""
    width = max(len(k) for k in result) + 2
    for key, value in result.items():
        print(f"{key:<{width}} {value}")
    if as_json:
        print(orjson.dumps(result).decode())


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latencies_ms(received: dict[str, datetime], t0: datetime) -> list[float]:
    return sorted(max(0.0, (at - t0).total_seconds() * 1000) for at in received.values())


async def stop_all(
    link: Any, processes: tuple[subprocess.Popen[bytes], ...], broker: subprocess.Popen[bytes] | None
) -> None:
    """End a benchmark run: SIGTERM the dispatcher and fleet, close the observer's link, stop the broker."""
    for proc in processes:
        proc.send_signal(signal.SIGTERM)
    await link.close()
    for proc in processes:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            if os.environ.get("KENG_BENCH_DUMP_HUNG"):
                subprocess.run([os.environ["KENG_BENCH_DUMP_HUNG"], "dump", "--pid", str(proc.pid)], check=False)
            print(f"process {proc.pid} ignored SIGTERM for 30 s; killed", file=sys.stderr)
            proc.kill()
            proc.wait()
    if broker:
        broker.terminate()
