"""Work leases in the event store's own database, so that several keng workers (`keng serve`, `keng dispatch run`) on
one store share the dispatch work and take over from one that died.

The work is cut into a fixed number of slots (`KENG_PARTITIONS`); a slot is held by at most one worker at a time,
until its lease expires. Every worker calls `tick` about twice a second; one transaction then:

1. marks the worker alive (`keng_workers`) and forgets workers not seen within the lease time;
2. renews the leases it holds and gives back the ones its caller has stopped working on (`releasing`);
3. works out its fair share: the slots spread evenly over the live workers, ordered by start (the first ones get one
   more when they do not divide evenly), so every worker computes the same shares and nothing oscillates;
4. takes free or expired slots up to its share, and names the slots it holds beyond its share so that its caller
   stops working on them first and gives them back at the next tick (a worker that joins so gets its share without
   two workers ever working on one slot).

Time is the database's clock (PostgreSQL's `clock_timestamp()`), so workers on several machines agree on expiry
whatever their own clocks say; SQLite (one machine) reads the system clock. A worker stops working on its slots on its
own when it could not renew them for the lease time less a margin (`Partitions` in runtime/dispatch/partitions.py),
before any other worker may take them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import structlog

from keng.adapters.readstore.sql import SqlDb

log = structlog.get_logger(__name__)
LEASES = "keng_leases"
WORKERS = "keng_workers"
_NOW = {
    "postgres": "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_REAL = {"postgres": "DOUBLE PRECISION", "sqlite": "REAL"}


def slot_of(key: str, slots: int) -> int:
    """The slot a partition key (a ward code, say) falls in: the same in every process and on every machine."""
    return zlib.crc32(key.encode()) % slots


def shares(workers: list[str], slots: int) -> dict[str, int]:
    """How many slots each live worker (in start order) should hold: `slots` spread evenly, the first ones getting
    one more when they do not divide."""
    if not workers:
        return {}
    base, extra = divmod(slots, len(workers))
    return {w: base + (1 if i < extra else 0) for i, w in enumerate(workers)}


@dataclass(frozen=True)
class Tick:
    """What one tick found: the slots this worker holds (renewed or taken now), those it should stop working on and
    give back, the ones it had and lost (another worker took them after its lease expired), and the live workers."""

    held: frozenset[int]
    surplus: frozenset[int]
    taken: frozenset[int] = field(default_factory=frozenset)
    lost: frozenset[int] = field(default_factory=frozenset)
    workers: tuple[str, ...] = ()


class Leases:
    """The lease tables of one database, seen by one worker."""

    def __init__(self, db: SqlDb, *, worker: str, slots: int, ttl_s: float) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.db = db
        self.worker = worker
        self.slots = slots
        self.ttl_s = ttl_s
        self.now = _NOW[db.kind]
        self.held: frozenset[int] = frozenset()

    @classmethod
    def of(cls, app: object, *, worker: str, slots: int, ttl_s: float) -> Leases:
        """Leases in the database of an application's event store."""
        from eventsourcing.application import Application

        assert isinstance(app, Application)
        return cls(SqlDb.of_app(app), worker=worker, slots=slots, ttl_s=ttl_s)

    def ensure(self) -> None:
        """Create the tables (idempotent) and one row per slot. A store once run with fewer slots gains rows; one run
        with more keeps its extra rows unused (the partition of a key is `slot_of(key, slots)` with today's number,
        so every worker of a deployment must run with the same `KENG_PARTITIONS`)."""
        db, real = self.db, _REAL[self.db.kind]
        statements = [
            f"CREATE TABLE IF NOT EXISTS {db.table(LEASES)} (slot INTEGER PRIMARY KEY, holder TEXT NOT NULL DEFAULT '',"
            f" expires {real} NOT NULL DEFAULT 0, epoch BIGINT NOT NULL DEFAULT 0)",
            f"CREATE TABLE IF NOT EXISTS {db.table(WORKERS)} (worker TEXT PRIMARY KEY, started {real} NOT NULL,"
            f" seen {real} NOT NULL)",
        ]
        for attempt in range(5):
            try:
                with db.transaction(commit=True) as c:
                    for statement in statements:
                        db.execute(c, statement)
                    db.executemany(
                        c,
                        f"INSERT INTO {db.table(LEASES)} (slot) VALUES (?) ON CONFLICT (slot) DO NOTHING",
                        [(s,) for s in range(self.slots)],
                    )
                return
            except Exception as e:  # two workers creating the tables at once: PostgreSQL's catalog races
                if attempt == 4 or not any(s in str(e) for s in ("already exists", "concurrently", "duplicate key")):
                    raise
                log.info("leases.create_retried", attempt=attempt + 1, reason=str(e))

    def tick(self, releasing: frozenset[int] = frozenset()) -> Tick:
        """One round (module docstring): returns what this worker holds now."""
        db, leases, workers, now, ttl = self.db, self.db.table(LEASES), self.db.table(WORKERS), self.now, self.ttl_s
        me = self.worker
        with db.transaction(commit=True) as c:
            db.execute(
                c,
                f"INSERT INTO {workers} (worker, started, seen) VALUES (?, {now}, {now}) "
                f"ON CONFLICT (worker) DO UPDATE SET seen = excluded.seen",
                (me,),
            )
            db.execute(c, f"DELETE FROM {workers} WHERE seen < {now} - ?", (ttl,))
            db.execute(c, f"SELECT worker FROM {workers} ORDER BY started, worker")
            live = [row[0] if not isinstance(row, dict) else row["worker"] for row in c.fetchall()]
            if releasing:
                marks = ",".join("?" for _ in releasing)
                db.execute(
                    c,
                    f"UPDATE {leases} SET holder = '', expires = 0 WHERE holder = ? AND slot IN ({marks})",
                    (me, *sorted(releasing)),
                )
            db.execute(
                c,
                f"UPDATE {leases} SET expires = {now} + ? WHERE holder = ? AND expires >= {now} AND slot < ?",
                (ttl, me, self.slots),
            )
            db.execute(
                c, f"SELECT slot FROM {leases} WHERE holder = ? AND expires >= {now} AND slot < ?", (me, self.slots)
            )
            held = {_first(row) for row in c.fetchall()}
            share = shares(live, self.slots).get(me, 0)
            taken: set[int] = set()
            if len(held) < share:
                lock = " FOR UPDATE SKIP LOCKED" if db.kind == "postgres" else ""
                db.execute(
                    c,
                    f"SELECT slot FROM {leases} WHERE (holder = '' OR expires < {now}) AND slot < ? "
                    f"ORDER BY slot LIMIT ?{lock}",
                    (self.slots, share - len(held)),
                )
                free = [_first(row) for row in c.fetchall()]
                if free:
                    marks = ",".join("?" for _ in free)
                    db.execute(
                        c,
                        f"UPDATE {leases} SET holder = ?, expires = {now} + ?, epoch = epoch + 1 "
                        f"WHERE slot IN ({marks}) AND (holder = '' OR expires < {now})",
                        (me, ttl, *free),
                    )
                    db.execute(
                        c,
                        f"SELECT slot FROM {leases} WHERE holder = ? AND slot IN ({marks}) AND expires >= {now}",
                        (me, *free),
                    )
                    taken = {_first(row) for row in c.fetchall()}
        held |= taken
        surplus = sorted(held, reverse=True)[: max(0, len(held) - share)] if live else []
        result = Tick(
            held=frozenset(held),
            surplus=frozenset(surplus),
            taken=frozenset(taken),
            lost=self.held - held - releasing,
            workers=tuple(live),
        )
        self.held = result.held
        return result

    def release_all(self) -> None:
        """Give every slot back and leave (a clean stop): the others take the slots at their next tick."""
        db = self.db
        with db.transaction(commit=True) as c:
            db.execute(c, f"UPDATE {db.table(LEASES)} SET holder = '', expires = 0 WHERE holder = ?", (self.worker,))
            db.execute(c, f"DELETE FROM {db.table(WORKERS)} WHERE worker = ?", (self.worker,))
        self.held = frozenset()

    def holders(self) -> dict[int, str]:
        """Slot -> worker for every slot under a live lease (for `keng dispatch status`, tests and the harness)."""
        db = self.db
        with db.transaction(commit=False) as c:
            db.execute(
                c,
                f"SELECT slot, holder FROM {db.table(LEASES)} "
                f"WHERE holder <> '' AND expires >= {self.now} AND slot < ?",
                (self.slots,),
            )
            return {_first(row): _second(row) for row in c.fetchall()}


@dataclass(frozen=True)
class WorkerSeen:
    """A live worker as the lease tables show it: when it started and last renewed (seconds ago), its slots."""

    worker: str
    started_s_ago: float
    seen_s_ago: float
    slots: tuple[int, ...]


def workers_seen(leases: Leases) -> list[WorkerSeen]:
    """Every worker seen within the lease time, in start order, with the slots it holds (`keng dispatch workers`)."""
    db, now = leases.db, leases.now
    with db.transaction(commit=False) as c:
        db.execute(
            c,
            f"SELECT worker, {now} - started AS up, {now} - seen AS quiet FROM {db.table(WORKERS)} "
            f"WHERE seen >= {now} - ? ORDER BY started, worker",
            (leases.ttl_s,),
        )
        rows = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in c.fetchall()]
    held: dict[str, list[int]] = {}
    for slot, holder in sorted(leases.holders().items()):
        held.setdefault(holder, []).append(slot)
    return [WorkerSeen(str(w), float(a), float(b), tuple(held.get(str(w), []))) for w, a, b in rows]


def _first(row: object) -> int:
    if isinstance(row, dict):
        return int(next(iter(row.values())))
    return int(row[0])  # type: ignore[index]


def _second(row: object) -> str:
    if isinstance(row, dict):
        return str(list(row.values())[1])
    return str(row[1])  # type: ignore[index]
