"""`keng report ...`: the district's read models (auditor role and up): kpi, coverage, roadmap, drills, board,
offline, timeline. Each prints a table, or `--json` / `--csv`. `--structure DAY` counts the wards and groups in force
on that day (e.g. 2025-06-30: the 13 wards of Bắc Từ Liêm; 2025-07-01: the wards that replaced them)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from keng.runtime.bootstrap import open_app
from keng.runtime.cli.args import add_structure_options, digits
from keng.runtime.cli.output import show
from keng.runtime.config import Settings
from keng.runtime.reports import REPORTS, YEARS, ReportOptions, build
from keng.runtime.workers.readmodels import caught_up, require_auditor


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keng report`."""
    p = sub.add_parser("report", help="read models: plan targets, coverage, FM->IP roadmap, drills (auditor)")
    p.add_argument("name", choices=REPORTS)
    p.add_argument("--as", dest="actor", required=True, help="handle of an auditor (or admin)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    year = digits("year", lo=YEARS[0], hi=YEARS[1])
    p.add_argument("--from", dest="first", type=year, default=2022, help="roadmap: first year")
    p.add_argument("--to", dest="last", type=year, default=2025, help="roadmap: last year")
    p.add_argument("--start", help="offline: window start (ISO time)")
    p.add_argument("--end", help="offline: window end (ISO time)")
    p.add_argument("--broadcast", help="timeline: broadcast id")
    p.add_argument("--staff", help="timeline: staff handle")
    p.add_argument("--state", help="board: only broadcasts in this state")
    add_structure_options(p)
    p.add_argument("--area", help="timeline: every unit that ever held this area code")
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    require_auditor(app, args.actor)
    store = caught_up(app)
    try:
        show(build(store, ReportOptions.from_args(args), datetime.now(UTC).isoformat()), args)
    finally:
        store.close()
    return 0
