"""CAP ingest: parse, validate, map and carry out one CAP 1.2 message against the store, atomically.

The HTTP layer verifies the transport signature first, then calls `prepare_cap` and commits what it did together with
its Inbound record, in one transaction. Every refusal is an exception with a precise message (see docs/cap.md for the
4xx each maps to); when one is raised, nothing was stored. An integration sends only under its own CAP senders and
updates or cancels only the alerts it created (rules `integration-owns-sender`, `integration-owns-alert`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

import structlog
from eventsourcing.domain import Aggregate

from keng.adapters.cap.parse import DEFAULT_LIMITS, parse_cap
from keng.adapters.cap.places import PlaceIndex
from keng.adapters.cap.xmldoc import CapLimits
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import DuplicateRecord
from keng.domain.actor import Actor, ExternalActor
from keng.domain.broadcast import FINAL_STATES, Broadcast
from keng.domain.cap import CapAlert, Resource
from keng.domain.cap_mapping import Action, CapPlan, plan_cap
from keng.domain.cap_places import CapRefused, Jurisdiction, OutsideJurisdiction
from keng.domain.content import Content, build_content
from keng.domain.ids import sourced_broadcast_id
from keng.domain.values import BroadcastState, SourceKind

log = structlog.get_logger(__name__)
CAP = SourceKind.CAP.value
StandingOrder = Callable[[CapAlert, CapPlan], str | None]
"""Given the alert and its plan, the name of the standing-order rule that approves it at once, or None."""
_OWN_ID = re.compile(r"keng-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(-r\d+)?")


class UnknownReference(CapRefused):
    """An Update or Cancel whose `references` name no alert keng knows."""

    rule = "cap-unknown-reference"


class DrillMismatch(CapRefused):
    """An Exercise message may change only a drill, and an Actual one only a live broadcast."""

    rule = "cap-drill-mismatch"


@dataclass(frozen=True)
class InlineAudio:
    """Audio that came inline (`derefUri`); the caller stores it under `ref` (its SHA-256)."""

    ref: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class IngestResult:
    """What one CAP message did. `action`: drafted, submitted, auto-approved, revised, cancelled, recorded,
    duplicate (the same Alert again) or unchanged (an Update or Cancel already applied)."""

    action: str
    broadcast_id: UUID | None
    broadcast_ids: tuple[UUID, ...]
    key: str
    status: str
    msg_type: str
    priority: str | None
    drill: bool
    reason: str
    payload_sha256: str
    stop_required: bool = False
    audio: InlineAudio | None = None
    languages: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """`path: message` of what was doubtful but accepted, a resource refused on its own among them."""
    notes: tuple[str, ...] = ()
    """`path: note` for each VN-DVHC code read, as of the alert's `sent`, as other codes in force now (recoded, or
    divided: the parts of its area it targets)."""


_DEFAULT_INDEX = PlaceIndex()


def prepare_cap(
    app: Keng,
    raw: bytes,
    *,
    sender_jurisdiction: list[str],
    actor: str | Actor,
    limits: CapLimits = DEFAULT_LIMITS,
    places: PlaceIndex | None = None,
    standing_order: StandingOrder | None = None,
) -> PendingIngest:
    """What one CAP 1.2 message from a sender authorised for `sender_jurisdiction` (area codes) does, acting as
    `actor`: a staff member's handle (a drafter), or an integration, which sends only under its own senders and
    changes only the alerts it created. Nothing is saved until `commit`. Raises CapError (parse/validation),
    CapRefused (mapping), or a domain/store error."""
    alert = parse_cap(raw, limits)
    if isinstance(actor, ExternalActor):
        actor.require_sender(alert.sender, "alert/sender")
    now = app.clock()
    gazetteer = (places or _DEFAULT_INDEX).current(app)
    plan = plan_cap(alert, gazetteer=gazetteer, jurisdiction=sender_jurisdiction, now=now)
    run = _Run(app, alert, plan, Jurisdiction(frozenset(sender_jurisdiction), gazetteer), actor, raw, now)
    if plan.action is Action.RECORD:
        return run.pending("recorded", ())
    if plan.action is Action.NEW:
        return run.new(standing_order)
    if plan.action is Action.REVISE:
        return run.revise(standing_order)
    return run.cancel()


def ingest_cap(
    app: Keng,
    raw: bytes,
    *,
    sender_jurisdiction: list[str],
    actor: str | Actor,
    limits: CapLimits = DEFAULT_LIMITS,
    places: PlaceIndex | None = None,
    standing_order: StandingOrder | None = None,
) -> IngestResult:
    """Prepare (see `prepare_cap`) and commit one CAP message; the same Alert again is a `duplicate`."""
    pending = prepare_cap(
        app,
        raw,
        sender_jurisdiction=sender_jurisdiction,
        actor=actor,
        limits=limits,
        places=places,
        standing_order=standing_order,
    )
    try:
        pending.commit()
    except DuplicateRecord:  # the same alert, accepted concurrently
        if not pending.created:
            raise
        return replace(pending.result, action="duplicate")
    return pending.result


@dataclass(frozen=True)
class PendingIngest:
    """What one CAP message does, not saved yet. `commit` saves it together with the caller's own records (its
    Inbound record) in one transaction, so a concurrent duplicate finds either all of it or nothing."""

    app: Keng
    result: IngestResult
    by: str
    changes: tuple[Broadcast, ...] = ()
    created: bool = False
    """True when `changes` are new broadcasts (a first Alert), False when they are stored ones changed."""

    def commit(self, *records: Aggregate) -> None:
        """Save the changes and `records` in one transaction. When another writer came first nothing is saved, and
        DuplicateRecord (something created exists already) or ConcurrencyConflict (a broadcast changed) is raised."""
        if self.changes and not self.created:
            self.app.save_changes(*self.changes, *records)
        elif self.changes or records:
            self.app.save_new(*self.changes, *records, what=f"CAP message {self.result.key!r}")
        r = self.result
        log.info("cap.ingested", key=r.key, action=r.action, broadcast_id=str(r.broadcast_id), actor=self.by)
        if r.warnings:
            log.warning("cap.warnings", key=r.key, warnings=list(r.warnings), actor=self.by)
        if r.notes:
            log.info("cap.areas_read_as_of_sent", key=r.key, notes=list(r.notes), actor=self.by)


class _Run:
    def __init__(
        self,
        app: Keng,
        alert: CapAlert,
        plan: CapPlan,
        juris: Jurisdiction,
        actor: str | Actor,
        raw: bytes,
        now: datetime,
    ) -> None:
        self.app, self.alert, self.plan, self.juris, self.actor, self.now = app, alert, plan, juris, actor, now
        self.integration = actor if isinstance(actor, ExternalActor) else None
        self.sha256 = hashlib.sha256(raw).hexdigest()
        self.audio_ref, self.inline = _audio(plan.audio)

    def pending(
        self, action: str, items: Sequence[Broadcast], *, stop: bool = False, created: bool = False, save: bool = True
    ) -> PendingIngest:
        p = self.plan
        ids = [b.id for b in items]
        result = IngestResult(
            action=action,
            broadcast_id=ids[0] if ids else None,
            broadcast_ids=tuple(ids),
            key=p.key,
            status=self.alert.status.value,
            msg_type=self.alert.msg_type.value,
            priority=p.priority.value if p.priority else None,
            drill=p.drill,
            reason=p.reason,
            payload_sha256=self.sha256,
            stop_required=stop,
            audio=self.inline,
            languages=p.languages,
            warnings=tuple(f"{path}: {message}" for path, message in self.alert.warnings),
            notes=p.notes,
        )
        by = self.actor if isinstance(self.actor, str) else self.actor.handle
        return PendingIngest(self.app, result, by, tuple(items) if save else (), created)

    def content(self, previous: Broadcast | None = None) -> Content:
        p = self.plan
        if p.priority is None or p.title is None or p.text is None:
            raise CapRefused(f"a {p.action} plan carries no content")  # plan_cap always sets it for new and revise
        expires = p.expires_at
        if expires is None and previous is not None and previous.expires_at > self.now:
            expires = previous.expires_at  # an Update without expiry keeps the one in force
        return build_content(
            title=p.title,
            text=p.text,
            priority=p.priority.value,
            target_areas=p.target_areas,
            target_endpoints=p.target_endpoints,
            scope=self.app.scope_of(p.target_areas, p.target_endpoints, self.juris.gazetteer.tree.nodes),
            schedule_at=p.schedule_at,
            expires_at=expires,
            drill=p.drill,
            audio=self.audio_ref,
            now=self.now,
            limits=self.app.limits,
        )

    def author(self) -> Actor:
        """A staff member (by handle), or an integration acting within its jurisdiction."""
        return self.app.staff(self.actor) if isinstance(self.actor, str) else self.actor

    def stored(self, key: str) -> Broadcast | None:
        """The broadcast stored for a CAP key: under the integration's own (scoped) id, else under the unscoped id
        (broadcasts stored before keys were scoped, and a staff member's imports)."""
        name = self.integration.name if self.integration else None
        for candidate in dict.fromkeys([sourced_broadcast_id(CAP, key, name), sourced_broadcast_id(CAP, key)]):
            if self.app.exists(candidate):
                return self.app.broadcast(candidate)
        return None

    def new(self, standing_order: StandingOrder | None) -> PendingIngest:
        earlier = self.stored(self.plan.key)
        if earlier is not None and (self.integration is None or earlier.drafted_by == self.integration.handle):
            return self.pending("duplicate", [earlier], save=False)
        author = self.author()
        item = Broadcast.draft(self.content(), by=author, source_kind=CAP, source_ref=self.plan.key)
        action = self._advance(item, author, standing_order, "drafted")
        return self.pending(action, [item], created=True)

    def _advance(self, item: Broadcast, author: Actor, order: StandingOrder | None, action: str) -> str:
        if self.plan.submit and item.state == BroadcastState.DRAFT:
            item.submit(by=author)
            action = "submitted"
        rule = order(self.alert, self.plan) if order and self.plan.submit else None
        if rule:
            item.auto_approve(rule=rule, now=self.now)
            action = "auto-approved"
        return action

    def revise(self, standing_order: StandingOrder | None) -> PendingIngest:
        author = self.author()
        changed = []
        for item in self.referenced():
            built = self.content(item)
            if built == item.content():
                continue
            item.revise(built, by=author)
            self._advance(item, author, standing_order, "revised")
            changed.append(item)
        return self.pending("revised", changed) if changed else self.pending("unchanged", [])

    def cancel(self) -> PendingIngest:
        author = self.author()
        live = [b for b in self.referenced() if b.state not in FINAL_STATES]
        stop = False
        for item in live:
            stop = item.cancel(by=author, reason=self.plan.reason) or stop
        return self.pending("cancelled", live, stop=stop) if live else self.pending("unchanged", [])

    def referenced(self) -> list[Broadcast]:
        """The broadcasts the message's references name, each checked against ownership (an integration changes only
        what it created), jurisdiction and drill status."""
        found: dict[UUID, Broadcast] = {}
        for ref in self.alert.references:
            own = _OWN_ID.fullmatch(ref.identifier)
            if own:
                candidate = UUID(own.group(1))
                item = self.app.broadcast(candidate) if self.app.exists(candidate) else None
            else:
                if self.integration:
                    self.integration.require_own_sender(ref.sender, "alert/references")
                item = self.stored(ref.key)
            if item is not None:
                found.setdefault(item.id, item)
        if not found:
            keys = " ".join(self.plan.references)
            raise UnknownReference(f"alert/references: none of the referenced alerts is known to keng ({keys})")
        for item in found.values():
            if self.integration:
                self.integration.require_creator(item.drafted_by, f"broadcast {item.id} (alert/references)")
            # The broadcast's scope names the units of its time: read on today's tree, as the jurisdiction is.
            said_at = item.created_on
            now_codes = [c for code in item.scope for c in self.juris.gazetteer.codes_now(code, said_at=said_at)]
            foreign = [code for code in dict.fromkeys(now_codes) if not self.juris.covers(code)]
            if foreign:
                raise OutsideJurisdiction(
                    f"alert/references: broadcast {item.id} covers {', '.join(foreign)}, outside the sender's "
                    f"jurisdiction ({self.juris.describe()})"
                )
            if item.drill != self.plan.drill:
                kinds = ("an Exercise", "a live") if self.plan.drill else ("an Actual", "a drill")
                raise DrillMismatch(f"alert/status: {kinds[0]} message cannot change {kinds[1]} broadcast ({item.id})")
        return list(found.values())


def _audio(resource: Resource | None) -> tuple[str | None, InlineAudio | None]:
    if resource is None:
        return None, None
    if resource.data is not None:
        ref = "sha256:" + hashlib.sha256(resource.data).hexdigest()
        return ref, InlineAudio(ref, resource.mime_type, resource.data)
    if resource.uri and resource.uri.lower().startswith(("https://", "http://")):
        return resource.uri, None
    return None, None
