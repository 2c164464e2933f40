"""Queries over the read models: the same functions answer for the live store and for an as-of replay."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Protocol

from keng.domain.values import PLAYED_ACK_STATES, AckState
from keng.projections import kpi
from keng.projections.fold import Doc, Row
from keng.projections.units import Tree, assigned_on, day_of, tree_on


class Reader(Protocol):
    def load_kind(self, kind: str) -> dict[str, Doc]: ...

    def load(self, kind: str, key: str) -> Doc | None: ...

    def timeline(self, subject_kind: str, subject: str | None = None, until: str | None = None) -> list[Row]: ...


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def board(r: Reader, state: str | None = None) -> list[Doc]:
    """Every broadcast with state, approvals, source and renders, newest first."""
    items = [b for b in r.load_kind("broadcast").values() if state is None or b["state"] == state]
    return sorted(items, key=lambda b: b["drafted_at"], reverse=True)


def _ms(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() * 1000


def _tally() -> dict[str, Any]:
    return {"targeted": 0, "received": 0, "playing": 0, "played": 0, "failed": 0, "unreachable": 0, "pending": 0,
            "latency_ms": []}  # fmt: skip


def _with_percentiles(row: dict[str, Any]) -> dict[str, Any]:
    lat = row.pop("latency_ms")
    return {**row, **{f"p{p}_ms": percentile(lat, p) for p in (50, 90, 99)}}


def delivery(r: Reader, broadcast_id: str) -> dict[str, Any]:
    """Per ward and residential group: targeted, received (any ack), playing (the furthest ack is `playing`), played,
    failed, unreachable, pending, latency (ms, dispatch opening to the first ack); `overall`: the same over every
    target; `heard`: the app's "I heard it" confirmations, in total and per ward."""
    b = r.load("broadcast", broadcast_id)
    if b is None:
        raise KeyError(broadcast_id)
    by_code = {e["code"]: e for e in r.load_kind("endpoint").values()}
    areas: dict[tuple[str, str], dict[str, Any]] = {}
    overall = _tally()
    failed: list[str] = []
    failed_state, playing = AckState.FAILED, AckState.PLAYING  # read once, not per target
    for dispatch_id in b["dispatches"]:
        d = r.load("dispatch", dispatch_id) or {"targets": [], "acks": {}, "closed_at": None, "opened_at": ""}
        day = day_of(d["opened_at"]) if d["opened_at"] else None
        for code in d["targets"]:
            e = _placed(by_code.get(code, {}), day)  # its ward and group on the day the dispatch opened
            ack = d["acks"].get(code)
            latency = None if ack is None else _ms(d["opened_at"], ack[2])
            ward = areas.setdefault(("ward", e.get("ward") or "?"), _tally())
            group = areas.setdefault(("group", e.get("group") or "-"), _tally())
            for row in (ward, group, overall):
                row["targeted"] += 1
                if ack is None:
                    row["unreachable" if d["closed_at"] else "pending"] += 1
                    continue
                row["received"] += 1
                row["playing"] += ack[0] == playing
                row["played"] += ack[0] in PLAYED_ACK_STATES  # a board's `displayed` is its `played`
                row["failed"] += ack[0] == failed_state
                row["latency_ms"].append(latency)
            if ack is not None and ack[0] == failed_state:
                failed.append(code)
    out = [{"level": level, "code": code, **_with_percentiles(row)} for (level, code), row in sorted(areas.items())]
    heard = r.load("heard", broadcast_id) or {"total": 0, "wards": {}}  # "I heard it" from the app
    return {"broadcast": b, "areas": out, "overall": _with_percentiles(overall),
            "failed_endpoints": sorted(set(failed)), "heard": heard}  # fmt: skip


def _placed(e: Doc, day: str | None) -> Doc:
    """The endpoint's ward and group codes as assigned on `day` (a reorganisation may have moved it since)."""
    if day is None or len(e.get("assignments") or ()) < 2:
        return e
    return assigned_on(e["assignments"], day) or e


def working(e: Doc, kind: str) -> bool:
    """In service and not known to be offline."""
    return e["kind"] == kind and not e["decommissioned"] and e["condition"] != "broken" and e["online"] is not False


def health(r: Reader) -> list[Doc]:
    """Per endpoint: last known state and since when."""
    keys = ("code", "kind", "ward", "group", "online", "since", "condition", "fault", "decommissioned")
    return sorted(({k: e[k] for k in keys} for e in r.load_kind("endpoint").values()), key=lambda e: e["code"])


def structure(r: Reader, at: str | None = None, on: str | None = None) -> Tree:
    """The units in force on the day `on` (default: the Vietnam day of `at`, default now), from the area documents."""
    day = on or day_of(at or datetime.now(UTC).isoformat())
    return tree_on({key: a["periods"] for key, a in r.load_kind("area").items()}, day)


def coverage(r: Reader, at: str | None = None, on: str | None = None) -> list[dict[str, Any]]:
    """Per residential group and ward in force on the day `on` (default: the day of `at`, default now): has a working
    IP speaker? an e-board? And per ward, what residents confirmed through the app ("I heard it"): confirmations, for
    how many broadcasts, the newest when. A group's endpoints are those assigned to it (a group keeps its own when it
    moves), so the same endpoints can be shown on the structure before or after a reorganisation."""
    tree = structure(r, at, on)
    by_group: dict[str, list[Doc]] = {}
    for e in r.load_kind("endpoint").values():
        if e.get("group_id"):
            by_group.setdefault(e["group_id"], []).append(e)
    rows = []
    for g in tree.of_level("group"):
        mine = by_group.get(g.id, [])
        rows.append({"level": "group", "code": g.code, "name": g.name, "ward": g.parent, "structure": tree.day,
                     "ip_speaker": any(working(e, "ip-speaker") for e in mine),
                     "eboard": any(working(e, "eboard") for e in mine)})  # fmt: skip
    for w in tree.of_level("ward"):
        mine = [g for g in rows if g["ward"] == w.code]
        heard = r.load("heard-ward", w.id) or {"confirmations": 0, "broadcasts": 0, "last_at": None}
        rows.append({"level": "ward", "code": w.code, "name": w.name, "ward": w.code, "structure": tree.day,
                     "ip_speaker": bool(mine) and all(g["ip_speaker"] for g in mine),
                     "eboard": bool(mine) and all(g["eboard"] for g in mine),
                     "heard_confirmations": heard["confirmations"], "heard_broadcasts": heard["broadcasts"],
                     "heard_last_at": heard["last_at"]})  # fmt: skip
    return rows


def offline_during(r: Reader, start: str, end: str) -> list[dict[str, Any]]:
    """Endpoints offline at any time in [start, end), with how long (seconds) within the window."""
    spans: dict[str, list[list[str | None]]] = {}
    for _, at, _, code, event, _, _ in r.timeline("endpoint", until=end):
        intervals = spans.setdefault(code, [])
        if event in ("Endpoint.WentOffline", "Endpoint.Decommissioned"):
            if not intervals or intervals[-1][1] is not None:
                intervals.append([at, None])
        elif event == "Endpoint.CameOnline" and intervals and intervals[-1][1] is None:
            intervals[-1][1] = at
    t0, t1, out = datetime.fromisoformat(start), datetime.fromisoformat(end), []
    for code, intervals in sorted(spans.items()):
        seconds = 0.0
        for a, b in intervals:
            lo, hi = max(t0, datetime.fromisoformat(str(a))), min(t1, datetime.fromisoformat(b) if b else t1)
            seconds += max(0.0, (hi - lo).total_seconds())
        if seconds > 0:
            out.append({"code": code, "offline_s": round(seconds, 1)})
    return out


def kpis(r: Reader, at: str, portal_days: int = kpi.PORTAL_DAYS, on: str | None = None) -> list[dict[str, Any]]:
    """Each plan target as of the instant `at`, with wards and groups counted on the structure in force on the day
    `on` (default: the day of `at`): value, target (100% by 2025), the trend per quarter (each point on the structure
    at its quarter's end), and the judgement of the target (`met`, `judged_value`): its value at the end of the target
    year (`judged_at`; None: its value at `at`, before the year has ended or when nothing was recorded by its end) on
    the structure `judged_on`: `on` if given, else that of the plan period's last day once the year has ended."""
    doc = r.load("kpi", kpi.KEY)
    if doc is None:
        return []
    at = datetime.fromisoformat(at).astimezone(UTC).isoformat()
    today = day_of(at)
    day = on or today
    now = kpi.values(doc, at, portal_days, day)
    trend = dict(doc["trend"])
    trend[kpi.quarter_of(at)] = now if day == today else kpi.values(doc, at, portal_days)
    final = kpi.quarter_of(at) > kpi.TARGET_QUARTER
    kept = r.load("kpi", kpi.TARGET_KEY) if final else None  # None: nothing was recorded before the year ended
    judged_at = kpi.quarter_end(kpi.TARGET_QUARTER) if kept else None
    judged_on = on or (kpi.PLAN_END_DAY if final else today)
    judged = kpi.values(kept or doc, judged_at or at, portal_days, judged_on)
    shown, judged_tree = kpi.structure(doc, day), kpi.structure(kept or doc, judged_on)
    rows = []
    for name in kpi.NAMES:
        level = kpi.UNIT_LEVELS.get(name)
        rows.append({
            "kpi": name, **now[name], "target": 100.0, "target_year": kpi.TARGET_YEAR, "structure": day,
            "units": shown.label(level) if level else None,
            "met": judged[name]["value"] >= 100.0, "judged_value": judged[name]["value"], "judged_at": judged_at,
            "judged_on": judged_on, "judged_units": judged_tree.label(level) if level else None,
            "trend": {q: v[name]["value"] for q, v in sorted(trend.items())},
        })  # fmt: skip
    return rows


_TIMELINE_KEYS = ("position", "at", "subject_kind", "subject", "event", "actor", "detail")


def timeline(r: Reader, subject_kind: str, subject: str) -> list[dict[str, Any]]:
    """The audit timeline of one broadcast or one staff member."""
    return [dict(zip(_TIMELINE_KEYS, row, strict=True)) for row in r.timeline(subject_kind, subject)]


def area_timeline(r: Reader, code: str) -> list[dict[str, Any]]:
    """The audit timeline of every unit that ever held `code` (a code may have named several, one after another),
    in log order, each row naming the unit's code and name as they are now."""
    index = r.load("area-code", code)
    rows: list[Row] = []
    names: dict[str, str] = {}
    for unit in sorted({str(e[2]) for e in (index["units"] if index else [])}):
        area = r.load("area", unit)
        names[unit] = f"{area['code']} {area['name']}" if area else unit
        rows.extend(r.timeline("area", unit))
    return [{**dict(zip(_TIMELINE_KEYS, row, strict=True)), "unit": names[row[3]]} for row in sorted(rows)]


def drills(r: Reader) -> list[dict[str, Any]]:
    """For each drill broadcast: coverage and latency per ward, and which endpoints failed."""
    out = []
    for b in board(r):
        if b["drill"] and b["dispatches"]:
            report = delivery(r, b["id"])
            wards = [a for a in report["areas"] if a["level"] == "ward"]
            for w in wards:
                w["coverage_pct"] = round(100.0 * w["received"] / w["targeted"], 1) if w["targeted"] else 0.0
            out.append({"broadcast": b["id"], "title": b["title"], "at": b["drafted_at"], "wards": wards,
                        "failed_endpoints": report["failed_endpoints"]})  # fmt: skip
    return out
