"""CLI commands for setting up and inspecting a district: init, district, staff, endpoint, events."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from keng.adapters import sample_district
from keng.adapters.passwords import PasswordStore
from keng.adapters.store.app import MAX_POSITION
from keng.adapters.store.config import locate_store
from keng.domain.endpoint import MAX_COST_VND
from keng.runtime.bootstrap import open_app
from keng.runtime.cli.args import digits
from keng.runtime.cli.lookup import catalog
from keng.runtime.cli.output import CommandError, print_json, print_table
from keng.runtime.config import Settings
from keng.runtime.views import endpoint_view, event_view, staff_view
from keng.services import access, credentials
from keng.services.inventory import bootstrap_admin, install_sample, load_district_file, record_equipment_event

log = structlog.get_logger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the set-up and inspection commands."""
    p = sub.add_parser("init", help="create the data directory and store (with --sample: Bắc Từ Liêm sample)")
    p.add_argument(
        "--sample",
        nargs="?",
        const="today",
        choices=("today", "2022"),
        default=None,
        metavar="2022",
        help="load the sample district, its staff and endpoints: registered as in 2022, then the 2025-07-01 "
        "reorganisation; `--sample 2022`: the 2022 structure only (`keng area sync` then previews the reform)",
    )
    p.set_defaults(handler=cmd_init)

    district = sub.add_parser("district", help="district inventory").add_subparsers(dest="action", required=True)
    p = district.add_parser("load", help="load areas and endpoints from a CSV or JSON file (docs/district-file.md)")
    p.add_argument("file", type=Path)
    p.add_argument("--as", dest="actor", default=access.SYSTEM, help="admin handle recorded as the loader")
    p.add_argument("--dry-run", action="store_true", help="validate only; store nothing")
    p.set_defaults(handler=cmd_district_load)

    staff = sub.add_parser("staff", help="staff members").add_subparsers(dest="action", required=True)
    p = staff.add_parser("add", help="enrol a staff member")
    p.add_argument("handle")
    p.add_argument("--name", required=True)
    p.add_argument("--role", action="append", required=True, help="drafter, approver, auditor or admin (repeat)")
    p.add_argument("--ward", action="append", default=[], help="limit authority to this ward code (repeat)")
    p.add_argument("--as", dest="actor", required=True, help="handle of an admin")
    p.set_defaults(handler=cmd_staff_add)
    for verb in ("grant", "revoke"):
        p = staff.add_parser(verb, help=f"{verb} a role")
        p.add_argument("handle")
        p.add_argument("role")
        p.add_argument("--as", dest="actor", required=True, help="handle of an admin")
        p.set_defaults(handler=cmd_staff_role, grant=verb == "grant")
    p = staff.add_parser("train", help="record a completed training course")
    p.add_argument("handle")
    p.add_argument("--course", required=True)
    p.add_argument("--on", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    p.add_argument("--as", dest="actor", required=True, help="handle of an admin")
    p.set_defaults(handler=cmd_staff_train)
    p = staff.add_parser("password", help="set a console password (asked twice at a terminal, else one line of stdin)")
    p.add_argument("handle")
    p.add_argument("--as", dest="actor", default="admin", help="handle of an admin (default: admin)")
    p.set_defaults(handler=cmd_staff_password)
    p = staff.add_parser("list", help="list staff members")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_staff_list)

    endpoint = sub.add_parser("endpoint", help="endpoints").add_subparsers(dest="action", required=True)
    p = endpoint.add_parser("list", help="list endpoints")
    p.add_argument("--ward")
    p.add_argument("--kind")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_endpoint_list)
    _register_lifecycle(endpoint)
    p = endpoint.add_parser(
        "credentials", help="issue or rotate a device's MQTT credentials (admin; the password is shown once)"
    )
    p.add_argument("code", help="endpoint inventory code (also the device's MQTT username)")
    p.add_argument("--as", dest="actor", required=True, help="handle of an admin whose scope covers the endpoint")
    p.add_argument("--json", action="store_true", help='print {"username": ..., "password": ...}')
    p.set_defaults(handler=cmd_endpoint_credentials)

    p = sub.add_parser("events", help="the global event log, in order")
    position = digits("a log position", lo=0, hi=MAX_POSITION)
    p.add_argument("--since", type=position, default=0, help="show events after this position")
    p.add_argument("--limit", type=digits("a count", lo=1, hi=MAX_POSITION), default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_events)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=True)
    where = locate_store(settings.store_url, settings.data_dir).display  # no password in what is printed
    if events := app.max_position():  # refused before anything is written: a second sample would be 700 errors
        raise CommandError(
            "Kho dữ liệu đã có, không khởi tạo lại",
            f"the store at {where} already holds {events} events; nothing was changed",
            rule="init-needs-empty-store",
        )
    bootstrap_admin(app)
    print(f"Kho dữ liệu sẵn sàng (store ready): {where}")
    if args.sample:
        counts = install_sample(app, reorganise=args.sample != "2022")
        print(
            "Đã nạp địa bàn mẫu quận Bắc Từ Liêm (sample district loaded; groups and endpoints are GENERATED): "
            + ", ".join(f"{n} {k}" for k, n in counts.items())
        )
        if args.sample == "2022":
            print("Cơ cấu năm 2022, chưa sắp xếp (2022 structure): `keng area sync` previews the 2025-07-01 reform")
        else:
            wards = app.area_registry().at(app.clock()).of_level("ward")
            print(
                "Đã ghi nhận sắp xếp đơn vị hành chính từ 2025-07-01 (reorganisation recorded): quận 021 giải thể; "
                f"{len(wards)} phường, xã hiện hành (current wards): " + ", ".join(f"{w.code} {w.name}" for w in wards)
            )
        staff = ", ".join(f"{m['handle']} ({'/'.join(m['roles'])})" for m in sample_district.STAFF)
        print(f"Cán bộ mẫu (sample staff): {staff}")
    return 0


def cmd_district_load(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    counts = load_district_file(app, args.file, by=args.actor, dry_run=args.dry_run)
    verb = "Tệp hợp lệ, chưa nạp (valid, not loaded)" if args.dry_run else "Đã nạp (loaded)"
    print(f"{verb}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0


def cmd_staff_add(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    access.enrol_staff(app, handle=args.handle, name=args.name, roles=args.role, wards=args.ward, by=args.actor)
    log.info("staff.enrolled", actor=args.actor, handle=args.handle, roles=args.role)
    print(f"Đã thêm cán bộ (staff enrolled): {args.handle.lower()}")
    return 0


def cmd_staff_role(args: argparse.Namespace, settings: Settings) -> int:
    change = access.grant_role if args.grant else access.revoke_role
    change(open_app(settings, create=False), args.handle, args.role, by=args.actor)
    print(f"{'Đã cấp' if args.grant else 'Đã thu hồi'} vai trò {args.role} ({args.handle})")
    return 0


def cmd_staff_train(args: argparse.Namespace, settings: Settings) -> int:
    access.record_training(open_app(settings, create=False), args.handle, args.course, on=args.on, by=args.actor)
    print(f"Đã ghi nhận tập huấn (training recorded): {args.handle}")
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Mật khẩu mới (new password): ")
        if getpass.getpass("Nhập lại (again): ") != first:
            raise CommandError("Hai lần nhập không khớp", "the two entries differ; nothing was changed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_staff_password(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    password = _read_password()
    credentials.set_password(app, PasswordStore(settings.data_dir), handle=args.handle, password=password,
                             by=args.actor)  # fmt: skip
    log.info("staff.password_set", actor=args.actor, handle=args.handle)
    print(f"Đã đặt mật khẩu (password set) for {args.handle.lower()}; their console sessions have ended")
    return 0


def cmd_staff_list(args: argparse.Namespace, settings: Settings) -> int:
    members = catalog(open_app(settings, create=False)).staff()
    if args.json:
        print_json([staff_view(s) for s in members])
    else:
        print_table(
            ["handle", "họ tên (name)", "vai trò (roles)", "phường (wards)"],
            [[s.handle, s.name, ",".join(s.roles), ",".join(s.wards) or "toàn quận"] for s in members],
        )
    return 0


def cmd_endpoint_list(args: argparse.Namespace, settings: Settings) -> int:
    items = catalog(open_app(settings, create=False)).endpoints(ward=args.ward, kind=args.kind)
    if args.json:
        print_json([endpoint_view(e) for e in items])
    else:
        print_table(
            ["mã (code)", "loại (kind)", "phường", "tổ dân phố", "công nghệ", "lắp đặt", "tình trạng"],
            [[e.code, e.kind, e.ward, e.group or "", e.technology, e.installed_on or "", e.condition] for e in items],
        )
        print(f"{len(items)} thiết bị (endpoints)")
    return 0


# The lifecycle sub-commands: (help, the option that carries `detail` and its help, whether it is required).
LIFECYCLE = {
    "fault": ("record a fault (admin)", "--fault", "what is wrong", True),
    "repair": ("record a repair (admin)", "--note", "what was done", False),
    "convert": ("record an FM -> IP conversion (admin)", "--technology", "the new technology, e.g. ip-4g", True),
    "decommission": ("record a decommissioning (admin)", "--reason", "why it leaves service", True),
    "portal-live": ("record a portal going live (admin)", "--url", "the portal's public address", False),
}


def _register_lifecycle(endpoint: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for action, (help_text, option, option_help, required) in LIFECYCLE.items():
        p = endpoint.add_parser(action, help=help_text)
        p.add_argument("code", help="endpoint inventory code")
        p.add_argument(option, dest="detail", required=required, default="", help=option_help)
        if action == "fault":
            p.add_argument("--severity", choices=("degraded", "broken"), default="broken")
        p.add_argument("--on", type=_day, default=None, help="the day it happened, YYYY-MM-DD (default: today)")
        p.add_argument("--cost", type=digits("a cost in đồng", lo=0, hi=MAX_COST_VND), default=None,
                       help="what it cost, in whole đồng (VND)")  # fmt: skip
        p.add_argument("--as", dest="actor", required=True, help="handle of an admin whose scope covers the endpoint")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=cmd_endpoint_lifecycle, lifecycle=action)


def _day(text: str) -> date:
    if len(text) != 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def cmd_endpoint_lifecycle(args: argparse.Namespace, settings: Settings) -> int:
    e = record_equipment_event(
        open_app(settings, create=False),
        args.code,
        args.lifecycle,
        by=args.actor,
        on=args.on,
        cost_vnd=args.cost,
        detail=args.detail,
        severity=getattr(args, "severity", "broken"),
    )
    if args.json:
        print_json(endpoint_view(e))
    else:
        print(f"Đã ghi nhận (recorded) {args.lifecycle}: {e.code} ({e.kind}, {e.condition})")
    return 0


def cmd_endpoint_credentials(args: argparse.Namespace, settings: Settings) -> int:
    from keng.adapters.mqtt.accounts import DevicePasswords
    from keng.services.device_access import issue_credentials

    issued = issue_credentials(
        open_app(settings, create=False), DevicePasswords(settings.data_dir), code=args.code, by=args.actor
    )
    if args.json:
        print_json({"username": issued.username, "password": issued.password})
        return 0
    verb = "Đã cấp lại (rotated)" if issued.rotated else "Đã cấp (issued)"
    print(f"{verb} thông tin đăng nhập MQTT cho thiết bị {issued.username} (MQTT credentials):")
    print(f"  username: {issued.username}")
    print(f"  password: {issued.password}")
    print(
        "Mật khẩu chỉ hiển thị một lần (shown once; only its hash is kept). Chạy lại `keng broker config --out DIR` "
        "rồi `kill -HUP <mosquitto pid>` để broker áp dụng (regenerate the broker files, then reload mosquitto)."
    )
    return 0


def cmd_events(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    views = [event_view(pos, ev, settings.display_tz) for pos, ev in app.read_events(args.since, args.limit)]
    if args.json:
        print_json(views)
    else:
        print_timeline(views)
    return 0


def print_timeline(views: list[dict[str, Any]]) -> None:
    """A readable timeline of events: position, local time, event, actor, subject."""
    print_table(
        ["#", "thời gian (time, +07:00)", "sự kiện (event)", "người (actor)", "đối tượng (subject)"],
        [
            [
                v["position"],
                v["time"].replace("T", " "),
                f"{v['aggregate']}.{v['event']}",
                v["actor"] or "",
                _subject(v),
            ]
            for v in views
        ],
    )


def _subject(v: dict[str, Any]) -> str:
    d = v["data"]
    for key in ("title", "handle", "code", "reason", "role", "course"):
        if d.get(key):
            return str(d[key])[:60]
    return str(v["aggregate_id"])[:8]
