"""Read models: equal to a fresh rebuild after random histories, as-of replay equal to the live model as it stood,
and a crash mid-batch neither applies an event twice nor skips one. On SQLite and PostgreSQL."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keng.adapters.readstore.sql import SqlDb
from keng.adapters.readstore.store import ReadStore
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.projections.runner import run, until
from tests.synthetic import History


def live_store(app: Keng) -> ReadStore:
    """The live read store beside the events (same database on PostgreSQL, its own file on SQLite)."""
    db = SqlDb.of_app(app)
    if db.kind == "postgres":
        return ReadStore(db)
    return ReadStore.sqlite_file(Path(db.datastore.pool.db_name).with_suffix(".rm.db"))


def rebuilt(app: Keng, directory: Path, name: str = "fresh") -> dict[str, Any]:
    store = ReadStore.sqlite_file(directory / f"{name}.db")
    run(app.read_events(0), store, batch_size=997)
    try:
        return store.dump()
    finally:
        store.close()


def normalise(dump: dict[str, Any]) -> dict[str, Any]:
    return {**dump, "timeline": sorted(tuple(str(c) for c in row) for row in dump["timeline"])}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    chunks=st.lists(st.integers(1, 400), min_size=1, max_size=5),
    batch=st.integers(1, 300),
)
def test_every_read_model_equals_a_fresh_rebuild_after_random_histories(
    seed: int, chunks: list[int], batch: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        app = Keng(env=locate_store(f"sqlite:///{d / 'ev.db'}", d).env)
        history, live = History(app, seed=seed, wards=3, groups=3), live_store(app)
        target = 0
        for n in chunks:
            target += n
            history.run(history.written + n)
            run(app.read_events(live.position()), live, batch_size=batch)
        assert normalise(live.dump()) == normalise(rebuilt(app, d))
        live.close()
        app.close()


def test_live_models_on_both_stores_equal_a_rebuild(make_app: Callable[..., Keng], tmp_path: Path) -> None:
    app = make_app()
    history, live = History(app, seed=3, wards=3, groups=4), live_store(app)
    for n in (300, 900, 2000):
        history.run(n)
        run(app.read_events(live.position()), live, batch_size=128)
    assert live.position() == app.max_position()
    assert normalise(live.dump()) == normalise(rebuilt(app, tmp_path))


@settings(max_examples=10, deadline=None)
@given(fractions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
def test_as_of_replay_equals_the_live_model_as_it_stood_then(history_app: Any, fractions: list[float]) -> None:
    app, directory, times = history_app
    for f in sorted(fractions):
        instant = times[0] + (times[-1] - times[0]) * f
        upto = max((p for p, t in enumerate(times, start=1) if t <= instant), default=0)
        live = ReadStore.sqlite_file(directory / f"live-{uuid.uuid4().hex}.db")
        run(app.read_events(0, limit=upto), live, batch_size=211) if upto else None
        replay = ReadStore.sqlite_file(directory / f"asof-{uuid.uuid4().hex}.db")
        run(until(app.read_events(0), instant), replay)
        assert normalise(replay.dump()) == normalise(live.dump())
        live.close()
        replay.close()


@pytest.fixture(scope="module")
def history_app() -> Iterator[tuple[Keng, Path, list[Any]]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        app = Keng(env=locate_store(f"sqlite:///{d / 'ev.db'}", d).env)
        History(app, seed=11, wards=3, groups=3).run(1500)
        yield app, d, [e.timestamp for _, e in app.read_events(0)]
        app.close()


class Crash(Exception):
    pass


def crashing(events: Iterator[tuple[int, Any]], after: int) -> Iterator[tuple[int, Any]]:
    for i, item in enumerate(events):
        if i == after:
            raise Crash
        yield item


def test_a_crash_mid_batch_then_restart_applies_no_event_twice_and_skips_none(
    make_app: Callable[..., Keng], tmp_path: Path
) -> None:
    app = make_app()
    History(app, seed=5, wards=3, groups=3).run(3000)
    live = live_store(app)
    with pytest.raises(Crash):
        run(crashing(app.read_events(0), after=1234), live, batch_size=500)
    assert live.position() == 1000  # the half-done batch left nothing behind
    original = live.tracking._insert_tracking  # type: ignore[attr-defined]
    calls = []

    def fail_once(cursor: Any, tracking: Any) -> None:
        calls.append(tracking.notification_id)
        if len(calls) == 2:
            raise Crash  # after the documents and rows were written in this transaction
        original(cursor, tracking)

    live.tracking._insert_tracking = fail_once  # type: ignore[attr-defined]
    with pytest.raises(Crash):
        run(app.read_events(live.position()), live, batch_size=500)
    assert live.position() == 1500
    live.tracking._insert_tracking = original  # type: ignore[attr-defined]
    run(app.read_events(live.position()), live, batch_size=500)
    dump = live.dump()
    assert dump["position"] == app.max_position()
    positions = [row[0] for row in dump["timeline"]]
    assert sorted(set(positions)) == sorted({p for p, _ in app.read_events(0) if p in set(positions)})
    assert normalise(dump) == normalise(rebuilt(app, tmp_path))
