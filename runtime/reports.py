"""The reports over the read models (auditor role and up), shared by `keng report`, `keng audit replay` and
`GET /api/v1/reports/{name}`: the same options and the same rows, whichever way they are asked for."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from keng.adapters.readstore.store import ReadStore
from keng.projections import queries, roadmap

REPORTS = ("kpi", "coverage", "roadmap", "drills", "board", "offline", "timeline")
YEARS = (1900, 2200)  # the roadmap's years, from either door


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

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ReportOptions:
        return cls(args.name, args.actor, args.first, args.last, args.start, args.end, args.broadcast, args.staff,
                   args.state)  # fmt: skip


def build(store: ReadStore, options: ReportOptions, at: str) -> list[dict[str, Any]]:
    """Rows of one report, as of time `at` (ISO)."""
    name = options.name
    if name == "kpi":
        return queries.kpis(store, at)
    if name == "coverage":
        return queries.coverage(store)
    if name == "roadmap":
        plan = roadmap.plan(list(store.load_kind("endpoint").values()), options.first, options.last)
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
        if options.broadcast:
            return queries.timeline(store, "broadcast", options.broadcast)
        return queries.timeline(store, "staff", options.staff or options.actor)
    raise ValueError(f"unknown report {name!r}: one of {', '.join(REPORTS)}")
