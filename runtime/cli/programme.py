"""CLI commands for programmes: a ward's slots, quiet hours and order of priority items, and recurring programmes."""

from __future__ import annotations

import argparse
from pathlib import Path

from keng.domain.errors import InvalidValue
from keng.domain.values import Priority
from keng.runtime.bootstrap import open_app, programme_of
from keng.runtime.cli.output import print_json, print_table
from keng.runtime.config import Settings
from keng.runtime.views import jsonable
from keng.services import programmes


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `programme` command group."""
    group = sub.add_parser("programme", help="chương trình: ward slots, quiet hours, recurring programmes")
    verbs = group.add_subparsers(dest="action", required=True)
    p = verbs.add_parser("slots", help="set a ward's programme slots and quiet hours (admin)")
    p.add_argument("ward")
    p.add_argument("--slots", default=None, help="e.g. 05:30-06:30,17:00-18:00 (default: keep)")
    p.add_argument("--quiet", default=None, help="quiet hours, e.g. 22:00-05:00, or none (default: keep)")
    p.add_argument("--as", dest="actor", required=True)
    p.set_defaults(handler=cmd_slots)
    p = verbs.add_parser("order", help="the order of a ward's priority items waiting for the same slot (admin)")
    p.add_argument("ward")
    p.add_argument("broadcasts", nargs="*", help="broadcast ids, first to go first (none: clear the order)")
    p.add_argument("--as", dest="actor", required=True)
    p.set_defaults(handler=cmd_order)
    p = verbs.add_parser("wards", help="each ward's slots, quiet hours and order")
    p.add_argument("wards", nargs="*", help="ward codes (default: every ward)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_wards)
    p = verbs.add_parser("add", help="set up a recurring programme (daily or weekly); prints its id")
    p.add_argument("--title", required=True)
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--text")
    text.add_argument("--text-file", type=Path)
    p.add_argument("--priority", default="normal", choices=[Priority.NORMAL.value, Priority.PRIORITY.value])
    p.add_argument("--ward", action="append", required=True, help="ward code; repeat")
    p.add_argument("--at", action="append", required=True, help="time of day HH:MM (+07:00); repeat")
    p.add_argument("--days", default="daily", help="daily, or days such as mon,wed,fri")
    p.add_argument("--channel", action="append", default=None, help="speaker (default), eboard, portal, app")
    p.add_argument("--as", dest="actor", required=True)
    p.set_defaults(handler=cmd_add)
    p = verbs.add_parser("approve", help="approve a recurring programme (an approver, not its author)")
    p.add_argument("id")
    p.add_argument("--as", dest="actor", required=True)
    p.set_defaults(handler=cmd_approve)
    p = verbs.add_parser("end", help="end a recurring programme")
    p.add_argument("id")
    p.add_argument("--as", dest="actor", required=True)
    p.add_argument("--reason", required=True)
    p.set_defaults(handler=cmd_end)
    p = verbs.add_parser("list", help="recurring programmes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)


def cmd_slots(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    programmes.set_ward(app, args.ward, by=args.actor, base=programme_of(settings), slots=args.slots, quiet=args.quiet)
    (row,) = programmes.ward_settings(app, programme_of(settings), [args.ward])
    print(f"Đã đặt khung giờ (programme set) {args.ward}: slots {', '.join(row['slots'])}; "
          f"quiet {', '.join(row['quiet']) or 'none'}")  # fmt: skip
    return 0


def cmd_order(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    programmes.order_ward(app, args.ward, args.broadcasts, by=args.actor, base=programme_of(settings))
    print(f"Đã đặt thứ tự (order set) {args.ward}: {len(args.broadcasts)} items")
    return 0


def cmd_wards(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    wards = args.wards or [a.code for a in app.area_registry().in_force(app.clock()).of_level("ward")]
    rows = programmes.ward_settings(app, programme_of(settings), wards)
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["ward", "own", "slots", "quiet", "order"],
        [[r["ward"], "yes" if r["own"] else "-", ", ".join(r["slots"]), ", ".join(r["quiet"]) or "none",
          len(r["order"])] for r in rows],
    )  # fmt: skip
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    if args.text_file:
        try:
            text = args.text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidValue(f"cannot read text file {args.text_file}: {e}") from None
    else:
        text = args.text
    pid = programmes.create_programme(
        app,
        by=args.actor,
        title=args.title,
        text=text,
        priority=args.priority,
        wards=args.ward,
        times=args.at,
        days=args.days,
        channels=args.channel,
    )
    print(pid)
    return 0


def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    pid = programmes.resolve_programme(app, args.id)
    programmes.approve_programme(app, pid, by=args.actor)
    print(f"Đã duyệt chương trình (programme approved): {pid}")
    return 0


def cmd_end(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    pid = programmes.resolve_programme(app, args.id)
    programmes.end_programme(app, pid, by=args.actor, reason=args.reason)
    print(f"Đã kết thúc chương trình (programme ended): {pid}")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    items = programmes.programmes(app)
    if args.json:
        rows = [
            {
                "id": p.id,
                "title": p.title,
                "priority": p.priority,
                "wards": p.wards,
                "times": p.times,
                "weekdays": p.weekdays,
                "created_by": p.created_by,
                "approved_by": p.approved_by,
                "ended": p.ended,
                "occurrences": p.occurrences,
                "last_at": p.last_at,
            }
            for p in items
        ]
        print_json(jsonable(rows, settings.display_tz))
        return 0
    print_table(
        ["id", "title", "wards", "times", "days", "approved by", "occurrences"],
        [[str(p.id)[:8], p.title[:40], ",".join(p.wards), ",".join(p.times),
          ",".join(str(d) for d in p.weekdays), p.approved_by or "-", p.occurrences] for p in items],
    )  # fmt: skip
    return 0
    print_table(
        ["id", "title", "wards", "times", "days", "approved by", "occurrences"],
        [[str(r["id"])[:8], r["title"][:40], ",".join(r["wards"]), ",".join(r["times"]),
          ",".join(str(d) for d in r["weekdays"]), r["approved_by"] or "-", r["occurrences"]] for r in rows],
    )  # fmt: skip
    return 0
