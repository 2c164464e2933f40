"""The chain is extended in the transaction that records the events, on SQLite and PostgreSQL: every committed event
has its link, a refused save leaves none, events written without the chain are linked by the next chained write,
writer processes running at once never fork it, and the sealer signs on its timer and every N events; while the
database is away it warns and retries, and only a failure that lasts is an error."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from keng.adapters.audit.chain import iter_chain, seal
from keng.adapters.audit.keys import Signer, load_or_create
from keng.adapters.audit.verify import Report, verify
from keng.adapters.readstore.sql import SqlDb, event_columns, fetch_tuples
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store, without_chain
from keng.adapters.store.errors import DuplicateRecord
from keng.runtime.workers.readmodels import events_table
from keng.runtime.workers.sealer import Sealer
from keng.services.access import enrol_by_system
from tests.servers import TempPostgres

WRITERS, EACH = 3, 40


def check(app: Keng, signer: Signer | None = None) -> Report:
    return verify(SqlDb.of_app(app), events_table(app), signer or Signer.generate())


def positions(app: Keng) -> list[int]:
    db = SqlDb.of_app(app)
    position, table = event_columns(db, events_table(app))
    return [int(r[0]) for r in fetch_tuples(db, f"SELECT {position} FROM {table} ORDER BY {position}")]


def enrol(app: Keng, handle: str) -> None:
    enrol_by_system(app, handle=handle, name="Kiểm toán viên", roles=["auditor"])


def test_every_committed_event_is_linked_by_the_transaction_that_recorded_it(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    for i in range(5):
        enrol(app, f"a{i}")
    report = check(app)
    assert report.ok and report.chained == report.events == 5 and report.unsealed == 5
    assert [p for p, _ in iter_chain(SqlDb.of_app(app))] == positions(app)


def test_a_refused_save_leaves_neither_events_nor_links(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    enrol(app, "a0")
    with pytest.raises(DuplicateRecord):
        enrol(app, "a0")
    enrol(app, "a1")
    report = check(app)
    assert report.ok and report.chained == report.events == 2


def test_events_written_without_the_chain_are_linked_by_the_next_chained_write(
    make_app: Callable[..., Keng], store_url: str, tmp_path: Path
) -> None:
    chained = make_app()
    enrol(chained, "a0")
    plain = Keng(env=without_chain(locate_store(store_url, tmp_path)))
    try:
        for i in range(3):
            enrol(plain, f"b{i}")
    finally:
        plain.close()
    gap = check(chained)
    assert gap.ok and gap.events == 4 and gap.chained == 1
    enrol(chained, "a1")
    report = check(chained)
    assert report.ok and report.chained == report.events == 5


def _write(store_url: str, data: str, writer: int, start: Any) -> None:
    app = Keng(env=locate_store(store_url, Path(data)).env)
    start.wait(300)  # all writers begin together, after their imports and connections (slow on a loaded CI machine)
    try:
        for i in range(EACH):
            enrol(app, f"w{writer}-{i}")
            if writer == 0 and i % 5 == 0:  # a manual `keng audit seal` at the same time
                seal(SqlDb.of_app(app), events_table(app), load_or_create(Path(data)), checkpoint_every=7)
            # A pause between commands, as between real writers: SQLite's busy handler backs off, and a writer that
            # commits without pause can keep the lock for its whole run (nothing would overlap, nothing be proved).
            time.sleep(0.005)
    finally:
        app.close()


def test_writer_processes_running_at_once_never_fork_the_chain(
    make_app: Callable[..., Keng], store_url: str, tmp_path: Path
) -> None:
    app = make_app()
    enrol(app, "admin")  # creates the tables before the writers race
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(WRITERS)
    writers = [ctx.Process(target=_write, args=(store_url, str(tmp_path), w, start)) for w in range(WRITERS)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(360)
    assert [p.exitcode for p in writers] == [0] * WRITERS
    report = check(app, load_or_create(tmp_path))
    assert report.ok, report.findings
    assert report.chained == report.events == 1 + WRITERS * EACH and report.checkpoints >= 5
    assert [p for p, _ in iter_chain(SqlDb.of_app(app))] == positions(app)
    handles = [str(getattr(e, "handle", "admin")) for _, e in app.read_events()]
    order = [h.split("-")[0] for h in handles if h != "admin"]
    switches = sum(a != b for a, b in pairwise(order))
    assert switches > WRITERS, f"the writers did not overlap ({order}): the test proved nothing"


def test_the_sealer_signs_after_its_interval_or_as_soon_as_every_n_events_wait(make_app: Callable[..., Keng]) -> None:
    app, now, signer = make_app(), [0.0], Signer.generate()
    sealer = Sealer(app, signer, interval_s=60, every=10, clock=lambda: now[0])
    assert sealer.step() == 0  # nothing recorded yet
    for i in range(3):
        enrol(app, f"a{i}")
    now[0] = 59.0
    assert sealer.step() == 0 and check(app, signer).unsealed == 3
    now[0] = 60.0
    assert sealer.step() == 3 and check(app, signer).unsealed == 0
    for i in range(10):
        enrol(app, f"b{i}")
    now[0] = 61.0  # one second later: ten events are waiting, which is enough
    assert sealer.step() == 10
    report = check(app, signer)
    assert report.ok and report.unsealed == 0 and report.sealed == 13 and report.checkpoints == 3


async def test_the_sealer_warns_while_the_database_is_away_and_errs_only_when_it_stays_away(
    temp_postgres: TempPostgres, tmp_path: Path
) -> None:
    app, signer = Keng(env=locate_store(temp_postgres.url(), tmp_path).env), Signer.generate()
    sealer = Sealer(app, signer, interval_s=0)
    enrol(app, "a0")

    def failures(since: int = 0) -> list[str]:
        return [r["log_level"] for r in logs[since:] if r["event"] == "audit.checkpoint_failed"]

    async def until(predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)

    with capture_logs() as logs:
        task = asyncio.create_task(sealer.run(poll_s=0.05, patience_s=1.0))
        try:
            await until(lambda: check(app, signer).unsealed == 0)
            await asyncio.to_thread(temp_postgres.stop, "immediate")  # a crash: every connection cut
            # (a round blocks up to the store's 5 s connect timeout once the pool has no connection left)
            await until(lambda: "error" in failures())
            await asyncio.to_thread(temp_postgres.start)
            await asyncio.to_thread(enrol, app, "a1")
            await until(lambda: check(app, signer).unsealed == 0)  # sealing again once the server is back
            back = len(logs)
            await asyncio.to_thread(temp_postgres.stop, "immediate")  # away again
            await until(lambda: bool(failures(back)))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            app.close()
        away = failures()[: len(failures()) - len(failures(back))]
        first_error = away.index("error")
        assert first_error > 0 and set(away[:first_error]) == {"warning"}, away  # warnings while it was brief
        assert set(away[first_error:]) == {"error"}, away
        assert set(failures(back)) == {"warning"}  # a new outage starts with warnings again


def _open(store_url: str, data: str, start: Any) -> None:
    start.wait(120)  # every process creates its tables at the same moment
    Keng(env=locate_store(store_url, Path(data)).env).close()


def test_processes_that_open_a_new_postgres_store_at_once_all_start(postgres_url: str, tmp_path: Path) -> None:
    # Concurrent IF NOT EXISTS DDL can be refused by PostgreSQL ("tuple concurrently updated"); the recorder retries.
    ctx = mp.get_context("spawn")
    for _ in range(3):
        start = ctx.Barrier(6)
        openers = [ctx.Process(target=_open, args=(postgres_url, str(tmp_path), start)) for _ in range(6)]
        for p in openers:
            p.start()
        for p in openers:
            p.join(180)
        assert [p.exitcode for p in openers] == [0] * 6
