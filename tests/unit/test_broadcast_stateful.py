"""A hypothesis state machine over random actors and actions on one broadcast.

Invariants checked after every step:
- nothing reaches dispatch without an approval of the current revision by someone other than its authors;
- a revision always voids approvals;
- replaying the recorded events gives the same state as the live aggregate.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from keng.domain.broadcast import STATE_AFTER, Broadcast, state_after_revision
from keng.domain.errors import DomainError
from keng.domain.values import BroadcastState
from tests.unit.helpers import NOW, content, staff

ACTORS = {
    "lan": staff("lan", "drafter"),
    "tuan": staff("tuan", "drafter", wards=["00595"]),
    "hung": staff("hung", "approver"),
    "ha": staff("ha", "approver", wards=["00595"]),
    "minh": staff("minh", "drafter", "approver"),
    "mai": staff("mai", "auditor"),
}
actors = st.sampled_from(sorted(ACTORS))
COMPARED = ("state", "revision", "approvals", "authors", "title", "text", "priority", "dispatches", "version")


class BroadcastMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.broadcast: Broadcast | None = None
        self.events: list[Any] = []
        self.now = NOW
        self.title_n = 0

    def _do(self, command: Any) -> bool:
        try:
            command()
        except DomainError:
            assert self.broadcast is not None
            assert not self.broadcast.pending_events or self._flush()
            return False
        self._flush()
        return True

    def _flush(self) -> bool:
        assert self.broadcast is not None
        self.events.extend(self.broadcast.collect_events())
        return True

    @initialize(actor=st.sampled_from(["lan", "tuan", "minh"]), priority=st.sampled_from(["emergency", "normal"]))
    def draft(self, actor: str, priority: str) -> None:
        self.broadcast = Broadcast.draft(
            content(priority=priority, expires_at=NOW + timedelta(hours=6)), by=ACTORS[actor]
        )
        self._flush()

    @rule(actor=actors)
    def revise(self, actor: str) -> None:
        assert self.broadcast is not None
        self.title_n += 1
        title = f"Sửa lần {self.title_n}"

        def revise() -> None:
            new = content(title=title, expires_at=NOW + timedelta(hours=6), now=self.now)
            self.broadcast.revise(new, by=ACTORS[actor])  # type: ignore[union-attr]

        if self._do(revise):
            assert self.broadcast.approvals == [] and not self.broadcast.is_approved

    @rule(actor=actors)
    def submit(self, actor: str) -> None:
        self._do(lambda: self.broadcast.submit(by=ACTORS[actor]))  # type: ignore[union-attr]

    @rule(actor=actors)
    def approve(self, actor: str) -> None:
        if self._do(lambda: self.broadcast.approve(by=ACTORS[actor], now=self.now)):  # type: ignore[union-attr]
            assert actor not in self.broadcast.authors  # type: ignore[union-attr]

    @rule(actor=actors, roll=st.integers(0, 5))
    def reject(self, actor: str, roll: int) -> None:
        if roll:  # final actions are rarer, so that long lifecycles (and dispatches) get explored
            return
        self._do(lambda: self.broadcast.reject(by=ACTORS[actor], reason="không đạt"))  # type: ignore[union-attr]

    @rule(actor=actors, roll=st.integers(0, 5))
    def cancel(self, actor: str, roll: int) -> None:
        if roll:  # final actions are rarer, so that long lifecycles (and dispatches) get explored
            return
        self._do(lambda: self.broadcast.cancel(by=ACTORS[actor], reason="hủy"))  # type: ignore[union-attr]

    @rule()
    def dispatch(self) -> None:
        b = self.broadcast
        assert b is not None
        before = (b.revision, list(b.approvals), list(b.authors))
        if self._do(lambda: b.open_dispatch(now=self.now)):
            event("dispatched")
            revision, approvals, authors = before
            current = [a for a in approvals if a["revision"] == revision]
            assert current, "dispatched without an approval of the current revision"
            assert all(a["by"] not in authors for a in current), "dispatched on a self-approval"

    @rule(minutes=st.integers(min_value=1, max_value=60))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self._do(lambda: self.broadcast.expire(now=self.now))  # type: ignore[union-attr]

    @invariant()
    def replay_gives_the_same_state(self) -> None:
        if self.broadcast is None:
            return
        replayed: Any = None
        for recorded in self.events:
            replayed = recorded.mutate(replayed)
        for name in COMPARED:
            assert getattr(replayed, name) == getattr(self.broadcast, name), name

    @invariant()
    def the_state_table_followers_use_agrees_with_the_aggregate(self) -> None:
        if self.broadcast is None:
            return
        state: str = BroadcastState.DRAFT
        for recorded in self.events:
            if isinstance(recorded, Broadcast.Revised):
                state = state_after_revision(state)
            state = STATE_AFTER.get(type(recorded), state)
        assert state == self.broadcast.state

    @invariant()
    def dispatching_implies_independent_approval(self) -> None:
        b = self.broadcast
        if b is not None and b.state == "dispatching":
            assert b.is_approved


BroadcastMachine.TestCase.settings = settings(max_examples=500, stateful_step_count=40, deadline=None)
TestBroadcastLifecycle = BroadcastMachine.TestCase
