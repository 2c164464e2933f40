"""The district plan's targets (Kế hoạch 310/KH-UBND, 2022-2025), computed from events into one `kpi` document.

Counters are kept incrementally (one small update per event); the values are derived from them, and at every
change of quarter (in event time, UTC) the values as they stood at the end of the quarter are kept as its trend point.
Every target is 100% by 2025. Definitions (see docs/audit.md):
- ip_radio_wards: wards whose every residential group has at least one in-service IP speaker (not broken, not
  decommissioned) / all wards (plan 2.1: 100% phường có hệ thống truyền thanh ứng dụng CNTT-VT đến các TDP);
- eboard_groups: residential groups with an in-service e-board / all groups (plan 2.1, 1.3);
- large_boards_connected: district-level e-boards (no group) online and in service / all of them (plan 1.4);
- ward_portals_active: wards with a portal that went live (`Endpoint.PortalWentLive`) and is in service (not broken,
  not decommissioned), or whose portal received or played a bulletin in the last 30 days / all wards (plan 1.2);
- fm_converted: FM stations converted to IP / FM stations ever registered, less those decommissioned before they
  were converted (they leave the plan, as they leave the roadmap) (plan 2.2, 1.1);
- staff_trained: staff with at least one completed training / all staff (plan 2.3);
- feedback_response_rate: citizen feedback answered by its due date / feedback due by then or answered (the app's
  phản ánh, kiến nghị; domain/feedback.py).

Areas are dated facts (domain/area.py): wards and groups are counted on a *structure*, the units in force on one
Vietnam-time day (default: the day of the instant asked about). Since 1 July 2025 Bắc Từ Liêm's 13 wards are 8 new
ones, so the same endpoints give one value on the structure of 2025-06-30 and another on that of 2025-07-01. Counters
belong to a residential group's identity (its aggregate id), not to the code it has at a time, so a group keeps its
loudspeakers when a reorganisation moves it into another ward; a ward-level portal counts for the ward it was assigned
to on the structure's day (`Endpoint.Reassigned` dates the change). Trend points use the structure in force on their
quarter's last day. The counters at the end of the target year (its last quarter, UTC, as the trend points) are kept
aside (`kpi/target-year`), so that the target can be judged on the units of either side after the year has ended.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from keng.domain.ids import endpoint_id
from keng.projections.units import Periods, Tree, assigned_on, day_of, tree_on

if TYPE_CHECKING:
    from keng.projections.fold import Doc, Docs

KEY = "district"
TARGET_KEY = "target-year"  # the counters as they stood at the end of the target year
TARGET_YEAR = 2025
TARGET_QUARTER = f"{TARGET_YEAR}Q4"
PLAN_END_DAY = f"{TARGET_YEAR}-12-31"  # the last day of the plan period: the structure its targets are judged on
PORTAL_DAYS = 30
NAMES = ("ip_radio_wards", "eboard_groups", "large_boards_connected", "ward_portals_active", "fm_converted",
         "staff_trained", "feedback_response_rate")  # fmt: skip
# The level each KPI counts on a structure (the others do not depend on it).
UNIT_LEVELS = {"ip_radio_wards": "ward", "eboard_groups": "group", "ward_portals_active": "ward"}


def _kpi(docs: Docs) -> Doc:
    doc = docs.get("kpi", KEY)
    if doc is None:
        doc = {"units": {}, "groups": {}, "large": {}, "portals": {}, "fm_total": 0, "fm_converted": 0,
               "staff_total": 0, "staff_trained": 0, "quarter": None, "trend": {}}  # fmt: skip
    return doc


def quarter_of(at: str) -> str:
    month = at[:7]
    quarter = _QUARTERS.get(month)
    if quarter is None:
        quarter = _QUARTERS[month] = f"{at[:4]}Q{(int(at[5:7]) - 1) // 3 + 1}"
    return quarter


_QUARTERS: dict[str, str] = {}  # "2024-05" -> "2024Q2": one entry per month ever seen


def quarter_end(quarter: str) -> str:
    year, q = int(quarter[:4]), int(quarter[5])
    start = datetime.fromisoformat(f"{year + (q == 4)}-{(q * 3) % 12 + 1:02d}-01T00:00:00+00:00")
    return (start - timedelta(microseconds=1)).isoformat()


def before_event(at: str, docs: Docs) -> None:
    """Close the previous quarter's trend point when event time enters a new quarter; when it leaves the target year,
    keep the counters as they stood at its end (the state its last trend point was computed from)."""
    doc = docs.get("kpi", KEY)
    if doc is None:
        return
    quarter = quarter_of(at)
    if doc["quarter"] != quarter:
        if doc["quarter"] is not None:
            end = quarter_end(doc["quarter"])
            doc["trend"][doc["quarter"]] = values(doc, end, on=end[:10])  # on the units of the quarter's last day
            if doc["quarter"] <= TARGET_QUARTER < quarter:
                kept = {k: v for k, v in doc.items() if k not in ("trend", "quarter")}
                docs.put("kpi", TARGET_KEY, orjson.loads(orjson.dumps(kept)))  # a copy: `doc` goes on changing
        doc["quarter"] = quarter
        docs.put("kpi", KEY, doc)


def _touch(doc: Doc, at: str | None) -> None:
    if at is not None and doc["quarter"] is None:
        doc["quarter"] = quarter_of(at)


def area_changed(oid: str, periods: Periods, docs: Docs) -> None:
    """A unit was established, registered or changed: keep its periods (wards and groups are counted by day)."""
    doc = _kpi(docs)
    doc["units"][oid] = [dict(p) for p in periods]
    docs.put("kpi", KEY, doc)


def _contrib(e: Doc | None) -> list[tuple[str, str]]:
    if e is None or e["decommissioned"]:
        return []
    out = []
    working = e["condition"] != "broken"
    if working and e["group_id"] and e["kind"] in ("ip-speaker", "eboard"):
        out.append(("ip" if e["kind"] == "ip-speaker" else "eb", e["group_id"]))
    return out


def _counted_alike(old: Doc, new: Doc) -> bool:
    """True when nothing a target counts differs (most events: an endpoint going on- or offline)."""
    return (
        old["condition"] == new["condition"] and old["kind"] == new["kind"] and old["group_id"] == new["group_id"]
        and old["decommissioned"] == new["decommissioned"] and old["converted_at"] == new["converted_at"]
        and old["assignments"] == new["assignments"] and (new["kind"] != "eboard" or bool(new["group"]))
        and old.get("live_since") == new.get("live_since")
    )  # fmt: skip


def _live_portal(e: Doc) -> bool:
    return bool(e.get("live_since")) and not e["decommissioned"] and e["condition"] != "broken"


def _portal_changed(doc: Doc, new: Doc) -> None:
    """Keep each portal's dated ward assignments and whether it is live and in service (`portals`, by code)."""
    portal = doc["portals"].get(new["code"]) or {"published": None}
    wards = [[a["from"], a["ward_id"]] for a in new["assignments"]]
    doc["portals"][new["code"]] = {**portal, "wards": wards, "live": _live_portal(new)}


def endpoint_changed(old: Doc | None, new: Doc, docs: Docs) -> None:
    if old is not None and _counted_alike(old, new):
        return
    doc = _kpi(docs)
    for sign, e in ((-1, old), (1, new)):
        for counter, group in _contrib(e):
            entry = doc["groups"].setdefault(group, {"ip": 0, "eb": 0})
            entry[counter] += sign
    if new["kind"] == "eboard" and not new["group"]:
        connected = new["online"] is True and new["condition"] != "broken" and not new["decommissioned"]
        doc["large"][new["code"]] = connected
    if old is None and new["was_fm"]:
        doc["fm_total"] += 1
    if new["was_fm"] and new["decommissioned"] and not new["converted_at"] and not (old and old["decommissioned"]):
        doc["fm_total"] -= 1  # an FM station taken out of service before conversion leaves the plan
    if new["kind"] == "portal":
        _portal_changed(doc, new)
    if new["converted_at"] and not (old and old["converted_at"]):
        doc["fm_converted"] += 1
    _touch(doc, new["since"])
    docs.put("kpi", KEY, doc)


def staff_changed(old: Doc | None, new: Doc, docs: Docs) -> None:
    doc = _kpi(docs)
    doc["staff_total"] += old is None
    doc["staff_trained"] += (new["trainings"] > 0) - (old is not None and old["trainings"] > 0)
    docs.put("kpi", KEY, doc)


@lru_cache(maxsize=65536)
def _endpoint_key(code: str) -> str:
    return str(endpoint_id(code))


def portals_published(latest: dict[str, str], docs: Docs) -> None:
    """Endpoints (by code) that received or played a bulletin, with the latest time: portals count for their ward."""
    for code, when in latest.items():
        key = _endpoint_key(code)
        e = docs.get("endpoint", key)
        if e is None or e["kind"] != "portal" or (e["last_published"] or "") >= when:
            continue
        docs.put("endpoint", key, dict(e, last_published=when))
        doc = _kpi(docs)
        portal = doc["portals"].get(code)
        if portal is not None and (portal["published"] or "") < when:
            portal["published"] = when
            docs.put("kpi", KEY, doc)


def feedback_received(fid: str, due_at: str, docs: Docs) -> None:
    doc = _kpi(docs)
    doc.setdefault("feedback", {})[fid] = [due_at, None]
    docs.put("kpi", KEY, doc)


def feedback_replied(fid: str, at: str, docs: Docs) -> None:
    doc = _kpi(docs)
    entry = doc.setdefault("feedback", {}).get(fid)
    if entry is not None and entry[1] is None:
        entry[1] = at
        docs.put("kpi", KEY, doc)


def _response_rate(doc: Doc, at: str) -> dict[str, Any]:
    due = [(d, r) for d, r in doc.get("feedback", {}).values() if d <= at or (r is not None and r <= at)]
    return _share(sum(1 for d, r in due if r is not None and r <= d and r <= at), len(due))


def _share(num: int, den: int) -> dict[str, Any]:
    return {"value": round(100.0 * num / den, 1) if den else 0.0, "numerator": num, "denominator": den}


def structure(doc: Doc, day: str) -> Tree:
    """The wards and groups (and every other unit) in force on `day` (Vietnam time)."""
    return tree_on(doc["units"], day)


def values(doc: Doc, at: str, portal_days: int = PORTAL_DAYS, on: str | None = None) -> dict[str, dict[str, Any]]:
    """Each KPI as a percentage with its numerator and denominator, as of time `at` (ISO), with wards and groups
    counted on the structure in force on the day `on` (default: the day of `at`)."""
    now = datetime.fromisoformat(at).astimezone(UTC)
    at = now.isoformat()
    tree = structure(doc, on or day_of(at))
    counts, none = doc["groups"], {"ip": 0, "eb": 0}
    groups_by_ward: dict[str, list[str]] = {}
    groups = tree.of_level("group")
    for g in groups:
        if g.parent is not None:
            groups_by_ward.setdefault(g.parent, []).append(g.id)
    wards = tree.of_level("ward")
    covered = sum(
        1 for w in wards if (mine := groups_by_ward.get(w.code)) and all(counts.get(g, none)["ip"] > 0 for g in mine)
    )
    cutoff = (now - timedelta(days=portal_days)).isoformat()
    active: set[str] = set()
    for portal in doc["portals"].values():
        if portal["live"] or (portal["published"] or "") >= cutoff:
            place = assigned_on([{"from": f, "ward_id": w} for f, w in portal["wards"]], tree.day)
            unit = tree.by_id.get(place["ward_id"]) if place and place["ward_id"] else None
            if unit is not None and unit.level == "ward":
                active.add(unit.id)
    return {
        "ip_radio_wards": _share(covered, len(wards)),
        "eboard_groups": _share(sum(1 for g in groups if counts.get(g.id, none)["eb"] > 0), len(groups)),
        "large_boards_connected": _share(sum(doc["large"].values()), len(doc["large"])),
        "ward_portals_active": _share(len(active), len(wards)),
        "fm_converted": _share(doc["fm_converted"], doc["fm_total"]),
        "staff_trained": _share(doc["staff_trained"], doc["staff_total"]),
        "feedback_response_rate": _response_rate(doc, at),
    }
