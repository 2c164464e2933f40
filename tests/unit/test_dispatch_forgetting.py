"""The dispatcher's memory is bounded by what is live, not by the log's history (runtime/dispatch/model.py
`forget`), on a real store: broadcasts waiting for an approval are let go once idle and fetched again when approved;
finished broadcasts are let go with their closed dispatches; what was let go never changes what is dispatched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.broadcast import Broadcast
from keng.domain.dispatch import Dispatch
from keng.domain.programme import Programme, parse_slots
from keng.domain.values import DispatchOutcome
from keng.runtime.dispatch.model import FORGET_EVERY, IDLE_PENDING, Deliver, DispatchModel
from keng.services import broadcasts
from keng.services.inventory import install_sample

ALWAYS_OPEN = Programme(default=parse_slots("00:00-24:00"), default_quiet=())
WARD = "00595"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Keng]:
    app = Keng(env=locate_store(f"sqlite:///{tmp_path / 'keng.db'}", tmp_path).env)
    install_sample(app, reorganise=False)
    yield app
    app.close()


def submitted(app: Keng, n: int) -> list[UUID]:
    out = []
    for i in range(n):
        bid = broadcasts.draft(app, by="lan.nguyen", title=f"Thông báo {i}", text="Đề nghị bà con chú ý.",
                               priority="normal", target_areas=[WARD])  # fmt: skip
        broadcasts.submit(app, bid, by="lan.nguyen")
        out.append(bid)
    return out


def held(model: DispatchModel, kind: type) -> int:
    return len(model.of_type(kind))


def test_idle_pending_broadcasts_are_let_go_and_one_approved_later_is_released(store: Keng) -> None:
    clock = Clock()
    model = DispatchModel(store, programme=ALWAYS_OPEN, clock=clock, audio_base="http://x/audio")
    model.step()
    pending = submitted(store, 30)
    model.step()
    assert held(model, Broadcast) == 30  # recent: kept
    clock.advance(IDLE_PENDING + FORGET_EVERY)
    model.step()
    assert held(model, Broadcast) == 0 and model.forgotten == 30
    assert not model.approved_at and not model.first_at and len(model._targets_at) == 0

    broadcasts.approve(store, pending[7], by="hung.tran")
    delivered = [r for r in model.step() if isinstance(r, Deliver)]
    assert [UUID(d.plan.broadcast_id) for d in delivered] == [pending[7]]
    assert model.recalled == 1 and held(model, Broadcast) == 1
    # the others' later events (a render, say) do not bring them back
    assert held(model, Dispatch) == 1


def test_a_finished_broadcast_is_let_go_with_its_closed_dispatch(store: Keng) -> None:
    clock = Clock()
    model = DispatchModel(store, programme=ALWAYS_OPEN, clock=clock, audio_base="http://x/audio")
    model.step()
    bid = submitted(store, 1)[0]
    broadcasts.approve(store, bid, by="hung.tran")
    (deliver,) = [r for r in model.step() if isinstance(r, Deliver)]
    assert held(model, Dispatch) == 1
    clock.advance(FORGET_EVERY)
    model.step()
    assert held(model, Broadcast) == 1  # on air: kept, however long
    summary = {"outcome": DispatchOutcome.EXPIRED, "targeted": len(deliver.plan.targets), "played": 0}
    assert model.close(deliver.plan.dispatch_id, summary)  # type: ignore[arg-type]
    assert store.broadcast(bid).state.is_final
    clock.advance(FORGET_EVERY)
    model.step()
    assert held(model, Broadcast) == held(model, Dispatch) == 0
    assert model.forgotten == 2
    # a later ratification or any other event of a finished broadcast leaves it forgotten
    model.step()
    assert model.recalled == 0


def test_where_nothing_renders_ahead_a_broadcast_is_not_read_until_it_is_approved(store: Keng) -> None:
    # keng serve's dispatcher (its render processes make submitted broadcasts' audio): a drafted and submitted
    # broadcast is passed over undecoded, so inbound traffic costs the serving process next to nothing
    clock = Clock()
    model = DispatchModel(store, programme=ALWAYS_OPEN, clock=clock, audio_base="http://x/audio", prepare_ahead=False)
    model.step()
    pending = submitted(store, 20)
    model.step()
    assert held(model, Broadcast) == 0 and model.recalled == 0

    broadcasts.approve(store, pending[3], by="hung.tran")
    delivered = [r for r in model.step() if isinstance(r, Deliver)]
    assert [UUID(d.plan.broadcast_id) for d in delivered] == [pending[3]]
    assert model.recalled == 1 and held(model, Broadcast) == 1
    # one revised after it was submitted is read whole (its revision names new targets) and still waits
    broadcasts.revise(store, pending[5], by="lan.nguyen", title="Thông báo sửa")
    assert model.step() == [] and held(model, Broadcast) == 2
    # the dispatcher that renders ahead (keng dispatch run) reads every broadcast as it is drafted
    ahead = DispatchModel(store, programme=ALWAYS_OPEN, clock=clock, audio_base="http://x/audio")
    ahead.step()
    assert held(ahead, Broadcast) == 20
