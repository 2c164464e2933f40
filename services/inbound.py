"""Accepting inbound messages: a city-source webhook and a CAP 1.2 alert, with one idempotency shape.

Why this module exists: both are use cases ("accept this signed message"), not HTTP concerns. Written once here with
explicit collaborators (`Intake`), they serve the HTTP handlers (parse -> call -> present), and a console or a test
can call the same functions. Adapters keep the I/O primitives (signature check, the store, CAP parsing and mapping).

The shape, for both sources:
1. verify the signature over the raw bytes; it names the integration that signed;
2. look up the idempotency key, scoped to that integration (the webhook id; CAP's own `sender,identifier,sent`):
   a key used before is answered with its original outcome (a replay), or refused (IdempotencyConflict, 422) when it
   came with another body; another integration's use of the same key is no concern of this one;
3. prepare the records the message creates or changes, unsaved;
4. commit them together with the Inbound record in one transaction. The Inbound id derives from the key, so a
   concurrent duplicate collides on the store's uniqueness constraint and goes back to step 2, where the winner's
   record answers it as a replay;
5. the outcome (`Accepted`).

The city-source fast path: the common message (fresh caches, targets in the area cache) is prepared on the event loop
without reading the store, because a thread hop per request measurably lengthened the tail under load (bench/
ingest.py). There step 2 is left to the commit's uniqueness check; whatever would read the store (a stale cache, an
endpoint target, a refusal that may be a replay's) returns NEEDS_STORE and the caller runs the steps in a worker
thread, as the library's synchronous calls must.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from eventsourcing.domain import Aggregate

from keng.adapters.cap.ingest import IngestResult, PendingIngest, prepare_cap
from keng.adapters.cap.parse import parse_cap
from keng.adapters.cap.places import PlaceIndex
from keng.adapters.city_source import parse_city_message
from keng.adapters.secrets import SecretStore
from keng.adapters.store.access import VerifiedInbound, find_inbound, record_inbound, verify_inbound
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import ConcurrencyConflict, DuplicateRecord
from keng.domain.access import Integration
from keng.domain.area_registry import AreaRegistry, AreaView, Structure
from keng.domain.broadcast import Broadcast
from keng.domain.cap import CapAlert
from keng.domain.cap_mapping import CapPlan
from keng.domain.inbound import Inbound
from keng.domain.standing_orders import StandingOrder, first_match
from keng.domain.values import SourceKind
from keng.services.cap_documents import keep_document

CITY_SOURCE = SourceKind.CITY_SOURCE.value
CAP_SOURCE = SourceKind.CAP.value
_ATTEMPTS = 3  # a commit that collides goes back to the lookup; a third collision is an error, not a race
T_co = TypeVar("T_co", covariant=True)


class Cache(Protocol[T_co]):
    """A value kept in memory and re-read from the store now and then (areas, integrations)."""

    def get(self) -> T_co: ...

    @property
    def fresh(self) -> bool:
        """True when `get()` answers from memory, without reading the store."""
        ...


class Committer(Protocol):
    """Saves new records in one transaction (shared with other callers'); the future resolves after the commit."""

    def submit(self, *aggregates: Aggregate, what: str) -> Future[None]: ...


class IdempotencyConflict(Exception):
    """The same message id was used again with a different body."""


class NeedsStore(Enum):
    """Preparing this message on the event loop would read the store: run the steps in a worker thread."""

    NEEDS_STORE = "needs-store"


NEEDS_STORE = NeedsStore.NEEDS_STORE


@dataclass(frozen=True)
class Intake:
    """What accepting inbound messages needs, passed in by whoever calls (the HTTP app, a console, a test)."""

    app: Keng
    secrets: SecretStore
    areas: Cache[AreaRegistry]
    """Every area unit ever recorded; targets are read on the tree in force at the app clock's now."""
    integrations: Cache[list[Integration]]
    committer: Committer
    data_dir: Path
    """Received CAP documents are kept under `data_dir/cap`, named by their SHA-256."""
    standing_orders: Sequence[StandingOrder] = ()
    places: PlaceIndex = field(default_factory=PlaceIndex)


@dataclass(frozen=True)
class Accepted:
    """Step 5: the outcome the sender is answered with; `replayed` when it is an earlier message's."""

    outcome: dict[str, Any]
    replayed: bool
    integration: Integration


@dataclass(frozen=True)
class Prepared:
    """Step 3 for a city-source message: its broadcast and its Inbound record, unsaved."""

    keyed: VerifiedInbound
    inbound: Inbound
    broadcast: Broadcast


def verify(intake: Intake, source: str, headers: Mapping[str, str], body: bytes, now: float) -> VerifiedInbound:
    """Step 1: the signature, checked against the active secrets of the integrations of this kind."""
    candidates = [i for i in intake.integrations.get() if i.kind == source]
    return verify_inbound(intake.secrets, candidates, headers=headers, body=body, now=now)


def look_up(app: Keng, source: str, keyed: VerifiedInbound) -> Accepted | None:
    """Step 2: the original outcome if this integration used this key before with the same body; IdempotencyConflict
    if with another body; None for a new message."""
    earlier = find_inbound(app, source, keyed.verified.message_id, keyed.integration.name)
    if earlier is None:
        return None
    if earlier.payload_sha256 != keyed.payload_sha256:
        raise IdempotencyConflict(
            f"webhook id {keyed.verified.message_id!r} was already used with a different body "
            f"(sha256 {earlier.payload_sha256[:12]}…); send a new id for a new message"
        )
    return Accepted(earlier.outcome, replayed=True, integration=keyed.integration)


# -- a city-source message ------------------------------------------------------------------------------------------


def prepare_city_message(intake: Intake, *, headers: Mapping[str, str], body: bytes, now: float) -> Prepared | Accepted:
    """Steps 1-3, reading the store as needed (call it off the event loop)."""
    keyed = verify(intake, CITY_SOURCE, headers, body, now)
    earlier = look_up(intake.app, CITY_SOURCE, keyed)
    if earlier is not None:
        return earlier
    tree = _tree_now(intake)
    return _city_records(intake, keyed, parse_city_message(body), tree, tree.nodes)


def prepare_city_message_inline(
    intake: Intake, *, headers: Mapping[str, str], body: bytes, now: float
) -> Prepared | NeedsStore:
    """Steps 1 and 3 without reading the store (fit for the event loop), step 2 left to the commit's uniqueness
    check. NEEDS_STORE when a cache is stale, a target is not in the area cache, and on any refusal: it may be a
    replay's, which is answered with its original outcome even if the rules changed since."""
    if not (intake.areas.fresh and intake.integrations.fresh):
        return NEEDS_STORE
    keyed = verify(intake, CITY_SOURCE, headers, body, now)
    try:
        fields = parse_city_message(body)
        tree = _tree_now(intake)
        if fields["target_endpoints"] or any(code not in tree for code in fields["target_areas"]):
            return NEEDS_STORE
        return _city_records(intake, keyed, fields, tree, tree.nodes)
    except Exception:
        return NEEDS_STORE


async def accept_city_message(intake: Intake, *, headers: Mapping[str, str], body: bytes, now: float) -> Accepted:
    """Accept a signed city-source message: its broadcast is drafted and submitted for approval (approved at once by
    a standing order that covers it) and saved with its Inbound record by the group committer. Raises SignatureError,
    PayloadError, a domain error, IdempotencyConflict, or Overloaded (the write queue is full)."""
    step: Prepared | Accepted | NeedsStore = prepare_city_message_inline(intake, headers=headers, body=body, now=now)
    attempt = 0
    while True:
        attempt += 1
        if step is NEEDS_STORE:
            step = await asyncio.to_thread(prepare_city_message, intake, headers=headers, body=body, now=now)
        if isinstance(step, Accepted):
            return step
        try:
            await asyncio.wrap_future(intake.committer.submit(step.inbound, step.broadcast, what="this message"))
        except DuplicateRecord:
            if attempt >= _ATTEMPTS:
                raise
            step = NEEDS_STORE  # another writer came first: the lookup on the next turn answers with its outcome
            continue
        return Accepted(step.inbound.outcome, replayed=False, integration=step.keyed.integration)


def _tree_now(intake: Intake) -> Structure:
    """The area tree in force at the app clock's now."""
    return intake.areas.get().in_force(intake.app.clock())


def _city_records(
    intake: Intake, keyed: VerifiedInbound, fields: dict[str, Any], tree: Structure, index: Mapping[str, AreaView]
) -> Prepared:
    """The broadcast a verified message creates (drafted, submitted, perhaps auto-approved) and its Inbound record.
    The payload carries no time of its own, so its target codes are read as of receipt: today's codes; a code whose
    unit has ended is refused naming its successors (AreaEnded, from `scope_of`)."""
    actor = keyed.actor(tree)
    ref = keyed.verified.message_id
    item = intake.app.prepare_broadcast(actor, source_kind=CITY_SOURCE, source_ref=ref, area_index=index, **fields)
    item.submit(by=actor)
    rule = first_match(intake.standing_orders, sender=keyed.integration.name, priority=item.priority)
    if rule:
        item.auto_approve(rule=rule, now=intake.app.clock())
    outcome = {"broadcast_id": str(item.id), "state": item.state, "message_id": ref}
    return Prepared(keyed, record_inbound(CITY_SOURCE, keyed, outcome), item)


# -- a CAP alert ----------------------------------------------------------------------------------------------------


def accept_cap_alert(intake: Intake, *, headers: Mapping[str, str], raw: bytes, now: float) -> Accepted:
    """Accept a signed CAP 1.2 message (reads the store: call it off the event loop). What it does (draft, revise,
    cancel, or only record) and its Inbound record are saved in one transaction. Raises SignatureError, CapError
    (parse, validation), CapRefused (mapping, jurisdiction, a sender or an alert the integration does not own), a
    domain error, or IdempotencyConflict; a refusal stores nothing."""
    verified = verify(intake, CAP_SOURCE, headers, raw, now)
    alert = parse_cap(raw)
    # CAP's own `sender,identifier,sent` is the idempotency key (not the transport's webhook id).
    keyed = replace(verified, verified=replace(verified.verified, message_id=alert.key))
    attempt = 0
    while True:
        attempt += 1
        earlier = look_up(intake.app, CAP_SOURCE, keyed)
        if earlier is not None:
            return earlier
        pending = _cap_changes(intake, keyed, raw)
        outcome = _cap_outcome(pending.result)
        # The document is kept as received (every info block, in every language) and tied to the Inbound record by
        # its SHA-256; /cap/{id}.xml republishes it while the broadcast is unrevised.
        outcome["document_sha256"] = keep_document(intake.data_dir, raw)
        outcome["languages"] = sorted({i.language for i in alert.infos})
        try:
            pending.commit(record_inbound(CAP_SOURCE, keyed, outcome))
        except (DuplicateRecord, ConcurrencyConflict):
            if attempt >= _ATTEMPTS:
                raise
            continue  # another writer came first: its record answers on the next turn (or the broadcast is re-read)
        return Accepted(outcome, replayed=False, integration=keyed.integration)


def _cap_changes(intake: Intake, keyed: VerifiedInbound, raw: bytes) -> PendingIngest:
    actor = keyed.actor(_tree_now(intake))

    def standing_order(alert: CapAlert, plan: CapPlan) -> str | None:
        info = next((i for i in alert.infos if i.language.lower().startswith("vi")), alert.infos[0])
        return first_match(
            intake.standing_orders,
            sender=keyed.integration.name,
            events=[info.event, *(c.value for c in info.categories)],
            severity=info.severity.value,
            urgency=info.urgency.value,
            priority=plan.priority.value if plan.priority else None,
        )

    return prepare_cap(
        intake.app,
        raw,
        sender_jurisdiction=list(actor.area_codes),
        actor=actor,
        places=intake.places,
        standing_order=standing_order,
    )


def _cap_outcome(result: IngestResult) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "action": result.action,
        "key": result.key,
        "status": result.status,
        "msg_type": result.msg_type,
        "broadcast_ids": [str(b) for b in result.broadcast_ids],
        "stop_required": result.stop_required,
        "reason": result.reason,
    }
    if result.warnings:  # doubtful but accepted (a resource refused on its own among them); kept in the Inbound record
        outcome["warnings"] = list(result.warnings)
    if result.notes:  # area codes read as of the alert's `sent` as other codes today (a divided ward: its parts)
        outcome["notes"] = list(result.notes)
    return outcome
