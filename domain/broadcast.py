"""The Broadcast aggregate (bản tin): content, approval and lifecycle.

Lifecycle: draft -> submitted -> approved -> (scheduled) -> dispatching -> completed, with cancelled, expired and
rejected as the other ends. Rules (each refusal names its rule):
- the approver is never an author (whoever drafted or revised the broadcast);
- a revision voids every earlier approval;
- nothing is dispatched without an approval of its current revision;
- cancel works from every live state (and a cancel after dispatch asks for `stop` to be sent);
- an expired broadcast cannot be approved or dispatched;
- every command needs a scope covering the current targets and any new ones (domain/authority.py);
- a revision's speaker audio is rendered once: a render worker claims it first (`claim_render`, a lease saved with the
  aggregate's optimistic concurrency, so that of two concurrent claimers one is refused by the store), a second
  worker is refused while that lease runs and may take over once it has ended (the first one died), and a worker
  records its audio only while the claim is its own and no audio of that revision is recorded yet.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from keng.domain.actor import Actor, integration_of
from keng.domain.authority import cancel_role, require_authority
from keng.domain.content import Content
from keng.domain.dispatch import dispatch_id
from keng.domain.errors import (
    ExpiredBroadcast,
    IllegalTransition,
    NotApproved,
    RenderClaimRefused,
    SelfApprovalRefused,
)
from keng.domain.ids import sourced_broadcast_id
from keng.domain.records import Approval, DispatchSummary, Render, RenderClaim, RenderFailure
from keng.domain.values import BroadcastState, Priority, Role, SourceKind, clean_text, parse_enum

DRILL_NOTICE = "Đây là bản tin diễn tập."


def announced(text: str, drill: bool) -> str:
    """What is spoken and shown of a text: a drill is announced as a drill, before and after it."""
    return f"{DRILL_NOTICE} {text} {DRILL_NOTICE}" if drill else text


LIVE_STATES = tuple(s for s in BroadcastState if not s.is_final)
FINAL_STATES = tuple(s for s in BroadcastState if s.is_final)
REVISABLE_STATES = tuple(s for s in LIVE_STATES if s is not BroadcastState.DISPATCHING)
# A standing-order approval is judged as a decision, not by its air time: it can be ratified or retracted while the
# broadcast is live and after it has finished (completed or expired); a cancel before that ends the question.
RATIFIABLE_STATES = (*LIVE_STATES, BroadcastState.COMPLETED, BroadcastState.EXPIRED)
# Approved and not yet on air: what the dispatcher releases.
AWAITING_RELEASE = (BroadcastState.APPROVED, BroadcastState.SCHEDULED)
# Rendered ahead of its approval once submitted (a draft may still change), and while on air (for its repeats).
RENDERABLE_STATES = tuple(s for s in LIVE_STATES if s is not BroadcastState.DRAFT)
SPEAKER = "speaker"
PRIORITY_VALUES = frozenset(p.value for p in Priority)


def state_after_revision(state: str) -> BroadcastState:
    """A revision sends a broadcast back for approval: a draft stays a draft, anything else is submitted again."""
    return BroadcastState.DRAFT if state == BroadcastState.DRAFT else BroadcastState.SUBMITTED


class Broadcast(Aggregate):
    """One piece of content with its targets, channels, schedule and expiry, and its approval history."""

    render_claim: RenderClaim | None = None  # the latest claim on rendering (any revision); see `claim_render`

    class Drafted(Aggregate.Created):
        title: str
        text: str
        audio: str | None
        priority: str
        target_areas: list[str]
        target_endpoints: list[str]
        scope: list[str]
        channels: list[str]
        schedule_at: list[datetime]
        repeats: int
        expires_at: datetime
        drill: bool
        source_kind: str
        source_ref: str | None
        by: str

    class Revised(Aggregate.Event):
        title: str
        text: str
        audio: str | None
        priority: str
        target_areas: list[str]
        target_endpoints: list[str]
        scope: list[str]
        channels: list[str]
        schedule_at: list[datetime]
        repeats: int
        expires_at: datetime
        drill: bool
        by: str

        def apply(self, aggregate: Any) -> None:
            content = {k: v for k, v in vars(self).items() if k in aggregate.CONTENT_FIELDS}
            aggregate.__dict__.update(content)
            aggregate.revision += 1
            aggregate.approvals = []
            if self.by not in aggregate.authors:
                aggregate.authors.append(self.by)
            aggregate.state = state_after_revision(aggregate.state)

    class SubmittedForApproval(Aggregate.Event):
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.state = BroadcastState.SUBMITTED

    class Approved(Aggregate.Event):
        by: str
        revision: int

        def apply(self, aggregate: Any) -> None:
            aggregate.approvals.append(
                Approval(by=self.by, revision=self.revision, rule=None, at=self.timestamp),
            )
            aggregate.state = BroadcastState.APPROVED

    class AutoApproved(Aggregate.Event):
        rule: str
        revision: int

        def apply(self, aggregate: Any) -> None:
            aggregate.approvals.append(
                Approval(by=None, revision=self.revision, rule=self.rule, at=self.timestamp),
            )
            aggregate.state = BroadcastState.APPROVED

    class Ratified(Aggregate.Event):
        """An approver confirmed a standing-order approval after the fact."""

        by: str
        revision: int

        def apply(self, aggregate: Any) -> None:
            for approval in aggregate.approvals:
                if approval["rule"] and approval["revision"] == self.revision:
                    approval["ratified_by"] = self.by

    class Retracted(Aggregate.Event):
        """An approver disowned a standing-order approval after the fact (a live broadcast is cancelled with it)."""

        by: str
        revision: int
        reason: str

        def apply(self, aggregate: Any) -> None:
            for approval in aggregate.approvals:
                if approval["rule"] and approval["revision"] == self.revision:
                    approval["retracted_by"] = self.by

    class Rejected(Aggregate.Event):
        by: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.state = BroadcastState.REJECTED
            aggregate.end_reason = self.reason

    class Scheduled(Aggregate.Event):
        slots: list[datetime]

        def apply(self, aggregate: Any) -> None:
            aggregate.state = BroadcastState.SCHEDULED
            aggregate.slots = list(self.slots)

    class DispatchOpened(Aggregate.Event):
        dispatch_id: UUID
        wave: int

        def apply(self, aggregate: Any) -> None:
            aggregate.state = BroadcastState.DISPATCHING
            aggregate.dispatches.append(self.dispatch_id)

    class Completed(Aggregate.Event):
        summary: DispatchSummary

        def apply(self, aggregate: Any) -> None:
            aggregate.state = BroadcastState.COMPLETED

    class Cancelled(Aggregate.Event):
        by: str
        reason: str
        stop_required: bool

        def apply(self, aggregate: Any) -> None:
            aggregate.state = BroadcastState.CANCELLED
            aggregate.end_reason = self.reason

    class Expired(Aggregate.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.state = BroadcastState.EXPIRED

    class Rendered(Aggregate.Event):
        """`asset_hash` addresses the asset in the store; `content_sha256` is the SHA-256 of its bytes (what a device
        that played it reports back). Version 1 events had no content hash."""

        class_version = 2
        channel: str
        asset_hash: str
        duration_s: float | None
        engine: str
        content_sha256: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["content_sha256"] = None

        def apply(self, aggregate: Any) -> None:
            aggregate.renders.append(
                Render(
                    channel=self.channel,
                    asset_hash=self.asset_hash,
                    content_sha256=self.content_sha256,
                    duration_s=self.duration_s,
                    engine=self.engine,
                    revision=aggregate.revision,
                )
            )

    class RenderFailed(Aggregate.Event):
        channel: str
        engine: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.render_failures.append(
                RenderFailure(channel=self.channel, engine=self.engine, reason=self.reason, revision=aggregate.revision)
            )

    class RenderClaimed(Aggregate.Event):
        """A render worker took on the speaker audio of `revision` until `lease_until` (then another may take over)."""

        worker: str
        revision: int
        lease_until: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.render_claim = RenderClaim(worker=self.worker, revision=self.revision, until=self.lease_until)

    CONTENT_FIELDS = frozenset(Content.__dataclass_fields__)

    def __init__(
        self,
        title: str,
        text: str,
        audio: str | None,
        priority: str,
        target_areas: list[str],
        target_endpoints: list[str],
        scope: list[str],
        channels: list[str],
        schedule_at: list[datetime],
        repeats: int,
        expires_at: datetime,
        drill: bool,
        source_kind: str,
        source_ref: str | None,
        by: str,
    ) -> None:
        self.title = title
        self.text = text
        self.audio = audio
        self.priority = priority
        self.target_areas = list(target_areas)
        self.target_endpoints = list(target_endpoints)
        self.scope = list(scope)
        self.channels = list(channels)
        self.schedule_at = list(schedule_at)
        self.repeats = repeats
        self.expires_at = expires_at
        self.drill = drill
        self.source_kind = source_kind
        self.source_ref = source_ref
        self.drafted_by = by
        self.authors: list[str] = [by]
        self.state: BroadcastState = BroadcastState.DRAFT
        self.revision = 0
        self.approvals: list[Approval] = []
        self.slots: list[datetime] = []
        self.dispatches: list[UUID] = []
        self.renders: list[Render] = []
        self.render_failures: list[RenderFailure] = []
        self.render_claim = None
        self.end_reason: str | None = None

    # -- commands -------------------------------------------------------------------------------------------------

    @classmethod
    def draft(
        cls, content: Content, *, by: Actor, source_kind: str = "operator", source_ref: str | None = None
    ) -> Broadcast:
        """Draft a broadcast. With a `source_ref` the id is deterministic (and scoped to the integration that sent
        the message), so the same external message cannot create two broadcasts (the store refuses the second)."""
        require_authority(by, Role.DRAFTER, "draft a broadcast for these areas", content.scope)
        kind = parse_enum(SourceKind, source_kind, "source kind").value
        ref = clean_text(source_ref, "source reference", max_len=300) if source_ref is not None else None
        new_id = sourced_broadcast_id(kind, ref, integration_of(by.handle)) if ref else uuid4()
        return cls._create(
            cls.Drafted,
            id=new_id,
            source_kind=kind,
            source_ref=ref,
            by=by.handle,
            **content.as_event_kwargs(),
        )

    def content(self) -> Content:
        """The current revision's content."""
        return Content(**{name: getattr(self, name) for name in self.CONTENT_FIELDS})

    # Every command checks the actor's authority first (domain/authority.py), so a refusal tells an outsider nothing
    # about the broadcast's state.

    def revise(self, content: Content, *, by: Actor) -> None:
        """Replace the content. Voids every approval; a submitted or approved broadcast needs approval again."""
        require_authority(
            by, Role.DRAFTER, "revise this broadcast", self.scope, content.scope, drafted_by=self.drafted_by
        )
        self._require_state(REVISABLE_STATES, "revise")
        self.trigger_event(self.Revised, by=by.handle, **content.as_event_kwargs())

    def submit(self, *, by: Actor) -> None:
        """Submit a draft for approval."""
        require_authority(by, Role.DRAFTER, "submit this broadcast", self.scope, drafted_by=self.drafted_by)
        self._require_state((BroadcastState.DRAFT,), "submit")
        self.trigger_event(self.SubmittedForApproval, by=by.handle)

    def approve(self, *, by: Actor, now: datetime) -> None:
        """Approve the current revision: an approver, not an author, within scope, before expiry."""
        require_authority(by, Role.APPROVER, "approve this broadcast", self.scope, drafted_by=self.drafted_by)
        self._require_state((BroadcastState.SUBMITTED,), "approve")
        if by.handle in self.authors:
            raise SelfApprovalRefused(
                f"rule {SelfApprovalRefused.rule}: {by.handle} drafted or revised this broadcast "
                "and cannot approve it; another approver must"
            )
        self._require_unexpired(now, "approved")
        self.trigger_event(self.Approved, by=by.handle, revision=self.revision)

    def auto_approve(self, *, rule: str, now: datetime) -> None:
        """Approve under a standing order; the event names the rule so that an approver can ratify it later."""
        self._require_state((BroadcastState.DRAFT, BroadcastState.SUBMITTED), "auto-approve")
        self._require_unexpired(now, "approved")
        self.trigger_event(self.AutoApproved, rule=clean_text(rule, "rule name", max_len=200), revision=self.revision)

    @property
    def awaiting_ratification(self) -> bool:
        """Approved under a standing order, neither ratified nor retracted, and live or finished (not cancelled)."""
        return self.state in RATIFIABLE_STATES and any(
            a["rule"] and a["revision"] == self.revision and not a.get("ratified_by") and not a.get("retracted_by")
            for a in self.approvals
        )

    def ratification_due(self, within: timedelta) -> datetime | None:
        """When the standing-order approval awaiting ratification must be ratified or retracted (None if none)."""
        if not self.awaiting_ratification:
            return None
        auto = next(a for a in self.approvals if a["rule"] and a["revision"] == self.revision)
        at: datetime = auto["at"]
        return at + within

    def ratify(self, *, by: Actor) -> None:
        """Confirm a standing-order approval (an approver within scope), also after the broadcast has finished."""
        require_authority(
            by, Role.APPROVER, "ratify this standing-order approval", self.scope, drafted_by=self.drafted_by
        )
        self._require_awaiting_ratification()
        self.trigger_event(self.Ratified, by=by.handle, revision=self.revision)

    def retract(self, *, by: Actor, reason: str) -> bool:
        """Disown a standing-order approval (an approver within scope), also after the broadcast has finished; a live
        broadcast is cancelled with it. Returns True when devices must be told to stop."""
        require_authority(
            by, Role.APPROVER, "retract this standing-order approval", self.scope, drafted_by=self.drafted_by
        )
        self._require_awaiting_ratification()
        why = clean_text(reason, "reason", max_len=1000)
        self.trigger_event(self.Retracted, by=by.handle, revision=self.revision, reason=why)
        if self.state not in LIVE_STATES:
            return False
        stop = self.state == BroadcastState.DISPATCHING
        self.trigger_event(self.Cancelled, by=by.handle, reason=why, stop_required=stop)
        return stop

    def _require_awaiting_ratification(self) -> None:
        if not self.awaiting_ratification:
            raise IllegalTransition(
                f"rule lifecycle: there is no standing-order approval awaiting ratification (the broadcast is "
                f"{self.state}; a cancelled one, or one already ratified or retracted, is settled)"
            )

    def reject(self, *, by: Actor, reason: str) -> None:
        """Reject a submitted broadcast (final)."""
        require_authority(by, Role.APPROVER, "reject this broadcast", self.scope, drafted_by=self.drafted_by)
        self._require_state((BroadcastState.SUBMITTED,), "reject")
        self.trigger_event(self.Rejected, by=by.handle, reason=clean_text(reason, "reason", max_len=1000))

    def schedule(self, slots: list[datetime]) -> None:
        """Record the programme slots an approved broadcast will go out in (its next wave's, between waves too)."""
        self._require_approved("schedule", between_waves=True)
        self.trigger_event(self.Scheduled, slots=sorted(slots))

    @property
    def waves(self) -> int:
        """How many dispatch waves the broadcast has: one per scheduled time, one when it has none."""
        return max(1, len(self.schedule_at))

    def open_dispatch(self, *, now: datetime) -> UUID:
        """Open the next dispatch wave; returns its (deterministic) dispatch id. Refused unless the current revision
        is approved and unexpired; a wave may open while the one before is still on air."""
        self._require_approved("dispatch", between_waves=True)
        self._require_unexpired(now, "dispatched")
        if len(self.dispatches) >= self.waves:
            raise IllegalTransition(f"rule lifecycle: all {self.waves} waves of this broadcast have gone out")
        wave = len(self.dispatches) + 1
        new_id = dispatch_id(self.id, wave)
        self.trigger_event(self.DispatchOpened, dispatch_id=new_id, wave=wave)
        return new_id

    def complete(self, summary: DispatchSummary) -> None:
        """Close the broadcast after its dispatch, with the dispatch summary."""
        self._require_state((BroadcastState.DISPATCHING,), "complete")
        self.trigger_event(self.Completed, summary=summary)

    def cancel(self, *, by: Actor, reason: str) -> bool:
        """Cancel from any live state (a drafter or an approver within scope; an emergency on air only by an
        approver); returns True when devices must be told to stop."""
        role = cancel_role(by, state=self.state, priority=self.priority, raised_by=self.drafted_by)
        require_authority(by, role, "cancel this broadcast", self.scope, drafted_by=self.drafted_by)
        self._require_state(LIVE_STATES, "cancel")
        stop = self.state == BroadcastState.DISPATCHING
        self.trigger_event(
            self.Cancelled,
            by=by.handle,
            reason=clean_text(reason, "reason", max_len=1000),
            stop_required=stop,
        )
        return stop

    def expire(self, *, now: datetime) -> bool:
        """Mark a live broadcast expired once its expiry has passed. Returns True if that happened now."""
        if self.state not in LIVE_STATES or now < self.expires_at:
            return False
        self.trigger_event(self.Expired)
        return True

    # -- rendering ------------------------------------------------------------------------------------------------

    @property
    def needs_render(self) -> bool:
        """A submitted (or later, still live) broadcast for speakers with neither speaker audio nor a recorded render
        failure for its current revision."""
        if self.state not in RENDERABLE_STATES or SPEAKER not in self.channels:
            return False
        if any(r["channel"] == SPEAKER and r["revision"] == self.revision for r in self.renders):
            return False
        return not any(f.get("revision", self.revision) == self.revision for f in self.render_failures)

    @property
    def current_render_claim(self) -> RenderClaim | None:
        """The claim on rendering the current revision (None: none, or one on an earlier revision)."""
        claim = self.render_claim
        return claim if claim is not None and claim["revision"] == self.revision else None

    def render_claimed_elsewhere(self, worker: str, now: datetime) -> bool:
        """True while another worker's claim on the current revision runs (its lease has not ended at `now`)."""
        claim = self.current_render_claim
        return claim is not None and claim["worker"] != worker and now < claim["until"]

    @property
    def render_order(self) -> tuple[int, datetime]:
        """Which broadcast a render worker takes first: emergencies, then priority items, then normal ones; within a
        class, the oldest."""
        rank = Priority(self.priority).rank if self.priority in PRIORITY_VALUES else len(PRIORITY_VALUES)
        return rank, self.created_on

    def claim_render(self, *, worker: str, now: datetime, lease: timedelta) -> None:
        """Take on rendering the current revision's speaker audio until `now + lease`. Refused when there is nothing to
        render, or while another worker's lease runs; a worker's own claim is renewed (a render process restarted in
        its slot carries on), and a lease that has ended may be taken over. Saved with the aggregate's version, so of
        two workers that claim at once the store refuses the second."""
        name = clean_text(worker, "render worker", max_len=200)
        if lease <= timedelta(0):
            raise RenderClaimRefused(f"rule {RenderClaimRefused.rule}: a render lease must be positive, not {lease}")
        if not self.needs_render:
            raise RenderClaimRefused(
                f"rule {RenderClaimRefused.rule}: revision {self.revision} has nothing left to render "
                f"(a {self.state} broadcast, its audio or its failure recorded, or no speakers)"
            )
        claim = self.current_render_claim
        if claim is not None and self.render_claimed_elsewhere(name, now):
            raise RenderClaimRefused(
                f"rule {RenderClaimRefused.rule}: {claim['worker']} renders revision {self.revision} until "
                f"{claim['until'].isoformat()}"
            )
        self.trigger_event(self.RenderClaimed, worker=name, revision=self.revision, lease_until=now + lease)

    def _require_own_claim(self, worker: str) -> None:
        """A claimer records its outcome only while the current revision's claim is its own and nothing is recorded
        for that revision yet (a revision, a takeover after its lease ended, or the dispatcher's own render came
        first)."""
        claim = self.current_render_claim
        if claim is None or claim["worker"] != worker:
            holder = f"{claim['worker']} holds the claim" if claim else "no claim on it is current"
            why = f"{worker} cannot record a render of revision {self.revision}: {holder}"
            raise RenderClaimRefused(f"rule {RenderClaimRefused.rule}: {why}")
        if not self.needs_render:
            raise RenderClaimRefused(
                f"rule {RenderClaimRefused.rule}: revision {self.revision} has its render recorded already"
            )

    def record_render(
        self,
        *,
        channel: str,
        asset_hash: str,
        duration_s: float | None,
        engine: str,
        content_sha256: str | None = None,
        worker: str | None = None,
    ) -> None:
        """Record that content was rendered for a channel: the asset's address, and the SHA-256 of its bytes. A render
        worker names itself (`worker`) and is held to its claim (`claim_render`); `keng render` and the dispatcher's
        own render on the dispatch path record without one."""
        if worker is not None:
            self._require_own_claim(worker)
        self.trigger_event(
            self.Rendered,
            channel=channel,
            asset_hash=asset_hash,
            duration_s=duration_s,
            engine=engine,
            content_sha256=content_sha256,
        )

    def record_render_failure(self, *, channel: str, engine: str, reason: str, worker: str | None = None) -> None:
        """Record that an engine failed to render; the broadcast itself stays intact. A render worker names itself and
        is held to its claim, as for `record_render`."""
        if worker is not None:
            self._require_own_claim(worker)
        self.trigger_event(
            self.RenderFailed,
            channel=channel,
            engine=engine,
            reason=clean_text(reason, "reason", max_len=1000),
        )

    # -- queries --------------------------------------------------------------------------------------------------

    @property
    def announced_text(self) -> str:
        """What is spoken and shown: a drill is announced as a drill, before and after its text."""
        return announced(str(self.text), bool(self.drill))

    @property
    def is_approved(self) -> bool:
        """True when an approval (manual or standing order) covers the current revision."""
        return any(a["revision"] == self.revision for a in self.approvals)

    def _require_state(self, allowed: tuple[BroadcastState, ...], action: str) -> None:
        if self.state not in allowed:
            raise IllegalTransition(
                f"rule lifecycle: cannot {action} a broadcast that is {self.state} (allowed from: {', '.join(allowed)})"
            )

    def _require_approved(self, action: str, *, between_waves: bool = False) -> None:
        next_wave = between_waves and self.state == BroadcastState.DISPATCHING and len(self.dispatches) < self.waves
        if (self.state not in AWAITING_RELEASE and not next_wave) or not self.is_approved:
            raise NotApproved(
                f"rule {NotApproved.rule}: cannot {action} a broadcast that is {self.state} "
                f"without an approval of revision {self.revision}"
            )

    def _require_unexpired(self, now: datetime, what: str) -> None:
        if now >= self.expires_at:
            raise ExpiredBroadcast(
                f"rule {ExpiredBroadcast.rule}: the broadcast expired at {self.expires_at.isoformat()} "
                f"and cannot be {what}"
            )


# The state each event leaves a broadcast in, for followers that fold events without the aggregate (read models,
# delivery reports); a revision's is `state_after_revision`, and events not named here leave the state alone. The
# stateful test checks the table against the aggregate.
STATE_AFTER: dict[type[Aggregate.Event], BroadcastState] = {
    Broadcast.SubmittedForApproval: BroadcastState.SUBMITTED,
    Broadcast.Approved: BroadcastState.APPROVED,
    Broadcast.AutoApproved: BroadcastState.APPROVED,
    Broadcast.Rejected: BroadcastState.REJECTED,
    Broadcast.Scheduled: BroadcastState.SCHEDULED,
    Broadcast.DispatchOpened: BroadcastState.DISPATCHING,
    Broadcast.Completed: BroadcastState.COMPLETED,
    Broadcast.Cancelled: BroadcastState.CANCELLED,
    Broadcast.Expired: BroadcastState.EXPIRED,
}

# Every event of a broadcast: what a follower that needs only broadcasts reads from the log (a topic-filtered read).
BROADCAST_EVENTS: tuple[type[Aggregate.Event], ...] = tuple(
    v
    for name, v in vars(Broadcast).items()
    if isinstance(v, type) and issubclass(v, Aggregate.Event) and name not in ("Event", "Created")
)
