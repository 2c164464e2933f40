"""Live delivery state of one dispatch on the dispatcher's loop: acks so far, resend backoff, when to close."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from keng.domain.budgets import judge
from keng.domain.delivery import summarise
from keng.domain.dispatch import note_first_acks
from keng.domain.records import Ack, BudgetVerdict, DispatchSummary
from keng.domain.values import FINAL_ACK_STATES, PLAYED_ACK_STATES, AckState, DispatchOutcome, ack_advances
from keng.runtime.dispatch.model import Plan


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff for resends to endpoints that have not acknowledged."""

    first_s: float = 2.0
    factor: float = 2.0
    cap_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before resend number `attempt` (1-based)."""
        return float(min(self.cap_s, self.first_s * self.factor ** max(0, attempt - 1)))


class LiveDispatch:
    """A dispatch being delivered."""

    def __init__(self, plan: Plan, retry: RetryPolicy, opened_mono: float) -> None:
        self.plan = plan
        self.retry = retry
        self.opened_mono = opened_mono
        self.attempts: dict[str, int] = {}
        self.next_due: dict[str, float] = {}
        self.closing = False
        self.stop_seq = 0
        self.last_ack_mono = opened_mono
        self.held_back = 0
        self.finals = sum(1 for c, s in plan.states.items() if s in FINAL_ACK_STATES and c in plan.targets)

    def advances(self, ack: Ack) -> bool:
        """True when the ack moves the endpoint forward (repeats of a known state are not recorded again)."""
        return ack_advances(ack["state"], self.plan.states.get(ack["endpoint"]))

    def apply(self, acks: list[Ack]) -> None:
        """Fold recorded acks into the live state."""
        self.last_ack_mono = time.monotonic()
        for ack in acks:
            if self.advances(ack):
                was = self.plan.states.get(ack["endpoint"])
                self.plan.states[ack["endpoint"]] = ack["state"]
                if (
                    ack["state"] in FINAL_ACK_STATES
                    and was not in FINAL_ACK_STATES
                    and ack["endpoint"] in self.plan.targets
                ):
                    self.finals += 1
        note_first_acks(self.plan.first_at, acks)

    def due_retries(self, mono: float, reachable: Callable[[str], bool], acks_read_at: float = math.inf) -> list[str]:
        """Endpoints that have not reported a final state and whose backoff has run out (offline ones wait until
        they come back). One that acknowledged but never reported `played` is asked again once its playback should
        be over: the device re-acknowledges without playing twice, which recovers acks the broker dropped.

        `acks_read_at` is the monotonic time up to which every ack the broker held has been read and applied (the
        dispatcher's ack barrier). An endpoint whose resend fell due after that waits: its ack may be queued behind
        thousands of others, and resending to it would only add a command and a re-ack to the backlog. How many
        endpoints wait for that reason is left in `held_back`."""
        due, self.held_back = [], 0
        states, next_due, first = self.plan.states, self.next_due, self.retry.delay(1)
        for code in self.plan.targets:  # every 250 ms over every target: keep the loop lean
            state = states.get(code)
            if state in FINAL_ACK_STATES:
                continue
            at = next_due.get(code)
            if at is None:
                at = self.opened_mono + (self.plan.play_s if state else 0.0) + first
            if mono < at or not reachable(code):
                continue
            if acks_read_at < at:
                self.held_back += 1
                continue
            self.mark_resent(code, mono)
            due.append(code)
        return due

    def mark_resent(self, code: str, mono: float) -> None:
        """Count a resend and push the next one back."""
        self.attempts[code] = self.attempts.get(code, 0) + 1
        self.next_due[code] = mono + self.retry.delay(self.attempts[code] + 1)

    def resent(self, code: str) -> bool:
        """Whether a command went to this endpoint's own topic."""
        return code in self.attempts

    def counts(self, ward: str | None = None) -> dict[str, int]:
        """Targets, received (any ack), playing (now), played (or displayed) and failed, optionally for one ward."""
        codes = [c for c, t in self.plan.targets.items() if ward is None or t.ward == ward]
        states = [self.plan.states.get(c) for c in codes]
        playing, failed = AckState.PLAYING, AckState.FAILED  # read once, not per target
        return {
            "targeted": len(codes),
            "received": sum(1 for s in states if s),
            "playing": sum(1 for s in states if s == playing),
            "played": sum(1 for s in states if s in PLAYED_ACK_STATES),  # a board's `displayed` counts as played
            "failed": sum(1 for s in states if s == failed),
        }

    def outcome(
        self, mono: float, settle_s: float | None, queued: int = 0, last_out: float = 0.0
    ) -> DispatchOutcome | None:
        """`complete` when every target is final; `settled` when none of its commands is still queued, no ack came
        for `settle_s` since the last one left the outbox, and every endpoint that acknowledged is final (the rest
        count as unreachable); else None (keep going until expiry)."""
        states = self.plan.states
        if self.finals >= len(self.plan.targets):
            return DispatchOutcome.COMPLETE
        if queued or settle_s is None:
            return None
        quiet = mono - max(self.opened_mono, self.last_ack_mono, last_out) >= settle_s
        if quiet and all(s in FINAL_ACK_STATES for s in states.values()):
            return DispatchOutcome.SETTLED
        return None

    def summary(self, outcome: str, online: set[str]) -> DispatchSummary:
        """The closing summary (domain/delivery.py)."""
        return summarise(
            targets=list(self.plan.targets),
            states=self.plan.states,
            first_ack_at=self.plan.first_at,
            online=online,
            reference_at=self.plan.reference_at,
            priority=self.plan.priority,
            outcome=outcome,
            retries=self.plan.retries,
        )

    def verdict(self, online: set[str], budgets: Mapping[str, int] | None = None) -> BudgetVerdict:
        """The dispatch against its priority's latency budget (domain/budgets.py): every endpoint that acknowledged,
        and every online one that never did (late by definition)."""
        plan = self.plan
        latencies = [max(0.0, (at - plan.reference_at).total_seconds() * 1000.0) for at in plan.first_at.values()]
        silent = len({c for c in online if c in plan.targets} - set(plan.first_at))
        return judge(priority=plan.priority, latencies_ms=latencies, silent=silent, overrides=budgets)
