"""Pure folding of events into read-model documents: the one piece of code that both the live read store and an
as-of replay run, so that they cannot disagree.

State is a set of JSON documents by (kind, key) plus an append-only timeline of rows; `Docs` is whatever holds them
(the tracked read store, or a dict in tests). Kinds: area, endpoint, staff, broadcast, dispatch, kpi.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from keng.domain.area import Area
from keng.domain.broadcast import STATE_AFTER, Broadcast, state_after_revision
from keng.domain.dispatch import Dispatch, first_ack_at
from keng.domain.endpoint import Endpoint
from keng.domain.feedback import Feedback
from keng.domain.inbound import Inbound
from keng.domain.staff import Staff
from keng.domain.values import ACK_RANK, AckState, BroadcastState
from keng.projections import kpi, units
from keng.projections.facts import Fact

Doc = dict[str, Any]
Row = tuple[int, str, str, str, str, str, str]  # position, at, subject kind, subject, event, actor, detail
# The documents' format: a store folded with another one is dropped and rebuilt by replay (runtime/workers/readmodels).
# 2: areas as dated facts (periods, the code index, endpoints' dated assignments, plan counters by unit id).
FORMAT = 2


class Docs(Protocol):
    """Where folded state lives."""

    def get(self, kind: str, key: str) -> Doc | None: ...

    def put(self, kind: str, key: str, doc: Doc) -> None: ...

    def note(self, row: Row) -> None: ...


Handler = Callable[[Fact, Docs], None]
HANDLERS: dict[str, Handler] = {}
_DETAIL_KEYS = ("title", "reason", "role", "course", "fault", "code", "rule", "channel", "state")


def on(*classes: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for cls in classes:
            HANDLERS[cls.__qualname__] = fn
        return fn

    return register


def fold(f: Fact, docs: Docs) -> None:
    """Apply one event to the read models."""
    at = f.at
    kpi.before_event(at, docs)
    handler = HANDLERS.get(f.name)
    if handler is not None:
        handler(f, docs)
    data = f.data
    actor = data.get("by")
    detail = ""
    explain = _DETAILS.get(f.name)
    if explain is not None:
        detail = explain(data)[:120]
    else:
        for key in _DETAIL_KEYS:
            value = data.get(key)
            if value:
                detail = str(value)[:120]
                break
    if actor:
        docs.note((f.position, at, "staff", actor, f.name, actor, detail))
    subject = _subject(f, docs)
    if subject is not None:
        docs.note((f.position, at, subject[0], subject[1], f.name, actor or "", detail))


def _subject(f: Fact, docs: Docs) -> tuple[str, str] | None:
    aggregate = f.aggregate
    if aggregate == "Broadcast":
        return "broadcast", f.oid
    if aggregate == "Dispatch":
        d = docs.get("dispatch", f.oid)
        return ("broadcast", d["broadcast_id"]) if d else None
    if aggregate == "Endpoint":
        e = docs.get("endpoint", f.oid)
        return ("endpoint", e["code"]) if e else None
    if aggregate == "Area":
        return "area", f.oid  # by id: a code may name another unit at another time
    return None


def _codes(values: list[str]) -> str:
    return ", ".join(values) if values else "-"


def _wards(values: list[str]) -> str:
    return ", ".join(values) if values else "toàn địa bàn"


def _since(data: Doc) -> str:
    return f" từ {data['effective']}" if data.get("effective") else ""


_LEVELS_VI = {"city": "tỉnh/thành phố", "district": "quận/huyện", "ward": "phường/xã", "group": "tổ dân phố"}
_ENDINGS_VI = {"merged": "sáp nhập", "divided": "chia tách", "dissolved": "giải thể"}


def _unit(d: Doc) -> str:
    within = f", thuộc {d['parent']}" if d["parent"] else ""
    return f"{d['code']} {d['name']} ({_LEVELS_VI.get(d['level'], d['level'])}{within})"


# The timeline's detail (Vietnamese, as staff read it) of the events that record areas and their reorganisation:
# what changed, and from which day.
_DETAILS: dict[str, Callable[[Doc], str]] = {
    "Area.Registered": _unit,
    "Area.Established": lambda d: (
        _unit(d) + _since(d) + (f", hình thành từ {_codes(d['predecessors'])}" if d["predecessors"] else "")
    ),
    "Area.Renamed": lambda d: f"đổi tên thành {d['name']}{_since(d)}",
    "Area.Recoded": lambda d: f"đổi mã thành {d['code']}{_since(d)}",
    "Area.Moved": lambda d: f"trực thuộc {d['parent'] or '-'} ({_LEVELS_VI.get(d['level'], d['level'])}){_since(d)}",
    "Area.Ended": lambda d: (
        f"{_ENDINGS_VI.get(d['how'], d['how'])}{_since(d)}; đơn vị kế thừa: {_codes(d['successors'])}"
    ),
    "Endpoint.Reassigned": lambda d: f"sang phường {d['ward']}, tổ {d['group'] or '-'}{_since(d)} ({d['how']})",
    "Staff.ScopeCarriedOver": lambda d: f"phạm vi {_wards(d['previous'])} -> {_wards(d['wards'])}{_since(d)}",
    "Integration.JurisdictionCarriedOver": lambda d: (
        f"phạm vi {_wards(d['previous'])} -> {_wards(d['jurisdiction'])}{_since(d)}"
    ),
}


# -- inventory -------------------------------------------------------------------------------------------------------


@on(Area.Registered, Area.Established)
def _area(f: Fact, docs: Docs) -> None:
    d = f.data
    start = d.get("effective")  # None: registered before units were dated, in force since always
    period = {"start": start, "end": None, "code": d["code"], "name": d["name"], "level": d["level"],
              "parent": d["parent"]}  # fmt: skip
    doc = {"id": f.oid, "predecessors": list(d.get("predecessors") or []), "generated": d["generated"],
           "lat": d["lat"], "lon": d["lon"]}  # fmt: skip
    _put_area(f.oid, doc, [period], None, docs)


@on(Area.Renamed, Area.Recoded, Area.Moved, Area.Ended)
def _area_change(f: Fact, docs: Docs) -> None:
    doc = docs.get("area", f.oid)
    if doc is None:
        return
    d, name = f.data, f.name
    day = d["effective"]
    ending = doc["ending"]
    if name == "Area.Renamed":
        periods = units.changed(doc["periods"], day, name=d["name"])
    elif name == "Area.Recoded":
        periods = units.changed(doc["periods"], day, code=d["code"])
    elif name == "Area.Moved":
        periods = units.changed(doc["periods"], day, parent=d["parent"], level=d["level"])
    else:
        periods = units.ended(doc["periods"], day)
        ending = {"how": d["how"], "effective": day, "successors": list(d["successors"]), "note": d["note"]}
    _put_area(f.oid, doc, periods, ending, docs)


def _put_area(oid: str, base: Doc, periods: list[Doc], ending: Doc | None, docs: Docs) -> None:
    """Store an area document (the latest period's code, name, level and parent, every period, how it ended), index
    its codes by day, and tell the plan counters."""
    last = periods[-1]
    doc = {**base, "code": last["code"], "name": last["name"], "level": last["level"], "parent": last["parent"],
           "periods": periods, "valid_from": periods[0]["start"], "valid_to": last["end"], "ending": ending,
           "successors": list(ending["successors"]) if ending else []}  # fmt: skip
    docs.put("area", oid, doc)
    for code in {p["code"] for p in periods}:
        index = docs.get("area-code", code)
        entries = [e for e in (index["units"] if index else []) if e[2] != oid]
        entries += [[p["start"], p["end"], oid] for p in periods if p["code"] == code]
        entries.sort(key=lambda e: (e[0] or "", e[2]))
        docs.put("area-code", code, {"units": entries})
    kpi.area_changed(oid, periods, docs)


def unit_id(code: str | None, day: str, docs: Docs) -> str | None:
    """The id of the unit that held `code` on `day`, as far as the events folded so far tell (None: no such code)."""
    if not code:
        return None
    index = docs.get("area-code", code)
    return units.held_by(index["units"], day) if index else None


@on(Staff.Enrolled)
def _enrolled(f: Fact, docs: Docs) -> None:
    d = f.data
    doc = {"handle": d["handle"], "name": d["name"], "roles": list(d["roles"]), "trainings": 0, "enrolled_at": f.at,
           "wards": list(d["wards"]), "scope_changes": []}  # fmt: skip
    docs.put("staff", f.oid, doc)
    kpi.staff_changed(None, doc, docs)


@on(Staff.ScopeCarriedOver)
def _scope_carried_over(f: Fact, docs: Docs) -> None:
    """A reorganisation carried the member's wards over to the units that replaced them (empty: province-wide)."""
    doc = docs.get("staff", f.oid)
    if doc is None:
        return
    d = f.data
    change = {"effective": d["effective"], "previous": list(d["previous"]), "wards": list(d["wards"])}
    docs.put("staff", f.oid, dict(doc, wards=list(d["wards"]), scope_changes=[*doc.get("scope_changes", ()), change]))


@on(Staff.RoleGranted, Staff.RoleRevoked, Staff.TrainingCompleted)
def _staff(f: Fact, docs: Docs) -> None:
    doc = docs.get("staff", f.oid)
    if doc is None:
        return
    new = dict(doc, roles=list(doc["roles"]))
    if f.name == "Staff.RoleGranted":
        new["roles"].append(f.data["role"])
    elif f.name == "Staff.RoleRevoked":
        new["roles"].remove(f.data["role"])
    else:
        new["trainings"] += 1
        new["trained_on"] = new.get("trained_on") or f.data["completed_on"]
    docs.put("staff", f.oid, new)
    kpi.staff_changed(doc, new, docs)


@on(Endpoint.Registered)
def _registered(f: Fact, docs: Docs) -> None:
    d, at = f.data, f.at
    fm = d["kind"] == "fm-speaker"
    # Its ward and group are the units that held those codes when it was registered (codes are reused).
    day = units.day_of(at)
    place = {"from": None, "ward": d["ward"], "group": d["group"], "ward_id": unit_id(d["ward"], day, docs),
             "group_id": unit_id(d["group"], day, docs)}  # fmt: skip
    doc = {
        "code": d["code"], "kind": d["kind"], "ward": d["ward"], "group": d["group"], "ward_id": place["ward_id"],
        "group_id": place["group_id"], "assignments": [place], "technology": d["technology"],
        "installed_on": d["installed_on"], "condition": d["condition"], "fault": None, "online": None, "since": at,
        "decommissioned": False, "was_fm": fm, "fm_condition": d["condition"] if fm else None, "converted_at": None,
        "registered_at": at, "last_published": None, "converted_on": None, "decommissioned_on": None,
        "live_since": None, "costs_vnd": {},
    }  # fmt: skip
    docs.put("endpoint", f.oid, doc)
    kpi.endpoint_changed(None, doc, docs)


@on(Endpoint.Reassigned)
def _reassigned(f: Fact, docs: Docs) -> None:
    """A reorganisation moved the endpoint to another ward and group from `effective` (codes as of that day). A new
    assignment replaces any recorded earlier for that day or later, so the latest is always the endpoint's own."""
    current = docs.get("endpoint", f.oid)
    if current is None:
        return
    d = f.data
    day = d["effective"]
    place = {"from": day, "ward": d["ward"], "group": d["group"], "ward_id": unit_id(d["ward"], day, docs),
             "group_id": unit_id(d["group"], day, docs)}  # fmt: skip
    kept = [a for a in current["assignments"] if a["from"] is None or a["from"] < day]
    new = dict(current, ward=d["ward"], group=d["group"], ward_id=place["ward_id"], group_id=place["group_id"],
               assignments=[*kept, place])  # fmt: skip
    docs.put("endpoint", f.oid, new)
    kpi.endpoint_changed(current, new, docs)


# What each lifecycle event's cost is summed under, in an endpoint's `costs_vnd`.
_COST_KEYS = {
    "Endpoint.FaultReported": "fault",
    "Endpoint.Repaired": "repair",
    "Endpoint.ConvertedToIP": "convert",
    "Endpoint.Decommissioned": "decommission",
    "Endpoint.PortalWentLive": "portal-live",
}


def _endpoint_change(f: Fact, current: Doc) -> Doc:
    new, name, at, data = dict(current), f.name, f.at, f.data
    day = data.get("on") or at[:10]  # the day it happened, or (no day given) the day it was recorded
    if name == "Endpoint.CameOnline":
        new.update(online=True, since=at)
    elif name == "Endpoint.WentOffline":
        new.update(online=False, since=at)
    elif name == "Endpoint.FaultReported":
        new.update(condition=data["severity"], fault=data["fault"])
        if new["kind"] == "fm-speaker":  # the roadmap orders stations by their condition while they are FM
            new["fm_condition"] = data["severity"]
    elif name == "Endpoint.Repaired":
        new.update(condition="good", fault=None)
        if new["kind"] == "fm-speaker":
            new["fm_condition"] = "good"
    elif name == "Endpoint.ConvertedToIP":
        new.update(kind="ip-speaker", technology=data["technology"], converted_at=at, converted_on=day)
    elif name == "Endpoint.Decommissioned":
        new.update(decommissioned=True, online=False, since=at, decommissioned_on=day)
    elif name == "Endpoint.PortalWentLive":
        new.update(live_since=day)
    cost = data.get("cost_vnd")
    if cost is not None and name in _COST_KEYS:
        costs = dict(new.get("costs_vnd") or {})
        costs[_COST_KEYS[name]] = costs.get(_COST_KEYS[name], 0) + cost
        new["costs_vnd"] = costs
    return new


@on(Endpoint.CameOnline, Endpoint.WentOffline, Endpoint.FaultReported, Endpoint.Repaired, Endpoint.ConvertedToIP,
    Endpoint.Decommissioned, Endpoint.PortalWentLive)  # fmt: skip
def _endpoint(f: Fact, docs: Docs) -> None:
    current = docs.get("endpoint", f.oid)
    if current is None:
        return
    new = _endpoint_change(f, current)
    docs.put("endpoint", f.oid, new)
    kpi.endpoint_changed(current, new, docs)


# -- citizen feedback and "I heard it" --------------------------------------------------------------------------------


@on(Feedback.Received, Feedback.Replied)
def _feedback(f: Fact, docs: Docs) -> None:
    if f.name == "Feedback.Received":
        kpi.feedback_received(f.oid, str(f.data["due_at"]), docs)
    else:
        kpi.feedback_replied(f.oid, f.at, docs)


@on(Inbound.Accepted)
def _heard(f: Fact, docs: Docs) -> None:
    """Confirmations from the app that a broadcast was heard, per ward (coverage as residents report it)."""
    outcome = f.data.get("outcome") or {}
    if f.data.get("source") != "app-heard" or not outcome.get("broadcast_id"):
        return
    key = outcome["broadcast_id"]
    doc = docs.get("heard", key) or {"total": 0, "wards": {}}
    count = int(outcome.get("count") or 1)
    doc = {"total": doc["total"] + count, "wards": dict(doc["wards"])}
    ward = outcome.get("ward") or "-"
    first_in_ward = doc["wards"].get(ward, 0) == 0
    doc["wards"][ward] = doc["wards"].get(ward, 0) + count
    docs.put("heard", key, doc)
    # And per ward, across broadcasts: how many confirmations, for how many broadcasts, the newest when (coverage);
    # kept by the ward's unit id, since a code may name another ward at another time.
    unit = unit_id(ward, units.day_of(f.at), docs) or ward
    per_ward = docs.get("heard-ward", unit) or {"confirmations": 0, "broadcasts": 0, "last_at": None}
    docs.put("heard-ward", unit, {"confirmations": per_ward["confirmations"] + count,
                                  "broadcasts": per_ward["broadcasts"] + first_in_ward, "last_at": f.at})  # fmt: skip


# -- broadcasts and dispatch -----------------------------------------------------------------------------------------


@on(Broadcast.Drafted)
def _drafted(f: Fact, docs: Docs) -> None:
    d, at = f.data, f.at
    doc: Doc = {
        "id": f.oid, "title": d["title"], "priority": d["priority"], "drill": d["drill"], "state": BroadcastState.DRAFT,
        "source": {"kind": d["source_kind"], "ref": d["source_ref"]}, "drafted_by": d["by"], "drafted_at": at,
        "target_areas": list(d["target_areas"]), "scope": list(d["scope"]), "channels": list(d["channels"]),
        "expires_at": d["expires_at"], "revision": 0, "approvals": [], "renders": [], "dispatches": [],
        "end_reason": None, "updated_at": at,
    }  # fmt: skip
    docs.put("broadcast", f.oid, doc)


_STATE_BY_NAME = {cls.__qualname__: state for cls, state in STATE_AFTER.items()}


@on(*STATE_AFTER, Broadcast.Revised, Broadcast.Rendered, Broadcast.RenderFailed)
def _broadcast(f: Fact, docs: Docs) -> None:
    doc = docs.get("broadcast", f.oid)
    if doc is None:
        return
    d, at, name = f.data, f.at, f.name
    new = dict(doc, updated_at=at)
    state = _STATE_BY_NAME.get(name)
    if state:
        new["state"] = state
    if name == "Broadcast.Revised":
        new.update(title=d["title"], priority=d["priority"], drill=d["drill"], revision=doc["revision"] + 1,
                   approvals=[], target_areas=list(d["target_areas"]), expires_at=d["expires_at"])  # fmt: skip
        new["state"] = state_after_revision(doc["state"])
    elif name in ("Broadcast.Approved", "Broadcast.AutoApproved"):
        by, role = (d["by"], "approver") if name == "Broadcast.Approved" else (None, "standing-order")
        approval = {"by": by, "role": role, "rule": d.get("rule"), "at": at, "revision": d["revision"]}
        new["approvals"] = [*doc["approvals"], approval]
    elif name == "Broadcast.Rendered":
        render = {"channel": d["channel"], "asset_hash": d["asset_hash"], "engine": d["engine"], "at": at}
        new["renders"] = [*doc["renders"], render]
    elif name == "Broadcast.DispatchOpened":
        new["dispatches"] = [*doc["dispatches"], d["dispatch_id"]]
    elif name in ("Broadcast.Rejected", "Broadcast.Cancelled"):
        new["end_reason"] = d["reason"]
    docs.put("broadcast", f.oid, new)


@on(Dispatch.Opened)
def _opened(f: Fact, docs: Docs) -> None:
    d = f.data
    doc: Doc = {"id": f.oid, "broadcast_id": d["broadcast_id"], "wave": d["wave"], "opened_at": f.at,
           "drill": d["drill"], "targets": list(d["targets"]), "acks": {}, "retries": 0, "closed_at": None}  # fmt: skip
    docs.put("dispatch", f.oid, doc)


# Acks that say a command reached its endpoint, for the portal KPI (a frozenset of members: reading an enum member off
# its class costs ~85 ns on Python 3.11, too much once per ack of a rebuild).
_PUBLISHED = frozenset((AckState.RECEIVED.value, AckState.PLAYED.value, AckState.DISPLAYED.value))


@on(Dispatch.AcksRecorded, Dispatch.RetriesSent, Dispatch.Closed)
def _dispatch(f: Fact, docs: Docs) -> None:
    # Updated in place: a dispatch document (its acks) is large and nothing else holds on to the previous version.
    doc = docs.get("dispatch", f.oid)
    if doc is None:
        return
    if f.name == "Dispatch.AcksRecorded":
        acks, published, rank = doc["acks"], dict[str, str](), ACK_RANK
        for ack in f.data["acks"]:
            code, state, when = ack["endpoint"], ack["state"], ack["at"]
            cur = acks.get(code)
            # (furthest state, its time, first ack time): a tuple of strings, which the garbage collector stops
            # tracking, unlike a list (a rebuild holds millions of them); stored as the same JSON array.
            if cur is None:
                acks[code] = (state, when, when)
            else:
                first = first_ack_at(cur[2], when)
                if rank[state] > rank[cur[0]]:  # `ack_advances`, inlined: this runs for every ack of a rebuild
                    acks[code] = (state, when, first)
                elif first != cur[2]:
                    acks[code] = (cur[0], cur[1], first)  # an earlier ack that arrived late
            if state in _PUBLISHED and when > published.get(code, ""):
                published[code] = when
        kpi.portals_published(published, docs)  # only the latest time of each endpoint can count
    elif f.name == "Dispatch.RetriesSent":
        doc["retries"] += 1
    else:
        doc["closed_at"] = f.at
    docs.put("dispatch", f.oid, doc)
