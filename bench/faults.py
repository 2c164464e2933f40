"""Fault harness: two keng workers share an emergency's dispatch, one fault is injected mid-dispatch, and every
simulated device is checked to have played it exactly once (Jepsen-style counts).

python bench/faults.py --runs 20 --devices 1000 [--seed 1] [--faults kill,broker,postgres,partition] [--json]

Each run starts everything of its own: a PostgreSQL instance (initdb into a temporary folder, as OS user `postgres`
when run as root; tests/servers.py TempPostgres), a mosquitto on a free port, a store on it with the 13 sample wards
and --devices generated IP loudspeakers (bench/common.py `district`), a simulated fleet of them in this process
(runtime/demo/simulator.py: each device counts `plays[dispatch]` and de-duplicates commands by (dispatch, seq)), and
two `keng dispatch run` workers (default KENG_PARTITIONS and KENG_LEASE_TTL_S: 64 slots, 3 s leases), started
together; it waits until each holds 32 slots. Once every device is recorded online it approves an emergency to every
device: by default one per ward (`--scope wards`: their slots are spread over both workers, so both deliver), or one
to the whole district (`--scope district`: one worker delivers it). A first such wave, not counted, goes out and
closes before (each worker makes the bulletin's audio once and keeps it, so that the counted wave opens on both at
once, as on workers that have run a while). At a random moment mid-dispatch of the counted wave (seeded: `--seed`;
`--fault-at LO,HI`: a share of the devices' playback, --play-scale of the bulletin's length and repeats, counted from
when the command of its last dispatch reached a device; what is open then and who delivers it are read from the
devices and the workers' logs, not the store, which this process reads on a thread a busy machine can hold back) it
injects ONE fault, the kinds of `--faults` taken in turn:

- `kill`: SIGKILL of one worker, drawn among those delivering a dispatch of the wave then (the other takes its slots
  over when their leases expire and resumes its dispatches from the log);
- `broker`: the broker restarted (SIGTERM, then started again on its port; it keeps nothing: `persistence false`);
- `postgres`: `pg_ctl restart -m immediate` (every server process ends at once, then crash recovery);
- `partition`: in these runs each worker runs inside a network namespace of its own, joined to the host by a veth
  pair (tests/servers.py Netns; PostgreSQL and the broker listen on the host ends too); one worker, drawn as for
  `kill`, is cut off from both for --partition-s seconds by taking the host end of its link down: its packets vanish
  without a reset, as behind a failed switch (its slots expire; it stops working on them on its own, the other takes
  them over); then the link comes back and it rejoins. Skipped, with the reason in the output, where namespaces
  cannot be made (not root, no `ip`).

It then waits for every dispatch of the wave to close (or for its expiry, --expiry-s, plus a margin) and a little
longer (late plays), and counts, per run and in total:

- `lost`: (device, dispatch) pairs where the device was targeted and never played it. Every device is powered on
  and connected throughout (no offline or failure rate; a broker restart disconnects them all for a moment and they
  reconnect at once), so every targeted device must play.
- `duplicated`: (device, dispatch) pairs where the device played the dispatch more than once (the simulator's
  `plays`; a device plays each (dispatch, seq) once, so a second play means a second item or seq was sent).
- `unexpected`: events no rule of the protocol explains, each counted once and named in `unexpected_detail`
  (and a failure of the harness itself, such as a wave that never closes: its folder is then kept, with a diagnosis):
  0. a dispatch of the first wave (no fault) not closed complete with every target played, or played other than once
     by a target;
  1. a broadcast of the wave with a number of `Dispatch.Opened` other than one (an emergency is one wave);
  2. an ack recorded (`Dispatch.AcksRecorded`) for an endpoint the dispatch does not target;
  3. a device that played a dispatch it is not a target of;
  4. a dispatch of the wave not closed by its expiry plus the margin, closed more than once, closed with an outcome
     other than `complete`, closed with `played` != `targeted` or `online` != `targeted` (every target is online),
     or closed while the acks recorded for it (`Dispatch.AcksRecorded`) show `played` for fewer than every target;
  5. a worker process that exited on its own (not the one SIGKILLed);
  6. an ERROR or CRITICAL log line of a worker (a line that is not JSON, a Python traceback, counts too; not what
     the children of a SIGKILLed worker print after its death: multiprocessing's resource tracker warns);
  7. at the end, a slot not held by a live worker, 3 lease times and 10 s on (a dead worker's slots must be taken
     over, a cut-off one's given back or taken over, and every one of the 64 held).
- the takeover time: from the fault to when every dispatch it hit is being delivered again. The dispatches a fault
  hits: the open ones of the killed or cut-off worker (the one that logged `dispatch.delivering` for them), or
  every open one of the wave for a broker or PostgreSQL restart. For each, the first of these after the fault: an
  ack recorded that a device sent after the fault, the dispatch's close, or a worker other than a killed one logging
  `dispatch.delivering` for it resumed from the log. `takeover_s` of a run is the latest over its dispatches (None
  when the fault hit no open dispatch: every one had closed already); `takeover_p99_s` is over the runs that have
  one. After a broker or PostgreSQL restart nothing is resumed: the first evidence is the next ack a device has to
  send, which may wait for the end of its playback (at most --play-scale x the bulletin's length x its repeats), so
  those figures are upper bounds.

Targets (issue 14): lost 0, duplicated 0, unexpected 0 over 20 runs; takeover p99 <= 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import district, report
from keng.adapters.readstore.sql import SqlDb
from keng.adapters.store.app import Keng
from keng.adapters.store.leases import Leases
from keng.domain.delivery import percentile
from keng.domain.dispatch import Dispatch
from keng.domain.endpoint import Endpoint
from keng.runtime.config import load_settings
from keng.runtime.demo.simulator import Fleet, FleetOptions, fleet_specs
from keng.services import broadcasts
from tests.servers import Mosquitto, Netns, TempPostgres, netns_problem, postgres_problem

T = TypeVar("T")
FAULTS = ("kill", "broker", "postgres", "partition")
TARGETS = {"lost": 0, "duplicated": 0, "unexpected": 0, "takeover_p99_s": 5.0}
ERROR_LEVELS = {"error", "critical", "exception", "fatal"}


def now_utc() -> datetime:
    return datetime.now(UTC)


# -- the processes -----------------------------------------------------------------------------------------------


class Worker:
    """One `keng dispatch run` process (inside `netns` when given), its JSON log in a file of its own."""

    def __init__(self, name: str, log: Path, command: list[str], env: dict[str, str], netns: Netns | None) -> None:
        self.name, self.log, self.netns = name, log, netns
        self.killed = False
        self.killed_at = 0  # the log's size when it was SIGKILLed: what its children print after that is explained
        self.stopping = False
        with log.open("wb") as out:
            prefix = netns.prefix if netns else []
            self.proc = subprocess.Popen([*prefix, *command], stdout=subprocess.DEVNULL, stderr=out, env=env)

    def kill(self) -> None:
        self.killed_at = self.log.stat().st_size
        self.proc.send_signal(signal.SIGKILL)
        self.killed = True

    def records(self) -> list[dict[str, Any]]:
        """Every JSON line of its log; a line that is not JSON becomes {"event": "(not json)", "line": ...}, except,
        after a SIGKILL, what its children print as they notice (multiprocessing's resource tracker, say)."""
        out: list[dict[str, Any]] = []
        text = self.log.read_bytes()
        cut = self.killed_at or len(text)
        for part, explained in ((text[:cut], False), (text[cut:], True)):
            for line in part.splitlines():
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    record = None
                if isinstance(record, dict):
                    out.append(record)
                elif not explained:
                    out.append({"event": "(not json)", "line": line.decode(errors="replace")})
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == name]

    @property
    def worker_id(self) -> str:
        ready = self.events("dispatcher.ready")
        return str(ready[0]["worker"]) if ready else ""

    def stop(self) -> None:
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Follower:
    """Reads the store's log on a thread of its own, every 100 ms, into `events` (what a PostgreSQL restart
    interrupts is read again afterwards)."""

    def __init__(self, app: Keng) -> None:
        self.app = app
        self.events: list[Any] = []
        self.position = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults-follower", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for position, event in self.app.read_events(self.position):
                    with self._lock:
                        self.events.append(event)
                        self.position = position
            except Exception:  # the server restarting: read again at the next round
                self.errors += 1
            self._stop.wait(0.1)

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.events)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


# -- one run -----------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one run found."""

    kind: str
    skipped: str = ""
    lost: int = 0
    duplicated: int = 0
    unexpected: list[str] = field(default_factory=list)
    takeover_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fault": self.kind}
        if self.skipped:
            out["skipped"] = self.skipped
            return out
        out |= {
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": len(self.unexpected),
            "takeover_s": self.takeover_s,
        }
        if self.unexpected:
            out["unexpected_detail"] = self.unexpected
        return out | self.detail


class Run:
    """One run: its own PostgreSQL, broker, store, fleet and two workers; one fault (module docstring)."""

    def __init__(self, index: int, kind: str, args: argparse.Namespace) -> None:
        self.index, self.kind, self.args = index, kind, args
        self.rng = random.Random(f"{args.seed}:{index}:{kind}")
        self.root = Path(tempfile.mkdtemp(prefix="keng-faults-"))
        self.root.chmod(0o755)
        self.netns: list[Netns] = []
        self.pg: TempPostgres | None = None
        self.broker: Mosquitto | None = None
        self.app: Keng | None = None
        self.fleet: Fleet | None = None
        self.follower: Follower | None = None
        self.workers: list[Worker] = []
        self.leases: Leases | None = None
        self.out = Outcome(kind)
        self.keep = False  # set on a harness failure: the run's folder is kept with its diagnosis
        self.playback = 0.0
        self._store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faults-store")
        self.settings = load_settings()

    async def store(self, fn: Callable[..., T], *args: Any) -> T:
        """A call on the store (or anything else that blocks), off the loop that runs the fleet."""
        return await asyncio.get_running_loop().run_in_executor(self._store_thread, fn, *args)

    def log(self, text: str) -> None:
        if self.args.verbose:
            print(f"[run {self.index} {self.kind}] {text}", file=sys.stderr, flush=True)

    # -- set-up ----------------------------------------------------------------------------------------------------

    async def setup(self) -> None:
        args = self.args
        hosts: tuple[str, ...] = ()
        if self.kind == "partition":
            self.netns = [Netns(2 * self.index + k) for k in range(2)]  # each worker in one of its own
            for ns in self.netns:
                await asyncio.to_thread(ns.create)
            hosts = tuple(ns.host_ip for ns in self.netns)
        self.pg = TempPostgres(hosts)
        await asyncio.to_thread(self.pg.start)
        self.broker = Mosquitto(self.root, hosts=hosts)
        await asyncio.to_thread(self.broker.start)
        t = time.monotonic()
        _, app = await self.store(district, args.devices, self.pg.url())
        self.app = app
        self.log(f"district of {args.devices} loaded in {time.monotonic() - t:.1f} s")
        specs = await self.store(fleet_specs, app)
        self.fleet = Fleet(self.broker.address, specs, FleetOptions(play_scale=args.play_scale, seed=self.index))
        await self.fleet.start()
        self.follower = Follower(app)
        self.follower.start()
        self.leases = Leases(
            SqlDb.of_app(app),
            worker="faults-observer",
            slots=self.settings.partitions,
            ttl_s=self.settings.lease_ttl_s,
        )
        for i, name in enumerate(("a", "b")):
            self.workers.append(self._start_worker(name, self.netns[i] if self.netns else None))
        await self.until(lambda: all(w.worker_id for w in self.workers), 90, "both workers ready")
        half = self.settings.partitions // 2

        def shared() -> bool:
            held = Counter(self._holders().values())
            return sorted(held.values()) == sorted([half, self.settings.partitions - half]) and set(held) == {
                w.worker_id for w in self.workers
            }

        await self.until(shared, 30, "both workers holding their share of the slots")
        await self.until(lambda: self._online() >= args.devices, 120, "every device recorded online")

    def _start_worker(self, name: str, netns: Netns | None) -> Worker:
        assert self.pg is not None and self.broker is not None
        host = netns.host_ip if netns else "127.0.0.1"
        command = [
            sys.executable, "-m", "keng.runtime.cli", "--data", str(self.root / "data"), "--store", self.pg.url(host),
            "dispatch", "run", "--broker", f"mqtt://{host}:{self.broker.port}", "--slots", "00:00-24:00",
        ]  # fmt: skip
        env = {**os.environ, "KENG_LOG_FORMAT": "json", "KENG_LOG_LEVEL": "info"}
        return Worker(name, self.root / f"worker-{name}.log", command, env, netns)

    def _holders(self) -> dict[int, str]:
        assert self.leases is not None
        try:
            return self.leases.holders()
        except Exception:  # the server restarting
            return {}

    def _online(self) -> int:
        assert self.follower is not None
        return len({e.originator_id for e in self.follower.snapshot() if isinstance(e, Endpoint.CameOnline)})

    async def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not await self.store(predicate):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout:.0f} s")
            for w in self.workers:
                if w.proc.poll() is not None and not w.killed and not w.stopping:
                    raise RuntimeError(f"worker {w.name} exited ({w.proc.returncode}) while waiting for {what}")
            await asyncio.sleep(0.1)

    # -- the wave and the fault ------------------------------------------------------------------------------------

    def _approve(self) -> list[UUID]:
        assert self.app is not None
        if self.args.scope == "district":
            scopes = [["021"]]
        else:
            wards = sorted({s.areas[1] for s in self.fleet.specs if len(s.areas) > 1}) if self.fleet else []
            scopes = [[w] for w in wards]
        expires = now_utc() + timedelta(seconds=self.args.expiry_s)
        out = []
        for scope in scopes:
            bid = broadcasts.draft(
                self.app,
                by="lan.nguyen",
                title="Diễn tập sự cố",
                text="Cảnh báo khẩn cấp thử nghiệm. Đề nghị bà con chú ý theo dõi.",
                priority="emergency",
                target_areas=scope,
                expires_at=expires,
                drill=True,
            )
            broadcasts.submit(self.app, bid, by="lan.nguyen")
            out.append(bid)
        for bid in out:  # approved together: one wave
            broadcasts.approve(self.app, bid, by="hung.tran")
        return out

    def _dispatches(self, bids: list[UUID]) -> dict[UUID, Dispatch.Opened]:
        assert self.follower is not None
        return {
            e.originator_id: e
            for e in self.follower.snapshot()
            if isinstance(e, Dispatch.Opened) and e.broadcast_id in bids
        }

    def _closed(self) -> set[UUID]:
        assert self.follower is not None
        return {e.originator_id for e in self.follower.snapshot() if isinstance(e, Dispatch.Closed)}

    async def run(self) -> Outcome:
        try:
            await self.setup()
            await self.wave_and_fault()
        except Exception as e:
            self.out.unexpected.append(f"harness: {type(e).__name__}: {e}")
            self.log(f"failed: {type(e).__name__}: {e}")
            self.keep = True
            try:
                await asyncio.to_thread(self.diagnose)
            except Exception as d:
                print(f"run {self.index}: no diagnosis ({type(d).__name__}: {d})", file=sys.stderr)
        finally:
            await self.teardown()
        return self.out

    def diagnose(self) -> None:
        """After a harness failure: what the store, the workers' logs and the devices say about every dispatch not
        closed, into diagnosis.txt in the run's folder (kept)."""
        lines = [f"workers: {[(w.name, w.worker_id, w.proc.poll()) for w in self.workers]}"]
        lines.append(f"slot holders: {sorted(Counter(self._holders().values()).items())}")
        events = self.follower.snapshot() if self.follower else []
        owner, closed_by_log = self._from_logs()
        closed = self._closed()
        states: dict[UUID, dict[str, str]] = {}
        for e in events:
            if isinstance(e, Dispatch.AcksRecorded):
                for ack in e.acks:
                    states.setdefault(e.originator_id, {})[ack["endpoint"]] = ack["state"]
        for e in events:
            if not isinstance(e, Dispatch.Opened) or e.originator_id in closed:
                continue
            did = e.originator_id
            final = Counter(states.get(did, {}).values())
            lines.append(
                f"dispatch {did} (broadcast {e.broadcast_id}) open in the store; delivered by "
                f"{owner[str(did)].name if str(did) in owner else None}; closed by the log: "
                f"{str(did) in closed_by_log}; {len(e.targets)} targets; recorded states {dict(final)}"
            )
            for code in e.targets:
                device = self.fleet.devices.get(code) if self.fleet else None
                state = states.get(did, {}).get(code)
                if state not in ("played", "displayed"):
                    plays = device.plays.get(str(did), 0) if device else None
                    journal = [j for j in device.journal if j[1] in ("", str(did))] if device else None
                    lines.append(f"  {code}: recorded {state}, plays {plays}, journal {journal}")
        (self.root / "diagnosis.txt").write_text("\n".join(lines) + "\n")

    async def wave_and_fault(self) -> None:
        assert self.app is not None and self.fleet is not None and self.follower is not None
        args = self.args
        # A first wave, not measured: both workers make the bulletin's audio (each keeps it) and reach steady state,
        # so that the measured wave opens on both at once.
        warm = await self.store(self._approve)
        await self.until(lambda: len(self._dispatches(warm)) == len(warm), 60, "the warm-up wave opened")
        warm_dispatches = set(self._dispatches(warm))
        await self.until(lambda: warm_dispatches <= self._closed(), args.expiry_s, "the warm-up wave closed")
        self._check_warm_up(warm_dispatches)
        warm_ids = {str(d) for d in warm_dispatches}
        loop = asyncio.get_running_loop()
        approved = loop.time()
        bids = await self.store(self._approve)

        # The moment of the fault is taken from what the devices (in this loop) received and what the workers logged,
        # not from the store, which this process reads on a thread that a busy machine may hold back by seconds.
        reached = await self._wave_reached(warm_ids, len(bids), 60)
        last = max(reached, key=lambda d: reached[d])
        wave_at = reached[last]  # the command of every dispatch of the wave has reached a device
        playback = self.playback = self._playback(last)
        lo, hi = args.fault_at
        await asyncio.sleep(max(0.0, wave_at + self.rng.uniform(lo, hi) * playback - loop.time()))

        # the fault
        owner, closed = await asyncio.to_thread(self._from_logs)
        open_now = [d for d in reached if d not in closed]
        delivering = [w for w in self.workers if any(owner.get(d) is w for d in open_now)]
        victim: Worker | None = None
        fault_loop, fault_at = loop.time(), now_utc()
        if self.kind == "kill":
            victim = self.rng.choice(delivering or self.workers)
            fault_loop, fault_at = loop.time(), now_utc()
            victim.kill()
        elif self.kind == "broker":
            assert self.broker is not None
            await asyncio.to_thread(self.broker.restart)
        elif self.kind == "postgres":
            assert self.pg is not None
            await asyncio.to_thread(self.pg.restart, "immediate")
        elif self.kind == "partition":
            victim = self.rng.choice(delivering or self.workers)
            assert victim.netns is not None
            fault_loop, fault_at = loop.time(), now_utc()
            await asyncio.to_thread(victim.netns.cut)
        affected = [UUID(d) for d in open_now if victim is None or owner.get(d) is victim]
        self.log(
            f"fault {self.kind} {fault_loop - wave_at:.2f} s after the wave reached the devices "
            f"({wave_at - approved:.2f} s after the approval); open {len(open_now)} of {len(reached)}; "
            f"hit {len(affected)}" + (f"; victim {victim.name}" if victim else "")
        )
        if self.kind == "partition" and victim is not None and victim.netns is not None:
            await asyncio.sleep(args.partition_s)
            await asyncio.to_thread(victim.netns.heal)

        # until every dispatch of the wave is closed (or expired, and a margin), then late plays
        wave = {UUID(d) for d in reached}
        deadline = time.monotonic() + args.expiry_s + 30
        while time.monotonic() < deadline and not wave <= self._closed():
            await asyncio.sleep(0.2)
        await self.until(lambda: len(self._dispatches(bids)) == len(bids), 30, "the store's openings read")
        opened = self._dispatches(bids)
        dispatch_broadcast = {did: e.broadcast_id for did, e in opened.items()}
        await asyncio.sleep(args.linger_s)
        with contextlib.suppress(TimeoutError):  # (rule 7 reports it)
            await self.until(lambda: self._slots_held() == "", 3 * self.settings.lease_ttl_s + 10, "slots all held")
        self.assess(opened, dispatch_broadcast, affected, victim, fault_at)

    def _check_warm_up(self, dispatches: set[UUID]) -> None:
        """The first wave had no fault: every dispatch of it closed complete, every target played it once."""
        assert self.follower is not None and self.fleet is not None
        for e in self.follower.snapshot():
            if isinstance(e, Dispatch.Closed) and e.originator_id in dispatches:
                s = e.summary
                if s.get("outcome") != "complete" or s.get("played") != s.get("targeted"):
                    self.out.unexpected.append(f"warm-up dispatch {e.originator_id}: closed {s}")
            elif isinstance(e, Dispatch.Opened) and e.originator_id in dispatches:
                plays = Counter(self.fleet.devices[c].plays.get(str(e.originator_id), 0) for c in e.targets)
                if set(plays) != {1}:
                    self.out.unexpected.append(f"warm-up dispatch {e.originator_id}: plays per device {dict(plays)}")

    async def _wave_reached(self, known: set[str], n: int, timeout: float) -> dict[str, float]:
        """Dispatch id -> the loop time its command first reached a device, once `n` dispatches not `known` have."""
        assert self.fleet is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            first: dict[str, float] = {}
            for device in self.fleet.devices.values():
                for what, did, at in device.journal:
                    if what == "received" and did not in known and at < first.get(did, float("inf")):
                        first[did] = at
            if len(first) >= n:
                return first
            if loop.time() > deadline:
                raise TimeoutError(f"{len(first)} of {n} dispatches reached a device within {timeout:.0f} s")
            await asyncio.sleep(0.02)

    def _playback(self, dispatch: str) -> float:
        """How long a device plays the dispatch's item (seconds; its repeats included)."""
        assert self.fleet is not None
        for device in self.fleet.devices.values():
            for command in [*([device.current] if device.current else []), *device.waiting]:
                if command.dispatch == dispatch:
                    return command.seconds
        raise RuntimeError(f"no device is playing dispatch {dispatch} or has it queued")

    def _from_logs(self) -> tuple[dict[str, Worker], set[str]]:
        """By the workers' logs: who delivers each dispatch (`dispatch.delivering`: before a fault, one worker each),
        and which are closed (`dispatch.closed`)."""
        owner: dict[str, Worker] = {}
        closed: set[str] = set()
        for w in self.workers:
            for r in w.records():
                if r.get("event") == "dispatch.delivering":
                    owner[str(r.get("dispatch_id"))] = w
                elif r.get("event") == "dispatch.closed":
                    closed.add(str(r.get("dispatch_id")))
        return owner, closed

    def _slots_held(self) -> str:
        """'' when every slot is held by a live worker, else what is wrong."""
        live = {w.worker_id for w in self.workers if w.proc.poll() is None}
        holders = self._holders()
        missing = [s for s in range(self.settings.partitions) if holders.get(s) not in live]
        return f"{len(missing)} slots not held by a live worker (first: {missing[:5]})" if missing else ""

    # -- counting --------------------------------------------------------------------------------------------------

    def assess(
        self,
        opened: dict[UUID, Dispatch.Opened],
        dispatch_broadcast: dict[UUID, UUID],
        affected: list[UUID],
        victim: Worker | None,
        fault_at: datetime,
    ) -> None:
        assert self.fleet is not None and self.follower is not None
        out, events = self.out, self.follower.snapshot()
        # (what the follower had not yet read when the fault came: by the log, a dispatch closed before it was not hit)
        closed_before = {e.originator_id for e in events if isinstance(e, Dispatch.Closed) and e.timestamp <= fault_at}
        affected = [d for d in affected if d not in closed_before]
        unexpected = out.unexpected
        targets = {did: set(e.targets) for did, e in opened.items()}

        # 1. one opening per broadcast
        per_broadcast = Counter(
            e.broadcast_id
            for e in events
            if isinstance(e, Dispatch.Opened) and e.broadcast_id in set(dispatch_broadcast.values())
        )
        for bid, n in per_broadcast.items():
            if n != 1:
                unexpected.append(f"broadcast {bid}: {n} Dispatch.Opened")
        # 2. acks for untargeted endpoints
        for e in events:
            if isinstance(e, Dispatch.AcksRecorded) and e.originator_id in targets:
                for ack in e.acks:
                    if ack["endpoint"] not in targets[e.originator_id]:
                        unexpected.append(f"dispatch {e.originator_id}: ack recorded for untargeted {ack['endpoint']}")
        # plays: lost, duplicated, and 3. played without being targeted
        for code, device in self.fleet.devices.items():
            for did, want in targets.items():
                plays = device.plays.get(str(did), 0)
                if code in want and plays == 0:
                    out.lost += 1
                elif code in want and plays > 1:
                    out.duplicated += 1
                elif code not in want and plays:
                    unexpected.append(f"device {code} played dispatch {did}, not a target of it")
        # 4. every dispatch closed once, complete, every target played
        closes: dict[UUID, list[Any]] = {}
        for e in events:
            if isinstance(e, Dispatch.Closed) and e.originator_id in targets:
                closes.setdefault(e.originator_id, []).append(e)
        for did, want in targets.items():
            found = closes.get(did, [])
            if not found:
                unexpected.append(f"dispatch {did}: not closed")
                continue
            if len(found) > 1:
                unexpected.append(f"dispatch {did}: closed {len(found)} times")
            s = found[0].summary
            if s.get("outcome") != "complete" or not (s.get("played") == s.get("online") == len(want)):
                unexpected.append(
                    f"dispatch {did}: closed {s.get('outcome')} with played {s.get('played')}, "
                    f"online {s.get('online')} of {len(want)} targets"
                )
            recorded = {a["endpoint"] for e in events if isinstance(e, Dispatch.AcksRecorded) and e.originator_id == did
                        for a in e.acks if a["state"] in ("played", "displayed")}  # fmt: skip
            if recorded != want:
                unexpected.append(
                    f"dispatch {did}: closed, but `played` recorded for {len(recorded & want)} of {len(want)} targets"
                )
        # 5. workers that exited on their own; 6. error lines
        for w in self.workers:
            if not w.killed and w.proc.poll() is not None:
                unexpected.append(f"worker {w.name} exited on its own ({w.proc.returncode})")
            for r in w.records():
                level = str(r.get("level", "")).lower()
                if level in ERROR_LEVELS or r.get("event") == "(not json)":
                    unexpected.append(f"worker {w.name} logged: {orjson.dumps(r).decode()[:300]}")
        # 7. every slot held by a live worker
        if problem := self._slots_held():
            unexpected.append(problem)

        # the takeover
        def progress(did: UUID) -> datetime | None:
            seen: list[datetime] = []
            for e in events:
                if e.originator_id != did or e.timestamp <= fault_at:
                    continue
                fresh = isinstance(e, Dispatch.AcksRecorded) and any(
                    datetime.fromisoformat(a["at"]) > fault_at for a in e.acks
                )
                if fresh or isinstance(e, Dispatch.Closed):
                    seen.append(e.timestamp)
            for w in self.workers:
                if w is victim and self.kind == "kill":
                    continue
                for r in w.events("dispatch.delivering"):
                    at = datetime.fromisoformat(str(r.get("timestamp", "")).replace("Z", "+00:00"))
                    if r.get("dispatch_id") == str(did) and r.get("resumed") and at > fault_at:
                        seen.append(at)
            return min(seen) if seen else None

        if affected:
            times = [progress(d) for d in affected]
            if all(t is not None for t in times):
                out.takeover_s = round(max((t - fault_at).total_seconds() for t in times if t is not None), 2)
            else:
                unexpected.append(f"{sum(t is None for t in times)} dispatches hit by the fault never progressed")
        taken = [r for w in self.workers for r in w.events("dispatch.taken_over")]
        out.detail = {
            "victim": victim.name if victim else None,
            "dispatches": len(opened),
            "open_at_fault": len(set(opened) - closed_before),
            "hit": len(affected),
            "taken_over_logs": len(taken),
            "playback_s": round(self.playback, 2),
            "targets": sum(len(t) for t in targets.values()),
        }

    async def teardown(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))
        if self.follower is not None:
            self.follower.stop()
        if self.fleet is not None:
            await self.fleet.stop()
        if self.app is not None:
            self.app.close()
        self._store_thread.shutdown(wait=False)
        if self.broker is not None:
            self.broker.stop()
        if self.pg is not None:
            await asyncio.to_thread(self.pg.remove)
        for ns in self.netns:
            ns.remove()
        if self.args.keep or self.keep:
            print(f"run {self.index}: files kept in {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# -- the whole -----------------------------------------------------------------------------------------------------


def skipped_kinds(kinds: list[str]) -> dict[str, str]:
    """Fault kinds this machine cannot inject, with the reason."""
    out = {}
    if "partition" in kinds and (problem := netns_problem()):
        out["partition"] = problem
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if problem := postgres_problem():
        raise SystemExit(f"cannot start PostgreSQL: {problem}")
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    if not kinds or set(kinds) - set(FAULTS):
        raise SystemExit(f"--faults: choose among {', '.join(FAULTS)}")
    skipped = skipped_kinds(kinds)
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    for i in range(args.runs):
        kind = kinds[i % len(kinds)]
        if kind in skipped:
            outcome = Outcome(kind, skipped=skipped[kind])
        else:
            t = time.monotonic()
            outcome = await Run(i, kind, args).run()
            outcome.detail["run_s"] = round(time.monotonic() - t, 1)
        runs.append(outcome.as_dict())
        print(f"run {i}: {orjson.dumps(runs[-1]).decode()}", file=sys.stderr, flush=True)
    done = [r for r in runs if "skipped" not in r]
    takeovers = sorted(r["takeover_s"] for r in done if r["takeover_s"] is not None)
    totals = {
        "lost": sum(r["lost"] for r in done),
        "duplicated": sum(r["duplicated"] for r in done),
        "unexpected": sum(r["unexpected"] for r in done),
        "takeover_p99_s": percentile(takeovers, 99),
    }
    result: dict[str, Any] = {
        "benchmark": "faults",
        "runs": len(done),
        "devices": args.devices,
        "scope": args.scope,
        "seed": args.seed,
        "workers": "2 x keng dispatch run",
        "faults": dict(Counter(r["fault"] for r in done)),
        **totals,
        "takeover_p50_s": percentile(takeovers, 50),
        "takeover_max_s": takeovers[-1] if takeovers else None,
        "runs_with_takeover": len(takeovers),
    }
    if skipped:
        result["skipped"] = {
            kind: f"{sum(r['fault'] == kind for r in runs)} runs: {why}" for kind, why in skipped.items()
        }
    for key, target in TARGETS.items():
        value = totals[key]
        result[f"{key}_target"] = target
        result[f"{key}_met"] = value is not None and value <= target
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["per_run"] = runs
    return result


def window(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(",")
    return float(lo), float(hi or lo)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"kinds taken in turn (default {','.join(FAULTS)})")
    parser.add_argument("--scope", choices=("wards", "district"), default="wards")
    parser.add_argument(
        "--fault-at",
        type=window,
        default=(0.1, 0.7),
        help="LO,HI: shares of the devices' playback, from when the wave's last dispatch reached one (default 0.1,0.7)",
    )
    parser.add_argument("--partition-s", type=float, default=6.0, help="how long the link is cut (default 6)")
    parser.add_argument(
        "--play-scale", type=float, default=0.15, help="simulated playback per second of audio (default 0.15: 2.5 s)"
    )
    parser.add_argument("--expiry-s", type=float, default=90.0, help="the emergency's lifetime (default 90)")
    parser.add_argument("--linger-s", type=float, default=3.0, help="wait for late plays after the close (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep each run's folder (logs)")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    report({k: v for k, v in result.items() if k != "per_run"}, False)  # each run's line went to stderr as it ended
    if args.json:
        print(orjson.dumps(result).decode())
