"""A small district on a real SQLite file, with a clock the test moves: cheap set-up for the services' tests (two
wards, one group, one loudspeaker, an admin, district-wide and ward staff)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.services.access import SYSTEM, enrol_by_system
from keng.services.inventory import bootstrap_admin, load_rows

START = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
WARD_A, WARD_B = "00595", "00598"
ROWS = [
    {"record": "district", "code": "021", "name": "Quận Bắc Từ Liêm"},
    {"record": "ward", "code": WARD_A, "name": "Phường Thượng Cát", "parent": "021"},
    {"record": "ward", "code": WARD_B, "name": "Phường Liên Mạc", "parent": "021"},
    {"record": "group", "code": f"{WARD_A}-T01", "name": "Tổ dân phố số 1", "parent": WARD_A},
    {"record": "endpoint", "code": f"{WARD_A}-T01-IP1", "parent": f"{WARD_A}-T01", "kind": "ip-speaker"},
]
STAFF: list[dict[str, Any]] = [
    {"handle": "lan", "name": "Nguyễn Thị Lan", "roles": ["drafter"], "wards": []},
    {"handle": "hung", "name": "Trần Văn Hùng", "roles": ["approver"], "wards": []},
    {"handle": "minh", "name": "Phạm Đức Minh", "roles": ["drafter", "approver"], "wards": []},
    {"handle": "tuan", "name": "Đỗ Anh Tuấn", "roles": ["drafter"], "wards": [WARD_A]},
    {"handle": "ha", "name": "Vũ Thu Hà", "roles": ["approver"], "wards": [WARD_B]},
    {"handle": "mai", "name": "Lê Thị Mai", "roles": ["auditor"], "wards": [WARD_B]},
]


class Clock:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def open_district(data_dir: Path, clock: Clock) -> Keng:
    """An application on `data_dir/keng.db` holding the small district and its staff."""
    app = Keng(env=locate_store(f"sqlite:///{data_dir / 'keng.db'}", data_dir).env, clock=clock)
    bootstrap_admin(app)
    located = [(f"row {i}", dict(r)) for i, r in enumerate(ROWS, start=1)]
    load_rows(app, located, by=SYSTEM)
    for member in STAFF:
        enrol_by_system(app, **member)
    return app
