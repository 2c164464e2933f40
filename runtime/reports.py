"""The reports over the read models (auditor role and up), shared by `keng report`, `keng audit replay` and
`GET /api/v1/reports/{name}`: the same options and the same rows, whichever way they are asked for.

Areas are dated facts: `kpi`, `coverage` and `roadmap --per ward` count wards and groups on a structure, the units
in force on one day (`structure`, default: the day of the report's instant), so the same endpoints can be shown on
the units before a reorganisation or after it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from keng.adapters.readstore.store import ReadStore
from keng.projections import queries, roadmap
from keng.projections.units import check_day

REPORTS = ("kpi", "coverage", "roadmap", "drills", "board", "offline", "timeline")
YEARS = (1900, 2200)  # the roadmap's years, from either door
PER = ("year", "ward")  # the roadmap's rows: per year (the district's plan) or per ward on a structure
STRUCTURE_HELP = "kpi, coverage, roadmap --per ward: count wards and groups in force on this day (YYYY-MM-DD)"


@dataclass(frozen=True)
class ReportOptions:
    """What one report is asked for (the CLI options, or the API's query parameters)."""

    name: str
    actor: str
    first: int = 2022  # roadmap: first year
    last: int = 2025  # roadmap: last year
    start: str | None = None  # offline: window start (ISO time)
    end: str | None = None  # offline: window end (ISO time)
    broadcast: str | None = None  # timeline: broadcast id
    staff: str | None = None  # timeline: staff handle (default: the caller)
    state: str | None = None  # board: only broadcasts in this state
    structure: str | None = None  # kpi, coverage, roadmap per ward: the day whose units are counted (default: `at`'s)
    per: str = "year"  # roadmap: rows per year or per ward
    area: str | None = None  # timeline: every unit that ever held this area code

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ReportOptions:
        return cls(args.name, args.actor, args.first, args.last, args.start, args.end, args.broadcast, args.staff,
                   args.state, getattr(args, "structure", None), getattr(args, "per", "year"),
                   getattr(args, "area", None))  # fmt: skip


def structure_day(text: str) -> str:
    """A `structure` option's value: a calendar day (YYYY-MM-DD), or InvalidValue."""
    return check_day(text, "structure")


def build(store: ReadStore, options: ReportOptions, at: str) -> list[dict[str, Any]]:
    """Rows of one report, as of time `at` (ISO)."""
    name = options.name
    if name == "kpi":
        return queries.kpis(store, at, on=options.structure)
    if name == "coverage":
        return queries.coverage(store, at, options.structure)
    if name == "roadmap":
        endpoints = list(store.load_kind("endpoint").values())
        if options.per == "ward":
            tree = queries.structure(store, at, options.structure)
            return roadmap.per_ward(endpoints, tree, options.first, options.last)
        plan = roadmap.plan(endpoints, options.first, options.last)
        return [{k: v for k, v in y.items() if k != "stations"} for y in plan["years"]]
    if name == "drills":
        return [{**w, "broadcast": d["broadcast"], "title": d["title"], "failed_endpoints": d["failed_endpoints"]}
                for d in queries.drills(store) for w in d["wards"]]  # fmt: skip
    if name == "board":
        keys = ("id", "state", "priority", "title", "drafted_by", "drafted_at", "source", "approvals", "renders")
        return [{k: b[k] for k in keys} for b in queries.board(store, options.state)]
    if name == "offline":
        return queries.offline_during(store, options.start or "0001-01-01T00:00:00+00:00", options.end or at)
    if name == "timeline":
        if options.area:
            return queries.area_timeline(store, options.area)
        if options.broadcast:
            return queries.timeline(store, "broadcast", options.broadcast)
        return queries.timeline(store, "staff", options.staff or options.actor)
    raise ValueError(f"unknown report {name!r}: one of {', '.join(REPORTS)}")
