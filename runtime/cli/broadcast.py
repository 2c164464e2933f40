"""CLI commands for broadcasts: draft, revise, submit, approve, ratify, retract, reject, cancel, show, list."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from keng.adapters.store.app import Keng
from keng.domain.authority import EVERYTHING, Visibility
from keng.domain.broadcast import Broadcast
from keng.domain.content import MAX_REPEATS
from keng.domain.errors import InvalidValue
from keng.domain.values import Priority
from keng.runtime.bootstrap import open_app, programme_of
from keng.runtime.cli.args import digits
from keng.runtime.cli.lookup import catalog
from keng.runtime.cli.output import print_json, print_table
from keng.runtime.config import Settings
from keng.runtime.views import broadcast_view, jsonable
from keng.services import broadcasts, programmes
from keng.services.pushes import push_summary, pushes_of

log = structlog.get_logger(__name__)


def _when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time (e.g. 2026-11-27T17:00+07:00)") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no UTC offset (add +07:00)")
    return parsed


def _content_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--title", required=required)
    text = p.add_mutually_exclusive_group(required=required)
    text.add_argument("--text", help="the bulletin text (Vietnamese)")
    text.add_argument("--text-file", type=Path, help="read the text from a UTF-8 file")
    p.add_argument("--priority", required=required, choices=[p.value for p in Priority])
    p.add_argument("--area", action="append", default=None, help="target area code (district, ward, group); repeat")
    p.add_argument("--endpoint", action="append", default=None, help="target endpoint code; repeat")
    p.add_argument("--channel", action="append", default=None, help="speaker, eboard, portal, app (default: all)")
    p.add_argument("--at", action="append", type=_when, default=None, help="scheduled time (ISO 8601); repeat")
    repeats = digits("repeats", lo=1, hi=MAX_REPEATS)
    p.add_argument("--repeats", type=repeats, default=None, help="times to play (default: 3 emergency, else 1)")
    p.add_argument("--expires", type=_when, default=None, help="expiry (ISO 8601; default by priority)")
    p.add_argument("--drill", action="store_true", default=None, help="an exercise: played only in drill mode")
    p.add_argument("--audio", default=None, help="pre-recorded audio reference")


_HELP = {
    "ratify": "ratify a standing-order approval (also after the broadcast has finished)",
    "retract": "retract a standing-order approval (also after it has finished; a live broadcast is cancelled)",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `broadcast` command group."""
    group = sub.add_parser("broadcast", help="bản tin: draft, approve and follow broadcasts")
    verbs = group.add_subparsers(dest="action", required=True)
    p = verbs.add_parser("draft", help="draft a broadcast; prints its id")
    p.add_argument("--as", dest="actor", required=True, help="staff handle of the drafter")
    _content_args(p, required=True)
    p.set_defaults(handler=cmd_draft)
    p = verbs.add_parser("revise", help="revise a broadcast (voids approvals)")
    p.add_argument("id")
    p.add_argument("--as", dest="actor", required=True)
    _content_args(p, required=False)
    p.set_defaults(handler=cmd_revise)
    for verb in ("submit", "approve", "ratify"):
        p = verbs.add_parser(verb, help=_HELP.get(verb, f"{verb} a broadcast"))
        p.add_argument("id")
        p.add_argument("--as", dest="actor", required=True)
        p.set_defaults(handler=cmd_transition, verb=verb)
    for verb in ("retract", "reject", "cancel"):
        p = verbs.add_parser(verb, help=_HELP.get(verb, f"{verb} a broadcast"))
        p.add_argument("id")
        p.add_argument("--as", dest="actor", required=True)
        p.add_argument("--reason", required=True)
        p.set_defaults(handler=cmd_transition, verb=verb)
    as_reader = "read as this staff member: only what their scope reaches (default: everything, as the store's owner)"
    p = verbs.add_parser("show", help="show one broadcast")
    p.add_argument("id")
    p.add_argument("--as", dest="actor", default=None, help=as_reader)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_show)
    p = verbs.add_parser("list", help="list broadcasts, newest first")
    p.add_argument("--state", default=None)
    p.add_argument(
        "--unratified", action="store_true", help="only standing-order approvals awaiting ratification, with deadlines"
    )
    p.add_argument("--as", dest="actor", default=None, help=as_reader)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)


def _text(args: argparse.Namespace) -> str | None:
    if getattr(args, "text_file", None):
        try:
            return str(args.text_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidValue(f"cannot read text file {args.text_file}: {e}") from None
    return getattr(args, "text", None)


def _content_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "title": args.title,
        "text": _text(args),
        "priority": args.priority,
        "target_areas": args.area,
        "target_endpoints": args.endpoint,
        "channels": args.channel,
        "schedule_at": args.at,
        "repeats": args.repeats,
        "expires_at": args.expires,
        "drill": args.drill,
        "audio": args.audio,
    }


def cmd_draft(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    kwargs = {k: v for k, v in _content_kwargs(args).items() if v is not None}
    kwargs.setdefault("target_areas", [])
    new_id = broadcasts.draft(app, by=args.actor, **kwargs)
    log.info("broadcast.drafted", broadcast_id=str(new_id), actor=args.actor, priority=args.priority)
    print(new_id)
    return 0


def cmd_revise(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    bid = broadcasts.resolve_id(app, args.id)
    broadcasts.revise(app, bid, by=args.actor, **_content_kwargs(args))
    log.info("broadcast.revised", broadcast_id=str(bid), actor=args.actor)
    print(f"Đã sửa bản tin, cần duyệt lại (revised; approval needed again): {bid}")
    return 0


_DONE = {
    "submit": "Đã trình duyệt (submitted)",
    "approve": "Đã duyệt (approved)",
    "ratify": "Đã phê chuẩn (ratified)",
    "retract": "Đã thu hồi phê duyệt (retracted)",
    "reject": "Đã từ chối (rejected)",
    "cancel": "Đã hủy (cancelled)",
}


def cmd_transition(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    bid = broadcasts.resolve_id(app, args.id)
    if broadcasts.act(app, bid, args.verb, by=args.actor, reason=getattr(args, "reason", "")):
        print("Thiết bị sẽ nhận lệnh dừng (stop will be sent to devices)")
    log.info(f"broadcast.{args.verb}", broadcast_id=str(bid), actor=args.actor)
    print(f"{_DONE[args.verb]}: {bid}")
    return 0


def _reader(app: Keng, handle: str | None) -> Visibility:
    return EVERYTHING if handle is None else app.visibility_of(app.staff(handle))


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    item = broadcasts.readable(app, broadcasts.resolve_id(app, args.id), _reader(app, args.actor))
    view = broadcast_view(item, settings.display_tz)
    delivered = push_summary(pushes_of(app, str(item.id)))
    programme = programmes.with_wards(app, programme_of(settings))
    view["waiting"] = jsonable(programmes.waiting(item, programme, app.clock()), settings.display_tz)
    view["delivery"] = jsonable(programmes.delivery(app, item), settings.display_tz)
    if args.json:
        print_json(view | {"pushes": delivered})
        return 0
    print(f"{view['title']}  [{view['priority']}]  — {view['state']} (revision {view['revision']})")
    print(f"id {view['id']}; soạn bởi (drafted by) {view['drafted_by']}; hết hạn (expires) {view['expires_at']}")
    print(
        f"đích (targets): {', '.join(view['targets']['areas'] + view['targets']['endpoints'])}; "
        f"kênh (channels): {', '.join(view['channels'])}"
    )
    for a in view["approvals"]:
        print(f"duyệt (approved) by {a['by'] or 'standing order ' + str(a['rule'])} (revision {a['revision']})")
    if view["schedule_at"]:
        print(f"giờ phát (scheduled): {', '.join(view['schedule_at'])}")
    if view["waiting"]:
        w = view["waiting"]
        print(f"đang chờ (waiting): {w['reason']} until {w['at'] or '-'}: {w['detail']}")
    for wave in view["delivery"]["waves"]:
        summary, verdict = wave["summary"] or {}, wave["verdict"] or {}
        line = f"đợt (wave) {wave['wave']}: opened {wave['opened_at']}, received {wave['received']}/{wave['targets']}"
        if summary:
            latency = summary["latency_ms"].get(view["priority"], {})
            line += f", {summary['outcome']}, p99 {latency.get('p99')} ms"
        if verdict:
            line += (
                f"; budget {verdict['budget_ms']} ms {verdict['verdict']} ({verdict['late']}/{verdict['counted']} late)"
            )
        print(line)
    for t in delivered["targets"]:  # portals and the app: delivery truth per target, like a speaker's
        detail = f" ({t['last_error']})" if t["last_error"] and t["status"] != "delivered" else ""
        print(f"đẩy tới (pushed to) {t['kind']} {t['target']}: {t['status']} after {t['attempts']} attempt(s){detail}")
    print()
    print(view["text"])
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    items = broadcasts.readable_list(catalog(app), _reader(app, args.actor), state=args.state)
    if args.unratified:
        return _list_unratified(app, items, settings, as_json=args.json)
    views = [broadcast_view(b, settings.display_tz) for b in items]
    if args.json:
        print_json(views)
        return 0
    print_table(
        ["id", "trạng thái (state)", "mức (priority)", "tiêu đề (title)", "soạn (by)", "tạo lúc (created)"],
        [[v["id"][:8], v["state"], v["priority"], v["title"][:50], v["drafted_by"], v["created_on"]] for v in views],
    )
    return 0


def _list_unratified(app: Keng, items: list[Broadcast], settings: Settings, *, as_json: bool) -> int:
    tz = settings.display_tz
    waiting = broadcasts.awaiting_ratification(items, within=settings.ratify_within, now=app.clock())
    views = [
        broadcast_view(u.broadcast, tz) | {"ratify_by": jsonable(u.due, tz), "ratification_overdue": u.overdue}
        for u in waiting
    ]
    if as_json:
        print_json(views)
        return 0
    print_table(
        [
            "id",
            "trạng thái (state)",
            "quy tắc (rule)",
            "tiêu đề (title)",
            "hạn phê chuẩn (ratify by)",
            "quá hạn (overdue)",
        ],
        [
            [
                v["id"][:8],
                v["state"],
                next((a["rule"] for a in v["approvals"] if a["rule"]), ""),
                v["title"][:40],
                v["ratify_by"] or "",
                "x" if v["ratification_overdue"] else "",
            ]
            for v in views
        ],
    )
    return 0
