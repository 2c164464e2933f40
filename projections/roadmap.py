"""The FM -> IP conversion roadmap (plan 1.1: 25-30% of FM stations a year) and progress against it, per year, as
conversions are recorded (`keng endpoint convert`, `POST /api/v1/endpoints/{code}/convert`, a district file's
`convert` rows).

Which stations come first: broken ones, then degraded (xuống cấp) ones, then those past 5 years of depreciation at the
start of the plan (installed on or before 1 January of its first year less 5; an unknown installation date counts as
past), then the oldest. A station's condition is its condition while it was FM: a repair moves a pending station back,
a conversion keeps the condition it had. The stations are the FM stations ever registered, less those decommissioned
before they were converted (they leave the plan, as they leave the `fm_converted` target).

Each year's row: the stations planned for it (`planned`, `stations`, `pending`), how many of those are converted
(`planned_converted`), what was done that year whichever station it was (`converted_in_year`, by the day each
conversion names, and its cost `conversion_cost_vnd`), and the running totals (`cumulative_planned`,
`cumulative_converted`; `behind` is how many conversions the plan is short by the end of the year).

`per_ward` shows the same plan per ward on the structure in force on a chosen day (areas are dated facts, see
projections/units.py): a station belongs to the ward that contained its residential group on that day (a group keeps
its stations when a reorganisation moves it), or, without a group, to the ward it was assigned to that day.
"""

from __future__ import annotations

import math
from typing import Any

from keng.projections.fold import Doc
from keng.projections.units import Tree, Unit, assigned_on

DEPRECIATION_YEARS = 5
_CONDITION_ORDER = {"broken": 0, "degraded": 1}


def converted_on(e: Doc) -> str | None:
    """The day a station was converted (read models folded before days were recorded: the day it was recorded)."""
    if not e["converted_at"]:
        return None
    return str(e.get("converted_on") or e["converted_at"][:10])


def _key(e: Doc, first_year: int) -> tuple[int, int, str, str]:
    installed = e["installed_on"] or "0000-01-01"
    depreciated = installed <= f"{first_year - DEPRECIATION_YEARS:04d}-01-01"
    return (_CONDITION_ORDER.get(e["fm_condition"] or "good", 2), 0 if depreciated else 1, installed, e["code"])


def in_plan(e: Doc) -> bool:
    """Ever FM, and not taken out of service before its conversion."""
    return bool(e["was_fm"]) and not (e["decommissioned"] and not e["converted_at"])


def plan(endpoints: list[Doc], first: int = 2022, last: int = 2025) -> dict[str, Any]:
    """Year-by-year plan over the stations (see the module docstring), with what was converted in each year."""
    stations = sorted((e for e in endpoints if in_plan(e)), key=lambda e: _key(e, first))
    total, years = len(stations), list(range(first, last + 1))
    low, high = math.ceil(0.25 * total), math.ceil(0.30 * total)
    per_year = min(max(math.ceil(total / max(len(years), 1)), low), high) if total else 0
    done_in: dict[str, list[Doc]] = {}
    for e in stations:
        day = converted_on(e)
        if day:
            done_in.setdefault(day[:4], []).append(e)
    rows, cursor, cumulative_done = [], 0, sum(len(v) for k, v in done_in.items() if k < f"{first:04d}")
    for i, year in enumerate(years):
        take = total - cursor if i == len(years) - 1 else min(per_year, total - cursor)
        chosen = stations[cursor : cursor + take]
        cursor += take
        converted = [e for e in chosen if e["converted_at"]]
        in_year = done_in.get(f"{year:04d}", [])
        cumulative_done += len(in_year)
        rows.append({
            "year": year, "planned": len(chosen), "planned_share_pct": round(100.0 * len(chosen) / total, 1) if total
            else 0.0, "planned_converted": len(converted), "converted_in_year": len(in_year),
            "conversion_cost_vnd": sum((e.get("costs_vnd") or {}).get("convert", 0) for e in in_year),
            "cumulative_planned": cursor, "cumulative_converted": cumulative_done,
            "behind": max(0, cursor - cumulative_done),
            "stations": [e["code"] for e in chosen], "pending": [e["code"] for e in chosen if not e["converted_at"]],
        })  # fmt: skip
    done = sum(1 for e in stations if e["converted_at"])
    return {"total_fm": total, "converted": done, "from": first, "to": last, "years": rows}


def ward_on(e: Doc, tree: Tree) -> Unit | None:
    """The ward an endpoint belonged to on the tree's day: its group's ward then, else the ward it was assigned to."""
    group = tree.by_id.get(e.get("group_id") or "")
    if group is not None:
        return tree.ward_of(group)
    place = assigned_on(e.get("assignments") or [], tree.day)
    return tree.ward_of(tree.by_id.get((place or {}).get("ward_id") or ""))


def per_ward(endpoints: list[Doc], tree: Tree, first: int = 2022, last: int = 2025) -> list[dict[str, Any]]:
    """One row per ward in force on the tree's day (and one, `ward` None, for stations in no ward that day): its FM
    stations in the plan, how many are converted, which are pending, and per year how many the plan takes
    (`planned_YYYY`) and how many were converted that year (`converted_YYYY`)."""
    whole = plan(endpoints, first, last)
    year_of = {code: row["year"] for row in whole["years"] for code in row["stations"]}
    years = [row["year"] for row in whole["years"]]
    rows: dict[str | None, dict[str, Any]] = {}

    def row_of(ward: Unit | None) -> dict[str, Any]:
        key = ward.code if ward else None
        if key not in rows:
            rows[key] = {"ward": key, "name": ward.name if ward else None, "structure": tree.day, "total_fm": 0,
                         "converted": 0, "pending": [], **{f"planned_{y}": 0 for y in years},
                         **{f"converted_{y}": 0 for y in years}}  # fmt: skip
        return rows[key]

    for w in tree.of_level("ward"):
        row_of(w)
    for e in sorted((e for e in endpoints if in_plan(e)), key=lambda e: e["code"]):
        row = row_of(ward_on(e, tree))
        row["total_fm"] += 1
        if e["converted_at"]:
            row["converted"] += 1
            day = converted_on(e)
            if day and f"converted_{day[:4]}" in row:
                row[f"converted_{day[:4]}"] += 1
        else:
            row["pending"].append(e["code"])
        if e["code"] in year_of:
            row[f"planned_{year_of[e['code']]}"] += 1
    return sorted(rows.values(), key=lambda r: (r["ward"] is None, r["ward"] or ""))
