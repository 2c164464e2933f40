"""Citizen feedback and "I heard it" confirmations from the app, and the staff's work on feedback.

Inbound (signed by an integration of kind `app`): accepted as services/inbound.py accepts a city-source message
(signature, the webhook id as an idempotency key scoped to the integration, the Inbound record committed with what
the message creates, a replay answered with the original outcome). Feedback's place (a ward or group code, or
coordinates, mapped to the nearest ward centre) must lie within the app's jurisdiction; its photo and contact are
kept outside the event log (adapters/app_messages.py).

Staff (drafters and approvers; a ward's staff only for their wards): triage (assign to a ward), reply (the reply is
queued as a signed push to the app, in the same transaction), close. The overdue report lists what is past its due
date unanswered; the response rate is the share of feedback due so far that was answered in time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from keng.adapters.app_messages import check_photo, keep_contact, keep_photo, parse_feedback, parse_heard
from keng.adapters.store.access import VerifiedInbound, jurisdiction_codes, record_inbound
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import DuplicateRecord, NotFound
from keng.domain.access import Integration, integration_id
from keng.domain.area_registry import AreaRegistry, AreaView, Structure
from keng.domain.broadcast import Broadcast
from keng.domain.errors import AreaEnded, OutsideJurisdiction, UnknownArea
from keng.domain.feedback import DEFAULT_DUE_DAYS, Feedback
from keng.domain.push import REPLY, Push
from keng.domain.values import AreaLevel
from keng.services.inbound import Accepted, Intake, look_up, verify

APP = "app"
FEEDBACK_SOURCE = "app-feedback"
HEARD_SOURCE = "app-heard"
NEAREST_WARD_KM = 10.0
REPLY_TTL = timedelta(days=7)
_ATTEMPTS = 3


def feedback_events() -> list[type]:
    return [Feedback.Received, Feedback.Triaged, Feedback.Replied, Feedback.Closed]


# -- from the app ---------------------------------------------------------------------------------------------------


def _km(a: AreaView, lat: float, lon: float) -> float:
    assert a.lat is not None and a.lon is not None
    dy = (a.lat - lat) * 111.2
    dx = (a.lon - lon) * 111.2 * math.cos(math.radians(lat))
    return math.hypot(dx, dy)


def _unknown(code: str, what: str, registry: AreaRegistry | None, at: datetime) -> UnknownArea:
    """The refusal of a code that names no `what` in force: AreaEnded naming the successors when its unit has
    ended (the registry knows), UnknownArea otherwise."""
    if registry is not None:
        try:
            registry.resolve(code, said_at=at, now=at)
        except AreaEnded as e:
            return e
        except UnknownArea:
            pass
    return UnknownArea(f"rule {UnknownArea.rule}: no {what} with code {code!r}")


def resolve_place(
    place: Mapping[str, Any], tree: Structure, covered: frozenset[str], registry: AreaRegistry | None = None
) -> tuple[str | None, str | None]:
    """(ward, group) of a place on `tree`, the area tree in force now (a message's codes are today's): a group's
    ward, a ward, or the nearest covered ward centre to coordinates (within 10 km); UnknownArea (AreaEnded naming
    the successors, given the `registry`) or OutsideJurisdiction for a code that is unknown or not the app's."""
    index = tree.nodes
    ward: str | None = None
    group: str | None = None
    if place.get("group"):
        node = index.get(place["group"])
        if node is None or node.level != AreaLevel.GROUP.value:
            raise _unknown(place["group"], "residential group", registry if node is None else None, tree.at)
        group, ward = node.code, node.parent
    if place.get("ward"):
        node = index.get(place["ward"])
        if node is None or node.level != AreaLevel.WARD.value:
            raise _unknown(place["ward"], "ward", registry if node is None else None, tree.at)
        if ward is not None and ward != node.code:
            raise UnknownArea(f"rule {UnknownArea.rule}: group {group} is not in ward {node.code}")
        ward = node.code
    if ward is None and "lat" in place:
        wards = [a for a in tree.of_level(AreaLevel.WARD.value) if a.code in covered and a.lat is not None]
        near = min(wards, key=lambda a: _km(a, place["lat"], place["lon"]), default=None)
        if near is not None and _km(near, place["lat"], place["lon"]) <= NEAREST_WARD_KM:
            ward = near.code
    if ward is not None and ward not in covered:
        raise OutsideJurisdiction(f"rule {OutsideJurisdiction.rule}: ward {ward} is outside the app's jurisdiction")
    return ward, group


def accept_feedback(
    intake: Intake,
    *,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    due_days: Mapping[str, int] = DEFAULT_DUE_DAYS,
) -> Accepted:
    """Accept signed feedback from the app (reads the store: call it off the event loop). Raises SignatureError,
    PayloadError, a domain error, or IdempotencyConflict; a refusal records nothing."""
    keyed = verify(intake, APP, headers, body, now)
    for attempt in range(1, _ATTEMPTS + 1):
        earlier = look_up(intake.app, FEEDBACK_SOURCE, keyed)
        if earlier is not None:
            return earlier
        data = parse_feedback(body)
        item = _feedback(intake, keyed, data, due_days)
        outcome = {
            "feedback_id": str(item.id),
            "state": item.state,
            "message_id": keyed.verified.message_id,
            "ward": item.ward,
            "due_at": item.due_at.isoformat(),
        }
        try:
            intake.app.save_new(record_inbound(FEEDBACK_SOURCE, keyed, outcome), item, what="this feedback")
        except DuplicateRecord:
            if attempt >= _ATTEMPTS:
                raise
            continue
        if data.get("contact"):
            keep_contact(intake.data_dir, item.id, data["contact"])
        return Accepted(outcome, replayed=False, integration=keyed.integration)
    raise AssertionError("unreachable")


def _feedback(intake: Intake, keyed: VerifiedInbound, data: dict[str, Any], due_days: Mapping[str, int]) -> Feedback:
    registry = intake.areas.get()
    tree = registry.in_force(intake.app.clock())
    covered = jurisdiction_codes(keyed.integration.jurisdiction, tree)
    place = data.get("place") or {}
    ward, group = resolve_place(place, tree, covered, registry)
    photo = None
    if data.get("photo"):
        raw = check_photo(data["photo"]["content_type"], data["photo"]["data"])
        photo = keep_photo(intake.data_dir, data["photo"]["content_type"], raw)
    return Feedback.receive(
        integration=keyed.integration.name,
        message_id=keyed.verified.message_id,
        category=data["category"],
        text=data["text"],
        now=intake.app.clock(),
        ward=ward,
        group=group,
        lat=place.get("lat"),
        lon=place.get("lon"),
        photo_sha256=photo,
        has_contact=bool(data.get("contact")),
        due_days=due_days,
    )


def accept_heard(intake: Intake, *, headers: Mapping[str, str], body: bytes, now: float) -> Accepted:
    """Accept signed "I heard it" confirmations for a broadcast (reads the store: call it off the event loop). The
    broadcast must reach the app's jurisdiction; the place (optional) must lie in it. Recorded as the Inbound event
    alone: the coverage read model counts them."""
    keyed = verify(intake, APP, headers, body, now)
    for attempt in range(1, _ATTEMPTS + 1):
        earlier = look_up(intake.app, HEARD_SOURCE, keyed)
        if earlier is not None:
            return earlier
        data = parse_heard(body)
        item = intake.app.broadcast(UUID(data["broadcast_id"]))
        registry = intake.areas.get()
        tree = registry.in_force(intake.app.clock())
        covered = jurisdiction_codes(keyed.integration.jurisdiction, tree)
        if not any(_reaches(code, covered, tree.parents) for code in _scope_now(item, registry, tree)):
            raise NotFound(f"broadcast {item.id} not found")  # not the app's to confirm: as if unknown
        ward, group = resolve_place(data.get("place") or {}, tree, covered, registry)
        outcome = {
            "broadcast_id": str(item.id),
            "message_id": keyed.verified.message_id,
            "ward": ward,
            "group": group,
            "count": int(data.get("count", 1)),
        }
        try:
            intake.app.save_new(record_inbound(HEARD_SOURCE, keyed, outcome), what="this confirmation")
        except DuplicateRecord:
            if attempt >= _ATTEMPTS:
                raise
            continue
        return Accepted(outcome, replayed=False, integration=keyed.integration)
    raise AssertionError("unreachable")


def _scope_now(item: Broadcast, registry: AreaRegistry, tree: Structure) -> list[str]:
    """The broadcast's scope codes (recorded as they were then) read on today's tree: a code of a unit that has
    changed since stands for the codes that cover its ground now."""
    out: list[str] = []
    for code in item.scope:
        try:
            out.extend(registry.resolve(code, said_at=item.created_on, now=tree.at).codes)
        except UnknownArea:
            out.append(code)
    return out


def _reaches(code: str, covered: frozenset[str], parents: Mapping[str, str | None]) -> bool:
    """True when a scope code is covered, or is above a covered ward (a district-wide bulletin reaches each ward)."""
    if code in covered:
        return True
    return any(_ancestor(ward, code, parents) for ward in covered)


def _ancestor(node: str | None, code: str, parents: Mapping[str, str | None]) -> bool:
    for _ in range(16):
        if node is None:
            return False
        if node == code:
            return True
        node = parents.get(node)
    return False


# -- staff ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackRow:
    """One feedback item as listed to staff."""

    item: Feedback
    overdue: bool


def all_feedback(app: Keng) -> list[Feedback]:
    """Every feedback item, folded from the feedback events alone, oldest first."""
    return sorted(app.aggregates_of(*feedback_events()).values(), key=lambda f: f.created_on)


def readable(app: Keng, *, by: str, state: str | None = None, overdue: bool = False) -> list[FeedbackRow]:
    """Feedback a staff member may read: district-wide staff and auditors all; a ward's staff their wards'."""
    member = app.staff(by)
    now = app.clock()
    rows = []
    for item in all_feedback(app):
        if member.wards and "auditor" not in member.roles and item.ward not in member.wards:
            continue
        if state is not None and item.state != state:
            continue
        late = item.overdue(now)
        if overdue and not late:
            continue
        rows.append(FeedbackRow(item, late))
    return rows


def get(app: Keng, fid: UUID, *, by: str) -> Feedback:
    """One feedback item, if the staff member may read it (NotFound otherwise)."""
    member = app.staff(by)
    item = app.load(Feedback, fid, f"feedback {fid}")
    if member.wards and "auditor" not in member.roles and item.ward not in member.wards:
        raise NotFound(f"feedback {fid} not found")
    return item


def triage(app: Keng, fid: UUID, *, ward: str, by: str) -> Feedback:
    """Assign feedback to a ward (a registered ward within the actor's scope)."""
    member = app.staff(by)
    item = app.load(Feedback, fid, f"feedback {fid}")
    app.area_of_level(ward, AreaLevel.WARD)
    item.triage(ward=ward, by=member)
    app.save_changes(item)
    return item


def reply(app: Keng, fid: UUID, *, text: str, by: str) -> tuple[Feedback, Push | None]:
    """Reply to feedback; the reply is queued as a signed push to the app (when it has a webhook URL) and saved in
    the same transaction as the reply."""
    member = app.staff(by)
    item = app.load(Feedback, fid, f"feedback {fid}")
    number = item.reply(text, by=member)
    push = None
    try:
        integration = app.load(Integration, integration_id(item.integration), "integration")
    except NotFound:
        integration = None
    if integration is not None and integration.report_url:
        now = app.clock()
        push = Push.queue(
            target=integration.name,
            target_kind=integration.kind,
            url=integration.report_url,
            kind=REPLY,
            subject=str(item.id),
            revision=number,
            wards=[item.ward] if item.ward else [],
            body={
                "type": REPLY,
                "feedback_id": str(item.id),
                "message_id": item.message_id,
                "reply": number,
                "text": item.replies[-1]["text"],
                "ward": item.ward,
                "at": now.isoformat(timespec="seconds"),
            },
            expires_at=now + REPLY_TTL,
        )
        app.save_changes(item, push)
    else:
        app.save_changes(item)
    return item, push


def close(app: Keng, fid: UUID, *, by: str, reason: str = "") -> Feedback:
    """Close feedback (final)."""
    member = app.staff(by)
    item = app.load(Feedback, fid, f"feedback {fid}")
    item.close(by=member, reason=reason)
    app.save_changes(item)
    return item


def response_rate(items: list[Feedback], now: datetime) -> dict[str, Any]:
    """Of the feedback due by `now` (or already answered), the share answered by its due date."""
    due = [f for f in items if f.due_at <= now or f.replied_at is not None]
    on_time = sum(1 for f in due if f.replied_at is not None and f.replied_at <= f.due_at)
    return {
        "value": round(100.0 * on_time / len(due), 1) if due else 0.0,
        "numerator": on_time,
        "denominator": len(due),
        "overdue": sum(1 for f in items if f.overdue(now)),
    }


def photo_of(data_dir: Path, item: Feedback) -> Path | None:
    """The kept photo of a feedback item, if any."""
    from keng.adapters.app_messages import photo_path

    return photo_path(data_dir, item.photo_sha256) if item.photo_sha256 else None
