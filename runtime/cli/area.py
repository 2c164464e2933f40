"""`keng area ...`: the registry of administrative units as dated facts (list, show, as of an instant) and `sync`, the
reorganisation after the official list (services/areas.py): previewed, and recorded only with `--confirm`."""

from __future__ import annotations

import argparse
import csv
from datetime import date, datetime, time
from pathlib import Path

from keng.domain.errors import UnknownArea
from keng.domain.programme import VIETNAM_TZ
from keng.domain.values import AreaLevel
from keng.runtime.bootstrap import open_app
from keng.runtime.cli.output import CommandError, print_json, print_table
from keng.runtime.config import Settings
from keng.services import access
from keng.services.areas import (
    DISTRICT_STAFF,
    apply_reorganisation,
    area_at,
    area_history,
    area_view_rows,
    plan_reorganisation,
)

NOT_RECORDED = "nothing was recorded; run again with --confirm"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keng area`."""
    area = sub.add_parser("area", help="đơn vị hành chính: areas by date, and the sync with the official list")
    actions = area.add_subparsers(dest="action", required=True)

    p = actions.add_parser("list", help="the units in force now (or at --at), by code")
    p.add_argument("--at", type=instant, default=None, help="a day (00:00 Vietnam time) or an ISO instant")
    p.add_argument("--level", choices=[lvl.value for lvl in AreaLevel], default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_area_list)

    p = actions.add_parser("show", help="the unit holding a code now (or at --at), and every unit that held it")
    p.add_argument("code")
    p.add_argument("--at", type=instant, default=None, help="a day (00:00 Vietnam time) or an ISO instant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_area_show)

    p = actions.add_parser(
        "sync", help="compare with the official list (vietnam-provinces, vietnamadminunits); record with --confirm"
    )
    p.add_argument("--confirm", action="store_true", help="record the changes (without it: a preview only)")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--assign",
        type=Path,
        default=None,
        help="CSV of code,successor: where a group or endpoint of a divided ward goes",
    )
    p.add_argument(
        "--district-staff",
        choices=DISTRICT_STAFF,
        default="province",
        help="district-wide staff and district jurisdictions: stay province-wide (default) or become the new wards",
    )
    p.add_argument("--as", dest="actor", default=access.SYSTEM, help="admin handle recorded as the one who synced")
    p.set_defaults(handler=cmd_area_sync)


def instant(text: str) -> datetime:
    """`--at`: a day (YYYY-MM-DD: 00:00 Vietnam time that day) or an ISO instant (Vietnam time when it names no
    offset)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), VIETNAM_TZ)
        found = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a day (YYYY-MM-DD) nor an ISO instant") from None
    return found if found.tzinfo is not None else found.replace(tzinfo=VIETNAM_TZ)


def _row(r: dict[str, object]) -> list[object]:
    successors = r.get("successors") or []
    ending = f"{r['ending']} -> {', '.join(successors)}" if r.get("ending") else ""  # type: ignore[arg-type]
    return [r["code"], r["name"], r["level"], r["parent"] or "", r["valid_from"] or "—", r["valid_to"] or "", ending]


HEADERS = ["mã (code)", "tên (name)", "cấp (level)", "trực thuộc (parent)", "từ (from)", "đến (to)", "kết thúc (ended)"]


def cmd_area_list(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    rows = area_view_rows(app, args.at, level=args.level)
    if args.json:
        print_json(rows)
    else:
        print_table(HEADERS, [_row(r) for r in rows])
        when = (args.at or app.clock()).astimezone(VIETNAM_TZ).isoformat(timespec="minutes")
        print(f"{len(rows)} đơn vị (units) in force at {when}")
    return 0


def cmd_area_show(args: argparse.Namespace, settings: Settings) -> int:
    """The unit holding the code at the instant, and every unit that ever held it. A code that some unit held, but
    none at that instant, shows its history and why (ended: with its successors); a code never held is an error."""
    app = open_app(settings, create=False)
    history = area_history(app, args.code)
    try:
        unit: dict[str, object] = {**area_at(app, args.code, args.at), "in_force": True}
    except UnknownArea as e:
        if not history:
            raise
        unit = {"code": args.code, "in_force": False, "rule": e.rule, "detail": e.message,
                "successors": list(getattr(e, "successors", ()))}  # fmt: skip
    if args.json:
        print_json({**unit, "history": history})
        return 0
    if unit["in_force"]:
        print_table(["", ""], [[k, ", ".join(v) if isinstance(v, list) else ("" if v is None else v)]
                               for k, v in unit.items() if k != "in_force"])  # fmt: skip
    else:
        when = (args.at or app.clock()).astimezone(VIETNAM_TZ).isoformat(timespec="minutes")
        print(f"Không có đơn vị nào mang mã {args.code} lúc {when} (no unit holds the code then): {unit['detail']}")
    print(f"\nMọi đơn vị từng mang mã {args.code} (every unit that held the code):")
    print_table(HEADERS, [_row(r) for r in history])
    return 0


def read_assignments(path: Path) -> dict[str, str]:
    """`--assign FILE.csv`: rows of code,successor (a header row `code,successor` is allowed)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError("Không đọc được tệp phân bổ", f"cannot read {path}: {e}", rule="assign-file") from None
    found: dict[str, str] = {}
    problems: list[str] = []
    for n, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or (n == 1 and [c.lower() for c in cells] == ["code", "successor"]):
            continue
        if len(cells) != 2 or not all(cells):
            problems.append(f"line {n}: expected two cells, code,successor; got {row!r}")
        elif cells[0] in found and found[cells[0]] != cells[1]:
            problems.append(f"line {n}: {cells[0]} is assigned twice ({found[cells[0]]}, {cells[1]})")
        else:
            found[cells[0]] = cells[1]
    if problems:
        raise CommandError("Tệp phân bổ có lỗi", f"{path}: " + "; ".join(problems), rule="assign-file")
    return found


def cmd_area_sync(args: argparse.Namespace, settings: Settings) -> int:
    from keng.adapters.official_units import OfficialDataMissing, load_official

    assignments = read_assignments(args.assign) if args.assign else {}
    app = open_app(settings, create=False)
    try:
        official = load_official()
    except OfficialDataMissing as e:
        raise CommandError("Thiếu dữ liệu đơn vị hành chính chính thức", str(e), rule="official-data") from None
    plan = plan_reorganisation(
        app, official, by=args.actor, assignments=assignments, district_staff=args.district_staff
    )
    if args.confirm and not plan.empty:
        apply_reorganisation(app, plan)
    recorded = args.confirm and not plan.empty
    if args.json:
        print_json({**plan.as_json(), "recorded": recorded})
        return 0
    print(plan.as_text())
    if recorded:
        print(f"Đã ghi nhận (recorded): {plan.events} events, in one transaction")
    elif not plan.empty:
        print(f"Xem trước, chưa ghi nhận (preview): {NOT_RECORDED}")
    return 0
