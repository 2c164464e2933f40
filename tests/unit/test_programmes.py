"""Programmes: several scheduled times per broadcast, a ward's slots and quiet hours, the order of priority items,
recurring programmes across a simulated week (the dispatcher's model on a real store, driven by a fixed clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest

from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.broadcast import Broadcast
from keng.domain.errors import DomainError, NotAuthorised, SelfApprovalRefused
from keng.domain.programme import Programme, parse_quiet, parse_slots
from keng.domain.recurring import RecurringProgramme
from keng.domain.values import BroadcastState
from keng.runtime.dispatch.model import Arm, Deliver, DispatchModel
from keng.services import broadcasts, programmes
from keng.services.inventory import install_sample

ICT = timezone(timedelta(hours=7))
WARD = "00595"
MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=ICT)


def test_quiet_hours_hold_a_release_until_they_end_and_an_emergency_ignores_them() -> None:
    always = Programme(default=parse_slots("00:00-24:00"), default_quiet=parse_quiet("22:00-05:00"))
    night = datetime(2026, 11, 27, 23, 0, tzinfo=ICT)
    assert always.release_at(priority="normal", wards=[WARD], now=night) == datetime(2026, 11, 28, 5, 0, tzinfo=ICT)
    assert always.release_at(priority="priority", wards=[WARD], now=night) == datetime(2026, 11, 28, 5, 0, tzinfo=ICT)
    assert always.release_at(priority="emergency", wards=[WARD], now=night) == night


def test_a_ward_of_its_own_has_its_own_slots_and_quiet_hours() -> None:
    ward = Programme().with_ward(WARD, slots=parse_slots("11:00-12:00"), quiet=(), order=())
    noon = datetime(2026, 11, 27, 10, 0, tzinfo=ICT)
    assert ward.release_at(priority="normal", wards=[WARD], now=noon) == datetime(2026, 11, 27, 11, tzinfo=ICT)
    assert Programme().release_at(priority="normal", wards=[WARD], now=noon) == datetime(2026, 11, 27, 17, tzinfo=ICT)


def test_every_scheduled_time_is_a_wave_and_an_emergency_repeats_at_its_later_times() -> None:
    p = Programme()
    now = datetime(2026, 11, 27, 4, 0, tzinfo=ICT)
    times = [datetime(2026, 11, 27, 6, 0, tzinfo=ICT), datetime(2026, 11, 27, 12, 0, tzinfo=ICT)]
    assert p.wave_time(priority="normal", wards=[WARD], now=now, times=times, wave=1) == times[0]
    assert p.wave_time(priority="normal", wards=[WARD], now=now, times=times, wave=2) == datetime(
        2026, 11, 27, 17, 0, tzinfo=ICT
    )
    assert p.wave_time(priority="normal", wards=[WARD], now=now, times=times, wave=3) is None
    assert p.wave_time(priority="emergency", wards=[WARD], now=now, times=times, wave=1) == now
    assert p.wave_time(priority="emergency", wards=[WARD], now=now, times=times, wave=2) == times[1]


def test_priority_items_waiting_for_a_slot_follow_the_wards_explicit_order() -> None:
    first, second = str(UUID(int=1)), str(UUID(int=2))
    p = Programme().with_ward(WARD, slots=Programme().slots(WARD), quiet=(), order=(second, first))
    assert p.order_gap([WARD], second) == timedelta(0)
    assert p.order_gap([WARD], first) > timedelta(0)
    assert p.order_gap([WARD], str(UUID(int=3))) == timedelta(0)


def test_bad_slots_and_quiet_hours_are_refused_with_the_value_named() -> None:
    for bad in ("25:00-26:00", "06:00-05:00", "", "x"):
        with pytest.raises(DomainError):
            parse_slots(bad)
    with pytest.raises(DomainError, match="xx"):
        parse_quiet("22:00-xx")


# -- on a real store, through the dispatcher's model ---------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Keng, Clock]]:
    clock = Clock(MONDAY)
    app = Keng(env=locate_store(f"sqlite:///{tmp_path / 'keng.db'}", tmp_path).env, clock=clock)
    install_sample(app, reorganise=False)  # the 2022 codes (before the reorganisation)
    yield app, clock
    app.close()


class Week:
    """Drives a DispatchModel through time: folds the log, makes occurrences, fires armed timers as the clock passes
    them, and closes every wave as soon as it opens (as if every device had played it)."""

    def __init__(self, app: Keng, clock: Clock, programme: Programme) -> None:
        self.app, self.clock = app, clock
        self.model = DispatchModel(app, programme=programme, clock=clock, audio_base="http://x/audio")
        self.armed: dict[UUID, datetime] = {}
        self.waves: list[tuple[UUID, int, datetime]] = []

    def settle(self) -> None:
        for _ in range(50):
            reactions = self.model.step()
            self.model.materialise()
            for bid, at in list(self.armed.items()):
                if at <= self.clock.now:
                    del self.armed[bid]
                    reactions += self.model.release(bid)
            for r in reactions:
                if isinstance(r, Arm):
                    self.armed[r.broadcast_id] = r.at
                elif isinstance(r, Deliver):
                    d = self.app.repository.get(UUID(r.plan.dispatch_id))
                    self.waves.append((UUID(r.plan.broadcast_id), d.wave, self.clock.now))
                    self.model.close(r.plan.dispatch_id, _summary(len(r.plan.targets)))
            if not reactions:
                return

    def run(self, until: datetime, step: timedelta = timedelta(minutes=5)) -> None:
        while self.clock.now < until:
            self.settle()
            nxt = min([self.clock.now + step, *self.armed.values()])
            self.clock.now = max(nxt, self.clock.now + timedelta(seconds=1))
        self.settle()


def _summary(targets: int) -> dict[str, object]:
    return {"outcome": "complete", "targeted": targets, "online": targets, "received": targets, "playing": 0,
            "played": targets, "failed": 0, "unreachable": 0, "retries": 0, "latency_ms": {}}  # fmt: skip


def test_several_scheduled_times_each_go_out_in_their_slot_and_the_broadcast_completes_after_the_last(
    store: tuple[Keng, Clock],
) -> None:
    app, clock = store
    times = [MONDAY + timedelta(hours=6), MONDAY + timedelta(hours=12), MONDAY + timedelta(days=1, hours=5)]
    bid = broadcasts.draft(app, by="lan.nguyen", title="Lịch tiêm chủng", text="Bà con đưa trẻ đi tiêm chủng.",
                           priority="normal", target_areas=[WARD], schedule_at=times)  # fmt: skip
    broadcasts.submit(app, bid, by="lan.nguyen")
    broadcasts.approve(app, bid, by="hung.tran")
    week = Week(app, clock, Programme())
    week.run(MONDAY + timedelta(days=2))
    assert [(w, at) for b, w, at in week.waves if b == bid] == [
        (1, MONDAY + timedelta(hours=6)),  # in the 05:30-06:30 slot: at its time
        (2, MONDAY + timedelta(hours=17)),  # 12:00 is outside the slots: the 17:00 slot
        (3, MONDAY + timedelta(days=1, hours=5, minutes=30)),  # 05:00 is in quiet hours and before the slot
    ]
    b = app.broadcast(bid)
    assert b.state == BroadcastState.COMPLETED and len(b.dispatches) == 3


def test_a_weekly_programme_makes_one_broadcast_per_time_across_a_simulated_week(store: tuple[Keng, Clock]) -> None:
    app, clock = store
    pid = programmes.create_programme(app, by="minh.pham", title="Bản tin tuần", text="Tin hoạt động của phường.",
                                      priority="normal", wards=[WARD], times=["06:00", "17:15"], days="mon,thu",
                                      channels=None)  # fmt: skip
    week = Week(app, clock, Programme())
    week.run(MONDAY + timedelta(hours=12))
    assert week.waves == []  # nothing before it is approved
    with pytest.raises(SelfApprovalRefused):
        programmes.approve_programme(app, pid, by="minh.pham")
    programmes.approve_programme(app, pid, by="hung.tran")
    week.run(MONDAY + timedelta(days=7, hours=12))
    p = app.load(RecurringProgramme, pid, "programme")
    made = [e for _, e in app.read_events() if isinstance(e, RecurringProgramme.Occurred)]
    expected = [MONDAY + timedelta(hours=17, minutes=15), MONDAY + timedelta(days=3, hours=6),
                MONDAY + timedelta(days=3, hours=17, minutes=15), MONDAY + timedelta(days=7, hours=6)]  # fmt: skip
    assert [e.at for e in made] == expected and p.occurrences == 4
    assert sorted(at for _, _, at in week.waves) == expected  # each went out at its time, within a slot
    for e in made:
        b = app.broadcast(e.broadcast_id)
        assert b.source_kind == "programme" and b.state == BroadcastState.COMPLETED
        assert b.approvals[0]["rule"] and str(pid) in b.approvals[0]["rule"]
    programmes.end_programme(app, pid, by="minh.pham", reason="Hết đợt")
    week.run(MONDAY + timedelta(days=11))
    assert len([e for _, e in app.read_events() if isinstance(e, RecurringProgramme.Occurred)]) == 4


def test_ward_slots_are_events_set_by_an_admin_and_the_dispatcher_follows_them(store: tuple[Keng, Clock]) -> None:
    app, clock = store
    with pytest.raises(NotAuthorised):
        programmes.set_ward(app, WARD, by="lan.nguyen", base=Programme(), slots="09:00-10:00", quiet=None)
    programmes.set_ward(app, WARD, by="admin", base=Programme(), slots="09:00-10:00", quiet="none")
    [row] = programmes.ward_settings(app, Programme(), [WARD])
    assert row == {"ward": WARD, "own": True, "slots": ["09:00-10:00"], "quiet": [], "order": []}
    bid = broadcasts.draft(app, by="lan.nguyen", title="Thông báo", text="Nội dung.", priority="normal",
                           target_areas=[WARD])  # fmt: skip
    broadcasts.submit(app, bid, by="lan.nguyen")
    broadcasts.approve(app, bid, by="hung.tran")
    waiting = programmes.waiting(app.broadcast(bid), programmes.with_wards(app, Programme()), clock.now)
    assert waiting is not None and waiting["reason"] == "slot" and "09:00-10:00" in waiting["detail"]
    week = Week(app, clock, Programme())
    week.run(MONDAY + timedelta(hours=10))
    assert [(w, at) for b, w, at in week.waves if b == bid] == [(1, MONDAY + timedelta(hours=9))]
    assert isinstance(app.broadcast(bid), Broadcast)


def test_a_district_file_ward_row_may_carry_its_slots_and_quiet_hours() -> None:
    from keng.adapters.district_file import plan_load
    from keng.domain.ward_schedule import WardSchedule

    rows = [
        ("line 2", {"record": "district", "code": "099", "name": "Quận Thử"}),
        ("line 3", {"record": "ward", "code": "09901", "name": "Phường Một", "parent": "099",
                    "slots": "06:00-07:00;18:00-19:00", "quiet": "none"}),
        ("line 4", {"record": "ward", "code": "09902", "name": "Phường Hai", "parent": "099", "slots": "7-8"}),
    ]  # fmt: skip
    plan = plan_load(rows, existing_area=lambda c: None, existing_endpoint=lambda c: False, by="admin")
    assert len(plan.errors) == 1 and plan.errors[0].startswith("line 4") and "7-8" in plan.errors[0]
    [ws] = [a for a in plan.aggregates if isinstance(a, WardSchedule)]
    assert (ws.ward, ws.slots, ws.quiet) == ("09901", ["06:00-07:00", "18:00-19:00"], [])
