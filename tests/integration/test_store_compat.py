"""A store written before keng moved under one import root (2026-11: topics `domain.x:Class`) reads, verifies and
grows as before; new events are stored under the same topics."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from eventsourcing.utils import resolve_topic

from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.broadcast import Broadcast
from keng.domain.staff import Staff
from keng.services import access

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "store-2026-11"


def _verify(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keng.runtime.cli", "--data", str(data), "audit", "verify", "--as", "admin"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_store_from_before_the_keng_import_root_reads_verifies_and_keeps_its_topics(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    assert _verify(tmp_path).returncode == 0
    app = Keng(env=locate_store(f"sqlite:///{tmp_path / 'keng.db'}", tmp_path).env)
    try:
        assert app.staff("lan").roles == ["drafter"]
        broadcasts = list(app.aggregates_of(Broadcast.Drafted).values())
        assert [b.title for b in broadcasts] == ["Thử"]
        assert app.broadcast(broadcasts[0].id).state == "approved"
        assert {a.code for a in app.areas()} == {"021", "00595", "00595-T01"}
        access.enrol_staff(app, handle="mai", name="Mai", roles=["auditor"], by="admin")
        assert app.staff("mai").roles == ["auditor"]
    finally:
        app.close()
    with sqlite3.connect(tmp_path / "keng.db") as db:
        topics = {row[0] for row in db.execute("SELECT topic FROM stored_events")}
    assert "domain.staff:Staff.Enrolled" in topics and not any(t.startswith("keng.") for t in topics)
    assert resolve_topic("domain.staff:Staff.Enrolled") is Staff.Enrolled
    verified = _verify(tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
