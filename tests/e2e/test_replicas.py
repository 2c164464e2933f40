"""Two `keng serve` API replicas on one PostgreSQL store: what one accepts, the other's read models fold within
moments without being asked (the library's subscription, LISTEN/NOTIFY), and its reports answer fresh."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.runtime.workers.readmodels import live_store
from tests.keng_process import KengHome, keng_home


def test_a_replica_folds_what_another_accepted_without_being_asked(tmp_path: Path, postgres_url: str) -> None:
    first = keng_home(tmp_path / "data", KENG_STORE=postgres_url)
    first.run("init", "--sample")
    secret = first.run("integration", "add", "city-source", "--jurisdiction", "01").stdout.split()[0]
    token = first.run("token", "create", "--staff", "mai.le").stdout.split()[0]
    second = KengHome(first.data, dict(first.env))  # the same data directory and store, a process of its own
    app = Keng(env=locate_store(postgres_url, tmp_path).env)
    store = live_store(app)
    try:
        a = first.serve("--no-dispatcher")
        b = second.serve("--no-dispatcher")
        body = orjson.dumps(
            {
                "title": "Thông báo",
                "text": "Lịch tiêm chủng tuần này.",
                "priority": "normal",
                "targets": {"areas": ["00598"]},
            }
        )
        reply = a.signed("/api/v1/hooks/city-source", body, secret, "replica-1")
        assert reply.status == 202, reply.body
        accepted = app.max_position()
        deadline = time.time() + 10
        while store.position() < accepted:  # nobody queries: the followers fold it
            assert time.time() < deadline, (store.position(), accepted, second.log.read_text()[-2000:])
            time.sleep(0.1)
        folds = [
            line
            for line in second.log.read_text().splitlines() + first.log.read_text().splitlines()
            if "follow_failed" in line
        ]
        assert folds == []
        report = b.request("GET", "/api/v1/reports/board", token=token)
        assert report.status == 200, report.body
        assert reply.json()["broadcast_id"] in report.body.decode()
    finally:
        first.kill()
        second.kill()
        store.close()
        app.close()
