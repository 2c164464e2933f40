"""The dispatcher's model across a reorganisation (tests/reorg.py), on a real store driven by a fixed clock: targets
are walked on the tree in force at the model's now, so endpoints reassigned into a new ward are reached through it,
a reused code reaches only the unit that holds it today, and a broadcast recorded before the reform reaches the
ground its codes named then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import eventsourcing.domain
import pytest

from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.dispatch import Dispatch
from keng.domain.endpoint import Endpoint
from keng.domain.programme import Programme, parse_slots
from keng.domain.staff import Staff
from keng.runtime.dispatch.model import Deliver, DispatchModel
from keng.services import broadcasts
from tests.reorg import AFTER, BEFORE, build_before, reorganise

ALWAYS_OPEN = Programme(default=parse_slots("00:00-24:00"), default_quiet=())
SPEAKERS = {"00595-T01-IP1", "00598-T01-IP1", "00613-T01-IP1", "00613-T02-IP1"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Keng, Clock, dict[str, Any]]]:
    clock = Clock(AFTER + timedelta(days=2, hours=9))
    app = Keng(env=locate_store(f"sqlite:///{tmp_path / 'keng.db'}", tmp_path).env, clock=clock)
    old = build_before(app)
    drafter = Staff.enrol(handle="city.drafter", name="Cán bộ thành phố", roles=["drafter"], wards=[], by="system")
    app.save_new(drafter, what="a city-wide drafter")
    yield app, clock, old
    app.close()


def send(app: Keng, areas: list[str], **kw: Any) -> UUID:
    bid = broadcasts.draft(app, by="city.drafter", title="Thông báo", text="Đề nghị bà con chú ý.",
                           priority="emergency", channels=["speaker"], target_areas=areas, **kw)  # fmt: skip
    broadcasts.submit(app, bid, by="city.drafter")
    broadcasts.approve(app, bid, by="district.staff")
    return bid


def targets_of(app: Keng, bid: UUID) -> set[str]:
    """The targets the broadcast's first dispatch opened with."""
    dispatch: object = app.repository.get(app.broadcast(bid).dispatches[0])
    assert isinstance(dispatch, Dispatch)
    return set(dispatch.targets)


def reached(app: Keng, clock: Clock, *bids: UUID) -> dict[UUID, set[str]]:
    """Fold the log into a fresh model at the clock's now; the targets each broadcast's dispatch opened with."""
    model = DispatchModel(app, programme=ALWAYS_OPEN, clock=clock, audio_base="http://x/audio")
    delivered = [r for r in model.step() if isinstance(r, Deliver)]
    assert {UUID(d.plan.broadcast_id) for d in delivered} >= set(bids)
    out: dict[UUID, set[str]] = {}
    for bid in bids:
        out[bid] = targets_of(app, bid)
    return out


def test_after_the_reorganisation_endpoints_are_reached_through_their_new_wards(
    store: tuple[Keng, Clock, dict[str, Any]],
) -> None:
    app, clock, old = store
    reorganise(app, old)
    dong_ngac, tay_tuu, city, thuong_cat = (send(app, [c]) for c in ("00602", "00613", "01", "00598"))
    found = reached(app, clock, dong_ngac, tay_tuu, city, thuong_cat)
    assert found[dong_ngac] == {"00613-T02-IP1"}  # moved with its group from old Minh Khai into Đông Ngạc
    assert found[tay_tuu] == {"00613-T01-IP1"}  # 00613 is Tây Tựu now: old Minh Khai's other group is not in it
    assert found[city] == SPEAKERS  # every ward's chain reaches the city, new units included
    assert found[thuong_cat] == {"00595-T01-IP1", "00598-T01-IP1"}  # the merged ward: both old wards' groups


def test_a_broadcast_recorded_before_the_reform_reaches_the_ground_its_code_named_then(
    store: tuple[Keng, Clock, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, clock, old = store
    clock.now = BEFORE + timedelta(hours=20)  # 2025-06-30 20:00: drafted for the next morning, on the old tree
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", clock)  # its events carry that time
    morning = AFTER + timedelta(hours=7)
    minh_khai = send(app, ["00613"], schedule_at=[morning], expires_at=morning + timedelta(hours=6))
    monkeypatch.undo()
    reorganise(app, old)
    clock.now = morning
    tay_tuu = send(app, ["00613"])
    found = reached(app, clock, minh_khai, tay_tuu)
    assert found[minh_khai] == {"00613-T01-IP1", "00613-T02-IP1"}  # old Minh Khai: now in Tây Tựu and Đông Ngạc
    assert found[tay_tuu] == {"00613-T01-IP1"}


def test_a_running_model_walks_the_new_tree_from_midnight(store: tuple[Keng, Clock, dict[str, Any]]) -> None:
    app, clock, old = store
    clock.now = AFTER - timedelta(minutes=5)
    reorganise(app, old)  # recorded ahead, in force from 00:00
    model = DispatchModel(app, programme=ALWAYS_OPEN, clock=clock, audio_base="http://x/audio")
    model.step()
    district = send(app, ["021"])  # the old tree: the district still holds its wards' groups
    model.step()
    clock.now = AFTER + timedelta(minutes=5)  # the same model, no area event since: only the day has changed
    installed = Endpoint.register(code="00602-IP9", kind="ip-speaker", ward="00602", group=None, technology="ip-4g",
                                  by="system")  # fmt: skip
    app.save_new(installed, what="a speaker of the new ward")
    city = send(app, ["01"])
    model.step()
    assert targets_of(app, district) == SPEAKERS
    assert targets_of(app, city) == SPEAKERS | {"00602-IP9"}  # 00602 -> 01 on the tree of today


def test_a_reassignment_recorded_ahead_places_the_endpoint_from_its_date(
    store: tuple[Keng, Clock, dict[str, Any]],
) -> None:
    app, clock, old = store
    clock.now = AFTER - timedelta(minutes=5)
    loose = Endpoint.register(code="00613-IP9", kind="ip-speaker", ward="00613", group=None, technology="ip-4g",
                              by="system")  # fmt: skip
    app.save_new(loose, what="a speaker standing in old Minh Khai, in no group")
    reorganise(app, old)
    loose = app.endpoint("00613-IP9")
    loose.reassign(ward="00602", group=None, effective="2025-07-01", how="coordinates", by="system")
    app.save_changes(loose)
    assert app.endpoint("00613-IP9").placement_at(clock.now) == ("00613", None)
    minh_khai = send(app, ["00613"])  # on the eve: the speaker is still Minh Khai's
    assert "00613-IP9" in reached(app, clock, minh_khai)[minh_khai]
    clock.now = AFTER + timedelta(minutes=5)
    dong_ngac, tay_tuu = send(app, ["00602"]), send(app, ["00613"])
    found = reached(app, clock, dong_ngac, tay_tuu)
    assert "00613-IP9" in found[dong_ngac] and "00613-IP9" not in found[tay_tuu]
