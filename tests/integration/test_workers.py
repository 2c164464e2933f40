"""Two `keng dispatch run` workers on one PostgreSQL store and one broker, as a city runs them: the dispatch work is
shared by leased slots (each ward's broadcasts dispatched by exactly one worker, the holder of its slot), and when one
is SIGKILLed mid-dispatch the other takes its slots over once their leases expire and finishes its dispatches from
the log, every online device playing once; the audio of each broadcast is rendered once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from uuid import UUID

import orjson
import pytest

from keng.adapters.readstore.sql import SqlDb
from keng.adapters.store.leases import Leases, slot_of
from keng.domain.broadcast import Broadcast
from keng.domain.dispatch import Dispatch
from keng.runtime.demo.simulator import Fleet, FleetOptions, fleet_specs
from tests.integration.conftest import Mosquitto
from tests.integration.harness import Harness

pytestmark = pytest.mark.mqtt
KENG = [sys.executable, "-m", "keng.runtime.cli"]
PARTITIONS = 64
TTL_S = 2.0


class Worker:
    """One `keng dispatch run` process, its JSON log in a file of its own."""

    def __init__(self, h: Harness, broker: Mosquitto, name: str) -> None:
        self.name = name
        self.log = h.data_dir.parent / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *KENG,
                    "--data",
                    str(h.data_dir),
                    "--store",
                    h.store_url,
                    "dispatch",
                    "run",
                    "--broker",
                    f"mqtt://127.0.0.1:{broker.port}",
                    "--slots",
                    "00:00-24:00",
                ],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env={
                    **os.environ,
                    "KENG_LOG_FORMAT": "json",
                    "KENG_LOG_LEVEL": "info",
                    "KENG_PARTITIONS": str(PARTITIONS),
                    "KENG_LEASE_TTL_S": str(TTL_S),
                },
            )

    def events(self, name: str) -> list[dict[str, object]]:
        out = []
        for line in self.log.read_bytes().splitlines():
            if name.encode() in line:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if record.get("event") == name:
                    out.append(record)
        return out

    @property
    def worker_id(self) -> str:
        ready = self.events("dispatcher.ready")
        return str(ready[0]["worker"]) if ready else ""

    def delivered(self) -> set[str]:
        return {str(e["dispatch_id"]) for e in self.events("dispatch.delivering")}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def ward_of(h: Harness, bid: UUID) -> str:
    return str(h.app.broadcast(bid).scope[0])


def one_per_ward(h: Harness, wards: list[str]) -> dict[str, UUID]:
    return {w: h.broadcast("emergency", target_areas=[w]) for w in wards}


def renders_per_broadcast(h: Harness, bids: list[UUID]) -> Counter[tuple[UUID, str]]:
    """(broadcast, audio key) -> how many times its render was recorded."""
    counts: Counter[tuple[UUID, str]] = Counter()
    for e in h.events(Broadcast.Rendered):
        if e.originator_id in bids:
            counts[(e.originator_id, e.channel)] += 1
    return counts


async def test_two_workers_share_the_wards_and_one_killed_mid_dispatch_is_taken_over(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    h = Harness(tmp_path, mosquitto.address, store_url=postgres_url)
    specs = fleet_specs(h.app)
    wards = sorted({s.areas[1] for s in specs if len(s.areas) > 2})
    h.fleet = fleet = Fleet(h.broker, specs, FleetOptions(play_scale=0.3))  # type: ignore[arg-type]
    await fleet.start()
    leases = Leases(SqlDb.of_app(h.app), worker="test-observer", slots=PARTITIONS, ttl_s=TTL_S)
    a = Worker(h, mosquitto, "a")
    b: Worker | None = None
    try:
        await h.until(lambda: bool(a.worker_id), timeout=60)
        b = Worker(h, mosquitto, "b")
        await h.until(lambda: bool(b.worker_id), timeout=60)
        # both hold half the slots once the first has given back its surplus
        await h.until(lambda: Counter(leases.holders().values()) == {a.worker_id: 32, b.worker_id: 32}, timeout=20)
        owner_of = {s: (a if w == a.worker_id else b) for s, w in leases.holders().items()}
        listed = subprocess.run(
            [*KENG, "--data", str(h.data_dir), "--store", h.store_url, "dispatch", "workers", "--json"],
            capture_output=True,
            timeout=60,
            env={**os.environ, "KENG_PARTITIONS": str(PARTITIONS), "KENG_LEASE_TTL_S": str(TTL_S)},
        )
        assert listed.returncode == 0, listed.stderr
        shown = orjson.loads(listed.stdout)
        assert shown["held"] == PARTITIONS
        assert {w["worker"]: len(w["slots"]) for w in shown["workers"]} == {a.worker_id: 32, b.worker_id: 32}

        # 1. one emergency per ward: each dispatched by exactly one worker, the holder of its ward's slot
        first = one_per_ward(h, wards)
        await h.until(lambda: all(h.closed(bid) for bid in first.values()), timeout=90)
        for ward, bid in first.items():
            d = h.dispatch_of(bid)
            assert d is not None
            by = [w.name for w in (a, b) if str(d.id) in w.delivered()]
            assert by == [owner_of[slot_of(ward, PARTITIONS)].name], (ward, by)
            assert d.summary["played"] == d.summary["targeted"] > 0
            assert all(fleet.devices[code].plays[str(d.id)] == 1 for code in d.targets)
        assert a.delivered() and b.delivered()

        # 2. again, and SIGKILL `a` as soon as acks of one of its dispatches are recorded
        second = one_per_ward(h, wards)
        mine = {bid for ward, bid in second.items() if owner_of[slot_of(ward, PARTITIONS)] is a}
        assert mine

        def acks_of_a() -> bool:
            ids = {d.id for x in mine if (d := h.dispatch_of(x)) is not None}
            return any(e.originator_id in ids for e in h.events(Dispatch.AcksRecorded))

        await h.until(acks_of_a, timeout=60)
        a.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.proc.wait(10)
        assert not all(h.closed(bid) for bid in mine)  # killed mid-dispatch
        await h.until(lambda: bool(b.events("dispatch.taken_over")), timeout=15)
        takeover_s = time.monotonic() - killed
        # the lease expires TTL_S after a's last renewal (every 0.5 s); b ticks every 0.5 s
        print(f"takeover {takeover_s:.2f} s")
        assert takeover_s <= TTL_S + 3.0, takeover_s
        await h.until(lambda: all(h.closed(bid) for bid in second.values()), timeout=90)
        for bid in second.values():
            d = h.dispatch_of(bid)
            assert d is not None and d.summary["played"] == d.summary["targeted"] > 0, d.summary if d else bid
            assert all(fleet.devices[code].plays[str(d.id)] == 1 for code in d.targets)
            assert len([e for e in h.events(Dispatch.Opened) if e.broadcast_id == bid]) == 1
        assert Counter(leases.holders().values()) == {b.worker_id: PARTITIONS}

        # every broadcast's audio rendered once, whichever worker released it
        counts = renders_per_broadcast(h, [*first.values(), *second.values()])
        assert counts and set(counts.values()) == {1}, counts
    finally:
        a.stop()
        if b is not None:
            b.stop()
        await h.close()
        await asyncio.sleep(0)
