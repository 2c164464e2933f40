"""The FM -> IP conversion roadmap (plan 1.1: 25-30% of FM stations a year; broken first, then those past 5 years of
depreciation, then oldest first) and progress against it as conversions are recorded."""

from __future__ import annotations

import math
from typing import Any

from keng.projections.fold import Doc

DEPRECIATION_YEARS = 5
_CONDITION_ORDER = {"broken": 0}


def _key(e: Doc, first_year: int) -> tuple[int, int, str, str]:
    installed = e["installed_on"] or "0000-01-01"
    depreciated = int(installed[:4]) <= first_year - DEPRECIATION_YEARS
    return (_CONDITION_ORDER.get(e["fm_condition"] or "good", 1), 0 if depreciated else 1, installed, e["code"])


def plan(endpoints: list[Doc], first: int = 2022, last: int = 2025) -> dict[str, Any]:
    """Year-by-year plan over every station that was ever FM, with what was converted in each year."""
    stations = sorted((e for e in endpoints if e["was_fm"] and not e["decommissioned"]),
                      key=lambda e: _key(e, first))  # fmt: skip
    total, years = len(stations), list(range(first, last + 1))
    low, high = math.ceil(0.25 * total), math.ceil(0.30 * total)
    per_year = min(max(math.ceil(total / max(len(years), 1)), low), high) if total else 0
    rows, cursor = [], 0
    for i, year in enumerate(years):
        take = total - cursor if i == len(years) - 1 else min(per_year, total - cursor)
        chosen = stations[cursor : cursor + take]
        cursor += take
        converted = [e for e in chosen if e["converted_at"]]
        in_year = sum(1 for e in stations if (e["converted_at"] or "")[:4] == str(year))
        rows.append({
            "year": year, "planned": len(chosen), "planned_share_pct": round(100.0 * len(chosen) / total, 1) if total
            else 0.0, "planned_converted": len(converted), "converted_in_year": in_year,
            "stations": [e["code"] for e in chosen], "pending": [e["code"] for e in chosen if not e["converted_at"]],
        })  # fmt: skip
    done = sum(1 for e in stations if e["converted_at"])
    return {"total_fm": total, "converted": done, "from": first, "to": last, "years": rows}
