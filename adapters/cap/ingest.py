"""CAP ingest: parse, validate, map and carry out one CAP 1.2 message against the store, atomically.

The HTTP layer verifies the transport signature first, then calls `ingest_cap`. Every refusal is an exception with a
precise message (see docs/cap-integration.md for the 4xx each maps to); when one is raised, nothing was stored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import structlog

from adapters.cap.parse import DEFAULT_LIMITS, parse_cap
from adapters.cap.places import PlaceIndex
from adapters.cap.xmldoc import CapLimits
from adapters.store.app import Keng
from adapters.store.errors import DuplicateRecord
from domain.actor import Actor
from domain.broadcast import FINAL_STATES, Broadcast
from domain.cap import CapAlert, Resource
from domain.cap_mapping import Action, CapPlan, plan_cap
from domain.cap_places import CapRefused, Jurisdiction, OutsideJurisdiction
from domain.content import Content, build_content
from domain.ids import sourced_broadcast_id
from domain.values import SourceKind

log = structlog.get_logger(__name__)
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


_DEFAULT_INDEX = PlaceIndex()


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
    """Accept one CAP 1.2 message from a sender authorised for `sender_jurisdiction` (area codes), acting as staff
    member `actor` (a drafter). Raises CapError (parse/validation), CapRefused (mapping), or a domain/store error."""
    alert = parse_cap(raw, limits)
    now = app.clock()
    gazetteer = (places or _DEFAULT_INDEX).current(app)
    plan = plan_cap(alert, gazetteer=gazetteer, jurisdiction=sender_jurisdiction, now=now)
    run = _Run(app, alert, plan, Jurisdiction(frozenset(sender_jurisdiction), gazetteer), actor, raw, now)
    if plan.action is Action.RECORD:
        result = run.result("recorded", ())
    elif plan.action is Action.NEW:
        result = run.new(standing_order)
    elif plan.action is Action.REVISE:
        result = run.revise(standing_order)
    else:
        result = run.cancel()
    log.info(
        "cap.ingested",
        key=alert.key,
        action=result.action,
        broadcast_id=str(result.broadcast_id),
        actor=actor if isinstance(actor, str) else actor.handle,
    )
    return result


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
        self.sha256 = hashlib.sha256(raw).hexdigest()
        self.audio_ref, self.inline = _audio(plan.audio)

    def result(self, action: str, ids: Sequence[UUID], stop: bool = False) -> IngestResult:
        p = self.plan
        return IngestResult(
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
        )

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
            scope=self.app.scope_of(p.target_areas, p.target_endpoints),
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

    def new(self, standing_order: StandingOrder | None) -> IngestResult:
        new_id = sourced_broadcast_id(SourceKind.CAP.value, self.plan.key)
        if self.app.exists(new_id):
            return self.result("duplicate", [new_id])
        author = self.author()
        item = Broadcast.draft(self.content(), by=author, source_kind=SourceKind.CAP.value, source_ref=self.plan.key)
        action = self._advance(item, author, standing_order, "drafted")
        try:
            self.app.save_new(item, what=f"a broadcast for CAP message {self.plan.key!r}")
        except DuplicateRecord:  # the same alert, accepted concurrently
            return self.result("duplicate", [item.id])
        return self.result(action, [item.id])

    def _advance(self, item: Broadcast, author: Actor, order: StandingOrder | None, action: str) -> str:
        if self.plan.submit and item.state == "draft":
            item.submit(by=author)
            action = "submitted"
        rule = order(self.alert, self.plan) if order and self.plan.submit else None
        if rule:
            item.auto_approve(rule=rule, now=self.now)
            action = "auto-approved"
        return action

    def revise(self, standing_order: StandingOrder | None) -> IngestResult:
        author = self.author()
        changed = []
        for item in self.referenced():
            built = self.content(item)
            if built == item.content():
                continue
            item.revise(built, by=author)
            self._advance(item, author, standing_order, "revised")
            changed.append(item)
        if not changed:
            return self.result("unchanged", [])
        self.app.save_changes(*changed)
        return self.result("revised", [b.id for b in changed])

    def cancel(self) -> IngestResult:
        author = self.author()
        live = [b for b in self.referenced() if b.state not in FINAL_STATES]
        stop = False
        for item in live:
            stop = item.cancel(by=author, reason=self.plan.reason) or stop
        if not live:
            return self.result("unchanged", [])
        self.app.save_changes(*live)
        return self.result("cancelled", [b.id for b in live], stop)

    def referenced(self) -> list[Broadcast]:
        """The broadcasts the message's references name, each checked against jurisdiction and drill status."""
        found: dict[UUID, Broadcast] = {}
        for ref in self.alert.references:
            own = _OWN_ID.fullmatch(ref.identifier)
            candidate = UUID(own.group(1)) if own else sourced_broadcast_id(SourceKind.CAP.value, ref.key)
            if candidate not in found and self.app.exists(candidate):
                found[candidate] = self.app.broadcast(candidate)
        if not found:
            keys = " ".join(self.plan.references)
            raise UnknownReference(f"alert/references: none of the referenced alerts is known to keng ({keys})")
        for item in found.values():
            foreign = [code for code in item.scope if not self.juris.covers(code)]
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
