"""Synthetic district histories for tests and benchmarks: real domain commands on real aggregates, with event times
spread over the plan period (2022-2025), bulk-inserted through the application's own recorder.

Only for tests and `bench/`: every record it makes is `generated=True`. Event times come from a fake clock patched
into the library's timestamp hook while generating (single-threaded use only).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate, CanCreateTimestamp

from keng.adapters.store.app import Keng
from keng.domain.area import Area
from keng.domain.broadcast import Broadcast
from keng.domain.content import build_content
from keng.domain.dispatch import Dispatch
from keng.domain.endpoint import Endpoint
from keng.domain.staff import Staff

START = datetime(2022, 8, 2, 8, 0, tzinfo=UTC)


@contextmanager
def fake_clock(clock: list[datetime]) -> Iterator[None]:
    """Make every new event's timestamp `clock[0]` while inside."""
    original = CanCreateTimestamp.__dict__["create_timestamp"]
    CanCreateTimestamp.create_timestamp = staticmethod(lambda: clock[0])  # type: ignore[method-assign]
    try:
        yield
    finally:
        CanCreateTimestamp.create_timestamp = original  # type: ignore[method-assign]


class History:
    """Generates a plausible district history: inventory, flaps, faults, conversions, broadcasts with acks."""

    def __init__(self, app: Keng, *, seed: int = 1, wards: int = 5, groups: int = 6, span_days: int = 1200) -> None:
        self.app, self.rng = app, random.Random(seed)
        self.n_wards, self.n_groups, self.span = wards, groups, timedelta(days=span_days)
        self.clock = [START]
        self.pending: list[Aggregate] = []
        self.endpoints: list[Endpoint] = []
        self.staff: dict[str, Staff] = {}
        self.written = 0

    def _save(self, *aggs: Aggregate) -> None:
        self.pending.extend(aggs)

    def flush(self) -> int:
        events = sorted((e for a in self.pending for e in a.collect_events()), key=lambda e: e.timestamp)
        self.pending = []
        if events:
            self.app.recorder.insert_events([self.app.mapper.to_stored_event(e) for e in events])
        self.written += len(events)
        return len(events)

    def setup(self) -> None:
        """District, wards, groups, endpoints and staff."""
        rng = self.rng
        district = Area.register(
            code="021", name="Quận mẫu", level="district", parent=None, generated=True, by="system"
        )
        self._save(district)
        for code, roles in (("admin", ["admin"]), ("lan", ["drafter"]), ("hung", ["approver"]), ("mai", ["auditor"])):
            self.staff[code] = Staff.enrol(handle=code, name=code.title(), roles=roles, wards=[], by="system")
        for i in range(6):
            self.staff[f"cb{i}"] = Staff.enrol(
                handle=f"cb{i}", name=f"Cán bộ {i}", roles=["drafter"], wards=[], by="admin"
            )
        self._save(*self.staff.values())
        for n in (1, 2):
            self._endpoint(f"021-LED{n}", "eboard", "021", None)
        for w in range(self.n_wards):
            ward = Area.register(
                code=f"W{w}", name=f"Phường {w}", level="ward", parent=district, generated=True, by="system"
            )
            self._save(ward)
            self._endpoint(f"W{w}-WEB", "portal", ward.code, None)
            for g in range(self.n_groups):
                group = Area.register(code=f"W{w}-G{g}", name=f"TDP {g}", level="group", parent=ward, generated=True,
                                      by="system")  # fmt: skip
                self._save(group)
                if rng.random() < 0.7:
                    self._endpoint(f"{group.code}-FM", "fm-speaker", ward.code, group.code)
                if rng.random() < 0.6:
                    self._endpoint(f"{group.code}-IP", "ip-speaker", ward.code, group.code)
                if rng.random() < 0.4:
                    self._endpoint(f"{group.code}-EB", "eboard", ward.code, group.code)
        self.flush()

    def _endpoint(self, code: str, kind: str, ward: str, group: str | None) -> None:
        rng = self.rng
        installed = date(rng.randint(2010, 2022), rng.randint(1, 12), 1)
        condition = rng.choice(["good", "good", "good", "degraded", "broken"])
        e = Endpoint.register(
            code=code, kind=kind, ward=ward, group=group, technology="synthetic", installed_on=installed,
            condition=condition, generated=True, by="system",
        )  # fmt: skip
        self.endpoints.append(e)
        self._save(e)

    def run(self, events: int, flush_every: int = 20_000) -> int:
        """Generate at least `events` events in total (counting setup), flushing in chunks."""
        step = self.span / max(events, 1)
        with fake_clock(self.clock):
            if not self.written:
                self.setup()
            since_flush = 0
            while self.written + since_flush < events:
                self.clock[0] += step
                since_flush += self.step()
                if since_flush >= flush_every:
                    self.flush()
                    since_flush = 0
            self.flush()
        return self.written

    def step(self) -> int:
        """One random happening; returns the number of events it made."""
        r, rng = self.rng.random(), self.rng
        e = rng.choice(self.endpoints)
        if e.decommissioned:
            return 0
        if r < 0.75:
            changed = e.went_offline("timeout") if e.online else e.came_online()
            self._save(e)
            return int(changed)
        if r < 0.85:
            if e.condition == "good":
                e.report_fault("no audio", severity=rng.choice(["degraded", "broken"]), by="lan")
            else:
                e.repair(by="lan")
            self._save(e)
            return 1
        if r < 0.87 and e.kind == "fm-speaker":
            e.convert_to_ip(technology="ip-4g", by="admin")
            self._save(e)
            return 1
        if r < 0.89:
            member = self.staff[f"cb{rng.randrange(6)}"]
            member.complete_training("Vận hành đài IP", on=self.clock[0].date(), by="admin")
            self._save(member)
            return 1
        return self.broadcast()

    def broadcast(self) -> int:
        rng, now = self.rng, self.clock[0]
        ward = f"W{rng.randrange(self.n_wards)}"
        content = build_content(
            title="Thông báo",
            text="Nội dung thông báo mẫu",
            priority=rng.choice(["emergency", "priority", "normal"]),
            target_areas=[ward],
            scope=[ward],
            now=now,
            drill=rng.random() < 0.2,
        )
        b = Broadcast.draft(content, by=self.staff["lan"])
        n = 1
        if rng.random() < 0.1:
            self._save(b)
            return n
        b.submit(by=self.staff["lan"])
        b.approve(by=self.staff["hung"], now=now)
        b.record_render(channel="speaker", asset_hash="ab" * 32, duration_s=12.0, engine="espeak-ng")
        dispatch_id = b.open_dispatch(now=now)
        targets = [e.code for e in self.endpoints if e.ward == ward and e.commandable]
        d = Dispatch.open(broadcast_id=b.id, wave=1, priority=b.priority, targets=targets, expires_at=b.expires_at,
                          drill=b.drill)  # fmt: skip
        assert d.id == dispatch_id
        acks: list[dict[str, Any]] = []
        for code in targets:
            if rng.random() < 0.9:
                at = now + timedelta(milliseconds=rng.randint(50, 3000))
                acks.append({"endpoint": code, "state": "received", "at": at.isoformat()})
                final = "played" if rng.random() < 0.93 else "failed"
                acks.append({"endpoint": code, "state": final, "at": (at + timedelta(seconds=20)).isoformat()})
        for i in range(0, len(acks), 50):
            d.record_acks(acks[i : i + 50])
        d.close({"targeted": len(targets)})
        b.complete({"waves": 1})
        self._save(b, d)
        return len(b.pending_events) + len(d.pending_events)
