"""Pure folding of events into read-model documents: the one piece of code that both the live read store and an
as-of replay run, so that they cannot disagree.

State is a set of JSON documents by (kind, key) plus an append-only timeline of rows; `Docs` is whatever holds them
(the tracked read store, or a dict in tests). Kinds: area, endpoint, staff, broadcast, dispatch, kpi.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from domain.area import Area
from domain.broadcast import Broadcast
from domain.dispatch import Dispatch
from domain.endpoint import Endpoint
from domain.staff import Staff
from projections import kpi

Doc = dict[str, Any]
Row = tuple[int, str, str, str, str, str, str]  # position, at, subject kind, subject, event, actor, detail


class Docs(Protocol):
    """Where folded state lives."""

    def get(self, kind: str, key: str) -> Doc | None: ...

    def put(self, kind: str, key: str, doc: Doc) -> None: ...

    def note(self, row: Row) -> None: ...


Handler = Callable[[Any, str, Docs], None]
HANDLERS: dict[type, Handler] = {}


def on(*classes: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for cls in classes:
            HANDLERS[cls] = fn
        return fn

    return register


def fold(position: int, event: Any, docs: Docs) -> None:
    """Apply one event (at its global position) to the read models."""
    at = event.timestamp.isoformat()
    kpi.before_event(at, docs)
    handler = HANDLERS.get(type(event))
    if handler is not None:
        handler(event, at, docs)
    actor = getattr(event, "by", None)
    name = type(event).__qualname__
    if actor:
        docs.note((position, at, "staff", actor, name, actor, _detail(event)))
    subject = _subject(event, docs)
    if subject is not None:
        docs.note((position, at, subject[0], subject[1], name, actor or "", _detail(event)))


def _detail(event: Any) -> str:
    for key in ("title", "reason", "role", "course", "fault", "code", "rule", "channel", "state"):
        value = getattr(event, key, None)
        if value:
            return str(value)[:120]
    return ""


def _subject(event: Any, docs: Docs) -> tuple[str, str] | None:
    oid = str(event.originator_id)
    if isinstance(event, Broadcast.Event):
        return "broadcast", oid
    if isinstance(event, Dispatch.Event):
        d = docs.get("dispatch", oid)
        return ("broadcast", d["broadcast_id"]) if d else None
    if isinstance(event, Endpoint.Event):
        e = docs.get("endpoint", oid)
        return ("endpoint", e["code"]) if e else None
    return None


# -- inventory -------------------------------------------------------------------------------------------------------


@on(Area.Registered)
def _area(e: Area.Registered, at: str, docs: Docs) -> None:
    docs.put("area", str(e.originator_id), {"code": e.code, "name": e.name, "level": e.level, "parent": e.parent})
    kpi.area_registered(e.code, e.level, e.parent, docs)


@on(Staff.Enrolled)
def _enrolled(e: Staff.Enrolled, at: str, docs: Docs) -> None:
    doc = {"handle": e.handle, "name": e.name, "roles": list(e.roles), "trainings": 0, "enrolled_at": at}
    docs.put("staff", str(e.originator_id), doc)
    kpi.staff_changed(None, doc, docs)


@on(Staff.RoleGranted, Staff.RoleRevoked, Staff.TrainingCompleted)
def _staff(e: Any, at: str, docs: Docs) -> None:
    key = str(e.originator_id)
    doc = docs.get("staff", key)
    if doc is None:
        return
    new = dict(doc, roles=list(doc["roles"]))
    if isinstance(e, Staff.RoleGranted):
        new["roles"].append(e.role)
    elif isinstance(e, Staff.RoleRevoked):
        new["roles"].remove(e.role)
    else:
        new["trainings"] += 1
        new["trained_on"] = new.get("trained_on") or e.completed_on
    docs.put("staff", key, new)
    kpi.staff_changed(doc, new, docs)


@on(Endpoint.Registered)
def _registered(e: Endpoint.Registered, at: str, docs: Docs) -> None:
    fm = e.kind == "fm-speaker"
    doc = {
        "code": e.code, "kind": e.kind, "ward": e.ward, "group": e.group, "technology": e.technology,
        "installed_on": e.installed_on, "condition": e.condition, "fault": None, "online": None, "since": at,
        "decommissioned": False, "was_fm": fm, "fm_condition": e.condition if fm else None, "converted_at": None,
        "registered_at": at, "last_published": None,
    }  # fmt: skip
    docs.put("endpoint", str(e.originator_id), doc)
    kpi.endpoint_changed(None, doc, docs)


_WORSE = {"good": 0, "degraded": 1, "broken": 2}


def _endpoint_change(e: Any, at: str, current: Doc) -> Doc:
    new = dict(current)
    if isinstance(e, Endpoint.CameOnline):
        new.update(online=True, since=at)
    elif isinstance(e, Endpoint.WentOffline):
        new.update(online=False, since=at)
    elif isinstance(e, Endpoint.FaultReported):
        new.update(condition=e.severity, fault=e.fault)
        if new["kind"] == "fm-speaker" and _WORSE[e.severity] > _WORSE[new["fm_condition"] or "good"]:
            new["fm_condition"] = e.severity
    elif isinstance(e, Endpoint.Repaired):
        new.update(condition="good", fault=None)
    elif isinstance(e, Endpoint.ConvertedToIP):
        new.update(kind="ip-speaker", technology=e.technology, converted_at=at)
    elif isinstance(e, Endpoint.Decommissioned):
        new.update(decommissioned=True, online=False, since=at)
    return new


@on(Endpoint.CameOnline, Endpoint.WentOffline, Endpoint.FaultReported, Endpoint.Repaired, Endpoint.ConvertedToIP,
    Endpoint.Decommissioned)  # fmt: skip
def _endpoint(e: Any, at: str, docs: Docs) -> None:
    key = str(e.originator_id)
    current = docs.get("endpoint", key)
    if current is None:
        return
    new = _endpoint_change(e, at, current)
    docs.put("endpoint", key, new)
    kpi.endpoint_changed(current, new, docs)


# -- broadcasts and dispatch -----------------------------------------------------------------------------------------


@on(Broadcast.Drafted)
def _drafted(e: Broadcast.Drafted, at: str, docs: Docs) -> None:
    doc: Doc = {
        "id": str(e.originator_id), "title": e.title, "priority": e.priority, "drill": e.drill, "state": "draft",
        "source": {"kind": e.source_kind, "ref": e.source_ref}, "drafted_by": e.by, "drafted_at": at,
        "target_areas": list(e.target_areas), "scope": list(e.scope), "channels": list(e.channels),
        "expires_at": e.expires_at.isoformat(), "revision": 0, "approvals": [], "renders": [], "dispatches": [],
        "end_reason": None, "updated_at": at,
    }  # fmt: skip
    docs.put("broadcast", doc["id"], doc)


_STATES = {
    Broadcast.Revised: None, Broadcast.SubmittedForApproval: "submitted", Broadcast.Approved: "approved",
    Broadcast.AutoApproved: "approved", Broadcast.Rejected: "rejected", Broadcast.Scheduled: "scheduled",
    Broadcast.DispatchOpened: "dispatching", Broadcast.Completed: "completed", Broadcast.Cancelled: "cancelled",
    Broadcast.Expired: "expired", Broadcast.Rendered: None, Broadcast.RenderFailed: None,
}  # fmt: skip


@on(*_STATES)
def _broadcast(e: Any, at: str, docs: Docs) -> None:
    key = str(e.originator_id)
    doc = docs.get("broadcast", key)
    if doc is None:
        return
    new = dict(doc, updated_at=at)
    state = _STATES[type(e)]
    if state:
        new["state"] = state
    if isinstance(e, Broadcast.Revised):
        new.update(title=e.title, priority=e.priority, drill=e.drill, revision=doc["revision"] + 1, approvals=[],
                   target_areas=list(e.target_areas), expires_at=e.expires_at.isoformat())  # fmt: skip
        new["state"] = "draft" if doc["state"] == "draft" else "submitted"
    elif isinstance(e, Broadcast.Approved | Broadcast.AutoApproved):
        by, role = (e.by, "approver") if isinstance(e, Broadcast.Approved) else (None, "standing-order")
        rule = getattr(e, "rule", None)
        new["approvals"] = [*doc["approvals"], {"by": by, "role": role, "rule": rule, "at": at, "revision": e.revision}]
    elif isinstance(e, Broadcast.Rendered):
        render = {"channel": e.channel, "asset_hash": e.asset_hash, "engine": e.engine, "at": at}
        new["renders"] = [*doc["renders"], render]
    elif isinstance(e, Broadcast.DispatchOpened):
        new["dispatches"] = [*doc["dispatches"], str(e.dispatch_id)]
    elif isinstance(e, Broadcast.Rejected | Broadcast.Cancelled):
        new["end_reason"] = e.reason
    docs.put("broadcast", key, new)


@on(Dispatch.Opened)
def _opened(e: Dispatch.Opened, at: str, docs: Docs) -> None:
    doc: Doc = {"id": str(e.originator_id), "broadcast_id": str(e.broadcast_id), "wave": e.wave, "opened_at": at,
           "drill": e.drill, "targets": list(e.targets), "acks": {}, "retries": 0, "closed_at": None}  # fmt: skip
    docs.put("dispatch", doc["id"], doc)


_RANK = {"received": 1, "playing": 2, "played": 3, "failed": 3}


@on(Dispatch.AcksRecorded, Dispatch.RetriesSent, Dispatch.Closed)
def _dispatch(e: Any, at: str, docs: Docs) -> None:
    key = str(e.originator_id)
    doc = docs.get("dispatch", key)
    if doc is None:
        return
    new = dict(doc)
    if isinstance(e, Dispatch.AcksRecorded):
        acks = dict(doc["acks"])
        for ack in e.acks:
            code, state, when = ack["endpoint"], ack["state"], ack["at"]
            cur = acks.get(code)
            if cur is None:
                acks[code] = [state, when, when]  # furthest state, its time, first ack time
            elif _RANK[state] > _RANK[cur[0]]:
                acks[code] = [state, when, min(cur[2], when)]
            if state in ("played", "received"):
                kpi.portal_published(code, when, docs)
        new["acks"] = acks
    elif isinstance(e, Dispatch.RetriesSent):
        new["retries"] = doc["retries"] + 1
    else:
        new["closed_at"] = at
    docs.put("dispatch", key, new)
