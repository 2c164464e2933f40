"""The audit chain on a store written only by the running service: `keng serve` chains every event as it commits and
signs checkpoints by itself (on a timer, and on a clean stop), so `keng audit verify` catches a byte changed later by
anyone with access to the database, without any manual `keng audit seal`. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from keng.adapters.store.config import connect_kwargs, locate_store
from tests.keng_process import KengHome, keng_home

BODY = orjson.dumps(
    {
        "title": "Cảnh báo ngập úng",
        "text": "Mưa lớn, đề nghị bà con không đi qua hầm chui.",
        "priority": "emergency",
        "targets": {"areas": ["00598"]},
    }
)


@pytest.fixture(params=["sqlite", "postgres"])
def store_home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KengHome]:
    """The sample district in a fresh data directory, on SQLite or a fresh PostgreSQL schema, with one city source."""
    store = {} if request.param == "sqlite" else {"KENG_STORE": str(request.getfixturevalue("postgres_url"))}
    home = keng_home(tmp_path, **store)
    home.run("init", "--sample")
    yield home
    home.kill()


def audit(home: KengHome) -> dict[str, Any]:
    """`keng audit verify --json` as an auditor; the report."""
    done = home.run("audit", "verify", "--as", "mai.le", "--json", check=False)
    assert done.returncode in (0, 2), done.stderr
    report: dict[str, Any] = orjson.loads(done.stdout)
    return report


def flip_byte(home: KengHome, position: int) -> None:
    """Change one byte of a stored event from outside keng (sqlite3 or psycopg), as an intruder would."""
    location = locate_store(home.env.get("KENG_STORE"), home.data)
    if location.kind == "sqlite":
        con = sqlite3.connect(location.display)
        (state,) = con.execute("SELECT state FROM stored_events WHERE rowid = ?", (position,)).fetchone()
        con.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (_flipped(state), position))
        con.commit()
        con.close()
        return
    import psycopg

    table = f'"{location.env["POSTGRES_SCHEMA"]}".keng_events'
    with psycopg.connect(**connect_kwargs(location), autocommit=True) as con:  # type: ignore[arg-type, assignment]
        row = con.execute(f"SELECT state FROM {table} WHERE notification_id = %s", (position,)).fetchone()
        assert row is not None
        con.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s", (_flipped(row[0]), position))


def _flipped(state: bytes) -> bytes:
    changed = bytearray(state)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def test_a_byte_changed_after_a_clean_stop_is_named_by_verify_without_any_manual_seal(store_home: KengHome) -> None:
    home = store_home
    token = home.run("token", "create", "--staff", "hung.tran").stdout.split()[0]
    secret = home.run("integration", "add", "city-source", "--jurisdiction", "01").stdout.split()[0]
    before = audit(home)
    assert before["ok"] and before["chained"] == before["events"] == before["unsealed"] > 700  # CLI writes: chained
    client = home.serve()
    accepted = client.signed("/api/v1/hooks/city-source", BODY, secret, "chain-1")
    assert accepted.status == 202, accepted.body
    bid = accepted.json()["broadcast_id"]
    assert client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, token).status == 200
    deadline, state = time.time() + 30, "approved"
    while state == "approved" and time.time() < deadline:  # the dispatcher writes its events too
        time.sleep(0.2)
        state = client.json("GET", f"/api/v1/broadcasts/{bid}", None, token).json()["state"]
    assert home.stop() == 0, home.log.read_text()
    sealed = audit(home)
    assert sealed["ok"], sealed["findings"]
    assert sealed["unsealed"] == 0 and sealed["sealed"] == sealed["events"] > before["events"]
    first_written_by_service = before["events"] + 1
    flip_byte(home, first_written_by_service)
    done = home.run("audit", "verify", "--as", "mai.le", check=False)
    assert done.returncode == 2, done.stdout
    assert f"first bad position {first_written_by_service}" in done.stdout
    assert f"#{first_written_by_service}: stored event does not match its chain link" in done.stdout


def test_the_running_service_signs_its_own_and_cli_writes_within_the_interval(home: KengHome) -> None:
    home.env["KENG_AUDIT_SEAL_INTERVAL_S"] = "1"
    home.run("init", "--sample")
    secret = home.run("integration", "add", "city-source", "--jurisdiction", "01").stdout.split()[0]
    client = home.serve("--no-dispatcher")
    for i in range(2):
        assert client.signed("/api/v1/hooks/city-source", BODY, secret, f"timer-{i}").status == 202
        home.run("staff", "add", f"kiem.toan{i}", "--name", "Kiểm toán", "--role", "auditor", "--as", "admin")
        written = audit(home)["events"]
        deadline, report = time.time() + 10, audit(home)
        while (report["unsealed"] or report["events"] < written) and time.time() < deadline:
            time.sleep(0.3)
            report = audit(home)
        assert report["ok"] and report["unsealed"] == 0, report
        assert home.proc is not None and home.proc.poll() is None, "sealed while running, not at the stop"
    assert report["checkpoints"] >= 3  # at start, then one per round
    assert home.stop() == 0
