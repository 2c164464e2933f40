"""CLI commands for citizen feedback (phản ánh, kiến nghị): list (with the overdue report and the response rate),
show, triage, reply, close. The use cases are services/feedback.py; a reply is pushed to the app by `keng serve`."""

from __future__ import annotations

import argparse
from uuid import UUID

from keng.adapters.app_messages import read_contact
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.feedback import CATEGORIES, STATES
from keng.runtime.bootstrap import open_app
from keng.runtime.cli.output import print_json, print_table
from keng.runtime.config import Settings
from keng.runtime.views import feedback_view
from keng.services import feedback
from keng.services.pushes import pushes_of


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `feedback`."""
    verbs = sub.add_parser("feedback", help="phản ánh của người dân (citizen feedback from the app)").add_subparsers(
        dest="action", required=True
    )
    p = verbs.add_parser("list", help="feedback, oldest first (a ward's staff: their wards')")
    p.add_argument("--as", dest="actor", required=True, help="staff handle")
    p.add_argument("--state", choices=STATES, default=None)
    p.add_argument("--overdue", action="store_true", help="only unanswered feedback past its due date")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)
    p = verbs.add_parser("show", help="one feedback item, its replies and their delivery to the app")
    p.add_argument("id")
    p.add_argument("--as", dest="actor", required=True)
    p.add_argument("--contact", action="store_true", help="also show the resident's contact (kept outside the log)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_show)
    p = verbs.add_parser("triage", help="assign feedback to a ward")
    p.add_argument("id")
    p.add_argument("--ward", required=True)
    p.add_argument("--as", dest="actor", required=True)
    p.set_defaults(handler=cmd_triage)
    p = verbs.add_parser("reply", help="reply to the resident (pushed to the app, signed)")
    p.add_argument("id")
    p.add_argument("--text", required=True)
    p.add_argument("--as", dest="actor", required=True)
    p.set_defaults(handler=cmd_reply)
    p = verbs.add_parser("close", help="close feedback (final)")
    p.add_argument("id")
    p.add_argument("--reason", default="")
    p.add_argument("--as", dest="actor", required=True)
    p.set_defaults(handler=cmd_close)


def _id(app: Keng, ref: str) -> UUID:
    """A full id, or a unique prefix of one (as `keng feedback list` shows them)."""
    try:
        return UUID(ref)
    except ValueError:
        pass
    found = [f.id for f in feedback.all_feedback(app) if str(f.id).startswith(ref.lower())] if len(ref) >= 4 else []
    if len(found) != 1:
        raise NotFound(f"feedback {ref!r} not found" + (" (ambiguous prefix)" if found else ""))
    return found[0]


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    rows = feedback.readable(app, by=args.actor, state=args.state, overdue=args.overdue)
    views = [feedback_view(r.item, settings.display_tz, overdue=r.overdue) for r in rows]
    rate = feedback.response_rate([r.item for r in feedback.readable(app, by=args.actor)], app.clock())
    if args.json:
        print_json({"feedback": views, "response_rate": rate})
        return 0
    print_table(
        ["id", "loại (category)", "phường (ward)", "trạng thái (state)", "hạn (due)", "quá hạn", "nội dung (text)"],
        [
            [v["id"][:8], CATEGORIES[v["category"]][0], v["ward"] or "-", v["state"], v["due_at"],
             "QUÁ HẠN" if v["overdue"] else "", v["text"][:40]]
            for v in views
        ],
    )  # fmt: skip
    print(
        f"Tỉ lệ trả lời đúng hạn (response rate): {rate['value']}% ({rate['numerator']}/{rate['denominator']}); "
        f"quá hạn (overdue): {rate['overdue']}"
    )
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    item = feedback.get(app, _id(app, args.id), by=args.actor)
    view = feedback_view(item, settings.display_tz, overdue=item.overdue(app.clock()))
    view["pushes"] = [
        {"reply": p.revision, "status": p.status, "attempts": p.attempts, "last_error": p.last_error}
        for p in pushes_of(app, str(item.id))
    ]
    if args.contact:
        view["contact"] = read_contact(settings.data_dir, item.id)
    if args.json:
        print_json(view)
        return 0
    print(
        f"{CATEGORIES[item.category][0]} — {view['state']}; phường (ward) {view['ward'] or '-'}; hạn {view['due_at']}"
    )
    print(f"id {view['id']}; từ (from) {view['integration']} ({view['message_id']})")
    print()
    print(view["text"])
    for r in view["replies"]:
        print(f"\n↳ {r['by']} ({r['at']}): {r['text']}")
    for p in view["pushes"]:
        print(f"trả lời #{p['reply']} tới ứng dụng (to the app): {p['status']} after {p['attempts']} attempt(s)")
    if args.contact:
        print(f"liên hệ (contact): {view['contact'] or '-'}")
    return 0


def cmd_triage(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    item = feedback.triage(app, _id(app, args.id), ward=args.ward, by=args.actor)
    print(f"Đã chuyển phường {item.ward} (triaged): {item.id}")
    return 0


def cmd_reply(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    item, push = feedback.reply(app, _id(app, args.id), text=args.text, by=args.actor)
    where = "sẽ gửi tới ứng dụng (queued for the app)" if push else "ứng dụng chưa có webhook URL (no webhook URL)"
    print(f"Đã trả lời (replied) {item.id}: {where}")
    return 0


def cmd_close(args: argparse.Namespace, settings: Settings) -> int:
    app = open_app(settings, create=False)
    item = feedback.close(app, _id(app, args.id), by=args.actor, reason=args.reason)
    print(f"Đã đóng (closed): {item.id}")
    return 0
