"""The same persistence suite on SQLite (a file) and PostgreSQL (a real server, fresh schema)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

import pytest

from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.adapters.store.errors import ConcurrencyConflict, DuplicateRecord
from keng.adapters.store.sqlite import KengSQLiteFactory
from keng.domain.broadcast import Broadcast
from keng.domain.errors import UnknownArea
from keng.domain.ids import sourced_broadcast_id
from keng.services import access, broadcasts

DRAFT = {"title": "Thông báo phun thuốc muỗi", "text": "Phun thuốc phòng sốt xuất huyết.", "priority": "normal"}


def _submitted(app: Keng) -> UUID:
    bid = broadcasts.draft(app, by="lan.nguyen", target_areas=["00595"], **DRAFT)
    broadcasts.submit(app, bid, by="lan.nguyen")
    return bid


def test_round_trip_reconstructs_the_broadcast_in_a_new_application(
    sample_app: Keng, make_app: Callable[..., Keng]
) -> None:
    bid = _submitted(sample_app)
    broadcasts.approve(sample_app, bid, by="hung.tran")
    again = make_app().broadcast(bid)
    assert (again.state, again.title, again.scope, again.approvals[0]["by"]) == (
        "approved",
        DRAFT["title"],
        ["00595"],
        "hung.tran",
    )
    assert again.expires_at.tzinfo is not None


def test_fifty_concurrent_approvals_of_one_version_exactly_one_succeeds(
    sample_app: Keng, make_app: Callable[..., Keng]
) -> None:
    bid = _submitted(sample_app)
    for i in range(50):
        access.enrol_staff(sample_app, handle=f"approver{i:02d}", name=f"Duyệt {i}", roles=["approver"], by="admin")
    loaded = [sample_app.broadcast(bid) for _ in range(50)]
    versions = {b.version for b in loaded}
    assert len(versions) == 1
    approvers = [sample_app.staff(f"approver{i:02d}") for i in range(50)]
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def approve(b: Broadcast, who: object) -> None:
        b.approve(by=who, now=sample_app.clock())  # type: ignore[arg-type]
        barrier.wait()
        try:
            sample_app.save_changes(b)
            result = "ok"
        except ConcurrencyConflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=approve, args=(b, a)) for b, a in zip(loaded, approvers, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * 49 + ["ok"]
    stored = make_app().broadcast(bid)
    assert len(stored.approvals) == 1 and stored.version == versions.pop() + 1


def test_duplicate_source_id_conflicts_and_writes_nothing(sample_app: Keng) -> None:
    first = broadcasts.draft(
        sample_app,
        by="lan.nguyen",
        target_areas=["00595"],
        source_kind="city-source",
        source_ref="HN-2026-0001",
        **DRAFT,
    )
    assert first == sourced_broadcast_id("city-source", "HN-2026-0001")
    before = sample_app.max_position()
    with pytest.raises(DuplicateRecord, match="already exists; nothing was written"):
        broadcasts.draft(
            sample_app,
            by="lan.nguyen",
            target_areas=["00598"],
            source_kind="city-source",
            source_ref="HN-2026-0001",
            title="Khác",
            text="Nội dung khác",
            priority="priority",
        )
    assert sample_app.max_position() == before
    assert sample_app.broadcast(first).title == DRAFT["title"]


def test_unknown_target_area_is_refused_and_nothing_is_written(sample_app: Keng) -> None:
    before = sample_app.max_position()
    with pytest.raises(UnknownArea, match="99999"):
        broadcasts.draft(sample_app, by="lan.nguyen", target_areas=["99999"], **DRAFT)
    assert sample_app.max_position() == before


def test_global_log_lists_every_event_in_order(sample_app: Keng) -> None:
    start = sample_app.max_position()
    bid = _submitted(sample_app)
    broadcasts.approve(sample_app, bid, by="hung.tran")
    events = list(sample_app.read_events(since=start))
    assert [type(e).__qualname__ for _, e in events] == [
        "Broadcast.Drafted",
        "Broadcast.SubmittedForApproval",
        "Broadcast.Approved",
    ]
    assert [p for p, _ in events] == sorted(p for p, _ in events)
    assert [e.by for _, e in events] == ["lan.nguyen", "lan.nguyen", "hung.tran"]


def test_sqlite_runs_with_synchronous_full_and_wal(tmp_path: Path) -> None:
    app = Keng(env=locate_store(None, tmp_path).env)
    try:
        factory = app.factory
        assert isinstance(factory, KengSQLiteFactory)
        assert factory.synchronous_level() == 2
        assert factory.journal_mode() == "wal"
        # every pooled connection, not just the first, runs FULL
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(lambda _: factory.synchronous_level(), range(16))) == {2}
    finally:
        app.close()


def test_sqlite_checkpoints_in_the_background_not_inside_commits(tmp_path: Path) -> None:
    import time

    from keng.services.inventory import install_sample

    app = Keng(env=locate_store(None, tmp_path).env)
    try:
        with app.factory.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute("PRAGMA wal_autocheckpoint;")
            assert cursor.fetchone()[0] == 0  # no checkpoint inside a commit
        before = (tmp_path / "keng.db").stat().st_size
        install_sample(app)  # a few hundred kilobytes, all of it first written to the WAL
        time.sleep(1.5)
        # Only a checkpoint moves pages into the database file; with commits not checkpointing, the background
        # thread is what did it, while the application kept its connections open.
        assert (tmp_path / "keng.db").stat().st_size > before + 100_000
    finally:
        app.close()
