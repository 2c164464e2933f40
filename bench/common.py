"""Shared set-up for the benchmarks: a generated district of N loudspeakers, fresh stores, brokers, the fleet, an ack
observer, and signed city-source webhooks open-loop from a separate process."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
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
from keng.adapters.store.config import connect_kwargs, locate_store
from keng.runtime.process import freeze_long_lived
from keng.services.access import SYSTEM, enrol_by_system
from keng.services.inventory import bootstrap_admin, load_rows

MOSQUITTO_CONF = (
    "listener {port} 127.0.0.1\nallow_anonymous true\n"
    "max_queued_messages 200000\nmax_inflight_messages 0\npersistence false\n"
)
PER_GROUP = 20


def _wards(wards: int | None) -> list[dict[str, str]]:
    """The 13 sample wards, or `wards` generated ones (`W000`, `W001` ...)."""
    if wards is None:
        return sample_district.wards()
    return [{"code": f"W{i:03d}", "name": f"Phường {i + 1}"} for i in range(wards)]


def district(n: int, url: str | None = None, data: Path | None = None, *, wards: int | None = None) -> tuple[str, Keng]:
    """A store with the 13 sample wards (or `wards` generated ones, `W000`, `W001` ...) and `n` generated IP
    loudspeakers (20 per residential group, the groups spread over the wards in turn): an SQLite file in `data`
    (default: a new temporary directory), or the empty store at `url`."""
    data = data or Path(tempfile.mkdtemp(prefix="keng-bench-"))
    url = url or f"sqlite:///{data / 'keng.db'}"
    app = Keng(env=locate_store(url, data).env)
    bootstrap_admin(app)
    rows: list[dict[str, Any]] = [{"record": "district", "code": "021", "name": "Quận Bắc Từ Liêm"}]
    units = _wards(wards)
    rows += [{"record": "ward", "parent": "021", "code": w["code"], "name": w["name"]} for w in units]
    for i in range(n):
        ward = units[(i // PER_GROUP) % len(units)]["code"]
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


def district_wards(n: int, wards: int | None = None) -> list[str]:
    """The codes of the wards that hold `district(n, wards=wards)`'s loudspeakers."""
    units = _wards(wards)
    return sorted({units[g % len(units)]["code"] for g in range((n + PER_GROUP - 1) // PER_GROUP)})


@contextlib.contextmanager
def fresh(store: str | None, data: Path) -> Iterator[str]:
    """An empty store for one run: an SQLite file in `data`, or a new schema on the PostgreSQL server of `store`
    (dropped afterwards)."""
    if store is None:
        yield f"sqlite:///{data / 'keng.db'}"
        return
    import psycopg

    params, schema = connect_kwargs(locate_store(store, data)), f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield store.split("?")[0] + f"?schema={schema}"
    finally:
        with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


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


# -- signed city-source webhooks, open loop (bench/ingest.py, bench/soak.py, bench/capacity.py) --------------------

ROOT = Path(__file__).resolve().parent.parent
KENG = [sys.executable, "-m", "keng.runtime.cli"]

HOOK_PATH = "/api/v1/hooks/city-source"
HOOK_AREA = "00598"  # a ward of the sample district (`keng init --sample`)
HOOK_TEXT = "Trạm y tế phường tổ chức tiêm chủng mở rộng vào sáng thứ Bảy, đề nghị phụ huynh đưa trẻ đến đúng giờ."


def hook_body(prefix: str, i: int, distinct: bool, area: str = HOOK_AREA) -> bytes:
    """The webhook body of request `i`, a normal bulletin to `area`: the same bulletin each time, or (`distinct`) one
    of its own, so that each broadcast needs a render of its own."""
    text = f"Bản tin số {i} ({prefix}): {HOOK_TEXT}" if distinct else HOOK_TEXT
    return orjson.dumps(
        {"title": "Thông báo lịch tiêm chủng", "text": text, "priority": "normal", "targets": {"areas": [area]}}
    )


def hook_request(secret: str | None, message_id: str, timestamp: int, body: bytes) -> bytes:
    """One whole HTTP/1.1 request for the city-source webhook, signed (standard-webhooks headers) unless `secret` is
    None (the bare baseline)."""
    from keng.adapters.signing import sign

    headers = f"POST {HOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if secret:
        headers += f"webhook-id: {message_id}\r\nwebhook-timestamp: {timestamp}\r\n"
        headers += f"webhook-signature: {sign(secret, message_id, timestamp, body)}\r\n"
    return (headers + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


free_tcp_port = free_port  # a free TCP port on the loopback interface


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def keng_env(data: Path | str, store: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of the `keng` processes a benchmark starts: its data directory (and store), warnings only as
    JSON, keng as this checkout has it (ahead of any installed copy), an embedded broker (where one starts) on a free
    port."""
    env = {
        **os.environ,
        "KENG_DATA": str(data),
        "KENG_LOG_LEVEL": os.environ.get("KENG_BENCH_LOG_LEVEL", "warning"),
        "KENG_LOG_FORMAT": "json",
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p),
        "KENG_BROKER_LISTEN": "127.0.0.1:0",
        **extra,
    }
    if store:
        env["KENG_STORE"] = store
    return env


def add_city_source(env: dict[str, str], jurisdiction: str) -> str:
    """`keng integration add city-source`: its signing secret."""
    return subprocess.run(
        [*KENG, "integration", "add", "city-source", "--jurisdiction", jurisdiction],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[0]


def _pct(values: list[float], p: float) -> float:
    """The p-quantile of sorted seconds, in ms."""
    return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 2) if values else 0.0


async def open_loop(
    port: int | Sequence[int],
    rate: float,
    duration: float,
    request_of: Callable[[int], bytes],
    *,
    connections: int = 64,
    timeout_s: float | None = None,
    window_s: float | None = None,
) -> dict[str, Any]:
    """Open-loop load: request i (`request_of(i)`, called when it is due) is due at start + i/rate; its latency runs
    from that moment to the end of its response, so queueing in the client counts against the server (no coordinated
    omission). Sent over `connections` keep-alive connections with a minimal HTTP/1.1 client, so that the load
    generator takes as little as possible of the cores it shares with the server. A non-2xx answer is an error; so is
    a request without an answer within `timeout_s` or a broken connection (the connection is then opened again).
    With `window_s`, also the count and p99 of the requests due in each window of that many seconds. With several
    ports (replicas), the connections are dealt over them in turn and each takes the next due request when it is free,
    as a load balancer with least-outstanding-requests would; the result then also counts the answers per replica."""
    ports = [port] if isinstance(port, int) else list(port)
    per_port: dict[int, int] = {}
    total = int(rate * duration)
    queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
    latencies: list[float] = []
    windows: dict[int, list[float]] = defaultdict(list)
    statuses: dict[int, int] = {}
    failures = {"errors": 0, "timeouts": 0, "broken": 0}
    start = 0.0

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        return int(head[9:12])

    async def connection(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            due, i = item
            try:
                async with asyncio.timeout(timeout_s):
                    status = await exchange(reader, writer, request_of(i))
            except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError, ValueError) as e:
                failures["errors"] += 1
                failures["timeouts" if isinstance(e, TimeoutError) else "broken"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            statuses[status] = statuses.get(status, 0) + 1
            per_port[port] = per_port.get(port, 0) + 1
            if not 200 <= status < 300:
                failures["errors"] += 1
                continue
            latency = time.perf_counter() - due
            latencies.append(latency)
            if window_s:
                windows[int((due - start) // window_s)].append(latency)
        writer.close()

    workers = [asyncio.create_task(connection(ports[i % len(ports)])) for i in range(connections)]
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, i))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    latencies.sort()
    result: dict[str, Any] = {
        "sent": total,
        "ok": len(latencies),
        **failures,
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": _pct(latencies, 0.50),
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": _pct(latencies, 1.0),
        "statuses": statuses,
    }
    if not isinstance(port, int):
        result["per_replica"] = [per_port.get(p, 0) for p in ports]
    if window_s:
        result["windows"] = (
            [{"ok": len(w), "p99_ms": _pct(sorted(w), 0.99)} for w in (windows[k] for k in range(max(windows) + 1))]
            if windows
            else []
        )
    return result


def _child(fn: Callable[..., Any], args: tuple[Any, ...], out: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    out.put(fn(*args))


class InProcess:
    """`fn(*args)` in a spawned process of its own (a load generator, off the measuring process's interpreter); its
    return value comes back through a queue."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.queue: Any = ctx.Queue()
        self.proc = ctx.Process(target=_child, args=(fn, args, self.queue))
        self.proc.start()

    def result(self, timeout: float) -> Any:
        value = self.queue.get(timeout=timeout)
        self.proc.join()
        return value


async def signed_load(
    port: int | Sequence[int],
    secret: str | None,
    rate: float,
    duration: float,
    prefix: str,
    distinct: bool = False,
    area: str = HOOK_AREA,
) -> dict[str, Any]:
    """`open_loop` of city-source webhooks to `area`, its requests built and signed before the clock starts (each
    with a webhook id of its own), so that the load generator takes as little as possible of the cores it shares
    with the server."""
    ts = int(time.time())
    requests = [
        hook_request(secret, f"{prefix}-{i}", ts, hook_body(prefix, i, distinct, area))
        for i in range(int(rate * duration))
    ]
    return await open_loop(port, rate, duration, requests.__getitem__)


def _signed_load_process(*args: Any) -> Any:
    return asyncio.run(signed_load(*args))


def run_load(
    port: int | Sequence[int],
    secret: str | None,
    rate: float,
    duration: float,
    prefix: str,
    distinct: bool = False,
    area: str = HOOK_AREA,
) -> dict[str, Any]:
    """`signed_load` from a separate process (so the load generator never shares an event loop or a GIL with what it
    measures); `port`: one service, or replicas to spread the load over."""
    ports = port if isinstance(port, int) else list(port)
    result: dict[str, Any] = InProcess(
        _signed_load_process, ports, secret, rate, duration, prefix, distinct, area
    ).result(duration * 4 + 120)
    return result
