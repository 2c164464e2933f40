"""CLI commands for the service: `keng serve`, API tokens and webhook integrations."""

from __future__ import annotations

import argparse
import sys

import structlog
from aiohttp import web

from keng.adapters.secrets import SecretStore
from keng.domain.access import INTEGRATION_KINDS, Integration
from keng.domain.errors import InvalidValue
from keng.runtime.bootstrap import build_http_app, open_app, warn_loose_permissions
from keng.runtime.cli.listen import broker_plan, require_free_port
from keng.runtime.cli.lookup import catalog
from keng.runtime.cli.output import print_json, print_table
from keng.runtime.config import Settings
from keng.runtime.process import freeze_long_lived
from keng.services import access

log = structlog.get_logger(__name__)
FETCH_HOST_HELP = (
    "host name (or address) keng may fetch from for this integration although it is loopback or private: "
    "resource URIs in its CAP alerts, its report URL (repeat; see docs/cap.md)"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `serve`, `token` and `integration`."""
    p = sub.add_parser("serve", help="run the HTTP service (API, webhooks, metrics)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--max-body", type=int, default=1_048_576, help="largest accepted request body in bytes")
    p.add_argument(
        "--broker",
        default=None,
        help="MQTT broker URL, mqtt://... or mqtts://...?ca=PATH, several separated by commas for a broker cluster "
        "(default: $KENG_MQTT, else an embedded broker on $KENG_BROKER_LISTEN, default 127.0.0.1:1883)",
    )
    p.add_argument("--slots", default=None, help="programme slots for normal items, e.g. 05:30-06:30,17:00-18:00")
    p.add_argument("--quiet", default=None, help="quiet hours, e.g. 22:00-05:00 or none (default: the sample's)")
    p.add_argument("--no-dispatcher", action="store_true", help="serve the API only (another process dispatches)")
    p.add_argument("--public-url", default=None, help="base URL devices use to reach this service (audio links)")
    p.set_defaults(handler=cmd_serve)

    token = sub.add_parser("token", help="API bearer tokens").add_subparsers(dest="action", required=True)
    p = token.add_parser("create", help="create a token for a staff member (shown once)")
    p.add_argument("--staff", required=True)
    p.add_argument("--label", default="")
    p.add_argument("--as", dest="actor", default="admin", help="admin handle (default: admin)")
    p.set_defaults(handler=cmd_token_create)
    p = token.add_parser("revoke", help="revoke every token of a staff member")
    p.add_argument("--staff", required=True)
    p.add_argument("--as", dest="actor", default="admin")
    p.set_defaults(handler=cmd_token_revoke)

    integ = sub.add_parser("integration", help="signed-webhook senders").add_subparsers(dest="action", required=True)
    p = integ.add_parser("add", help="add an integration; prints its first secret once")
    p.add_argument("name")
    p.add_argument("--kind", default="city-source", choices=list(INTEGRATION_KINDS))
    p.add_argument("--jurisdiction", action="append", required=True, help="area code it may target (repeat)")
    p.add_argument(
        "--report-url",
        "--webhook-url",
        dest="report_url",
        default=None,
        help="where to POST signed webhooks: delivery reports (city source), bulletins (portal, app), replies (app)",
    )
    p.add_argument("--fetch-host", action="append", default=[], help=FETCH_HOST_HELP)
    p.add_argument("--sender", action="append", default=[], help="CAP <sender> it may use (repeat; kind cap)")
    p.add_argument("--as", dest="actor", default="admin")
    p.set_defaults(handler=cmd_integration_add)
    p = integ.add_parser("fetch-hosts", help="replace the hosts allowlisted for outbound fetches (none: clear)")
    p.add_argument("name")
    p.add_argument("hosts", nargs="*", metavar="HOST", help=FETCH_HOST_HELP)
    p.add_argument("--as", dest="actor", default="admin")
    p.set_defaults(handler=cmd_integration_fetch_hosts)
    p = integ.add_parser("senders", help="replace the CAP senders a CAP integration may use")
    p.add_argument("name")
    p.add_argument("--sender", action="append", required=True, help="CAP <sender> it may use (repeat)")
    p.add_argument("--as", dest="actor", default="admin")
    p.set_defaults(handler=cmd_integration_senders)
    p = integ.add_parser("rotate", help="issue another active secret (prints it once)")
    p.add_argument("name")
    p.add_argument("--as", dest="actor", default="admin")
    p.set_defaults(handler=cmd_integration_rotate)
    p = integ.add_parser("retire", help="retire a secret by fingerprint")
    p.add_argument("name")
    p.add_argument("fingerprint")
    p.add_argument("--as", dest="actor", default="admin")
    p.set_defaults(handler=cmd_integration_retire)
    p = integ.add_parser("list", help="integrations and their active secret fingerprints")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_integration_list)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    require_free_port(args.host, args.port)
    settings = settings.override(
        broker_url=args.broker,
        slots=args.slots,
        quiet=args.quiet,
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        max_body_bytes=args.max_body,
    )
    broker_line = ""
    if not args.no_dispatcher:
        settings, broker_line = broker_plan(settings)
    web_app, app = build_http_app(settings, dispatcher=not args.no_dispatcher)
    warn_loose_permissions(settings.data_dir)
    freeze_long_lived()
    log.info("service.starting", host=args.host, port=args.port)
    banner = f"keng đang chạy (serving) at http://{args.host}:{args.port}/ — Ctrl+C to stop"
    if broker_line:
        banner += f"\n{broker_line}"
    # aiohttp calls `print` once every site listens: the banner is never shown for a service that did not start.
    web.run_app(web_app, host=args.host, port=args.port, print=lambda _: print(banner, flush=True), shutdown_timeout=10)
    app.close()
    return 0


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    token = access.issue_token(open_app(settings, create=False), staff=args.staff, label=args.label, by=args.actor)
    print(token)
    print("Lưu mã này ngay: sẽ không hiển thị lại (store it now: it is not shown again)", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    revoked = access.revoke_tokens(open_app(settings, create=False), staff=args.staff, by=args.actor)
    print(f"Đã thu hồi {revoked} mã (tokens revoked)")
    return 0


def cmd_integration_add(args: argparse.Namespace, settings: Settings) -> int:
    if args.kind == "cap" and not args.sender:
        raise InvalidValue("a CAP integration needs at least one --sender (the CAP <sender> values it may use)")
    secret = access.add_integration(
        open_app(settings, create=False),
        SecretStore(settings.data_dir),
        name=args.name,
        kind=args.kind,
        jurisdiction=args.jurisdiction,
        by=args.actor,
        report_url=args.report_url,
        fetch_hosts=args.fetch_host,
        senders=args.sender,
    )
    print(secret)
    print("Lưu khóa ký này ngay (signing secret): store it now, it is not shown again", file=sys.stderr)
    return 0


def cmd_integration_fetch_hosts(args: argparse.Namespace, settings: Settings) -> int:
    hosts = access.set_fetch_hosts(open_app(settings, create=False), name=args.name, hosts=args.hosts, by=args.actor)
    print(f"Máy chủ được phép tải (fetch hosts): {' '.join(hosts) or '-'}")
    return 0


def cmd_integration_senders(args: argparse.Namespace, settings: Settings) -> int:
    access.set_senders(open_app(settings, create=False), name=args.name, senders=args.sender, by=args.actor)
    print(f"Đã đặt nguồn gửi CAP (CAP senders set) for {args.name}: {', '.join(sorted(set(args.sender)))}")
    return 0


def cmd_integration_rotate(args: argparse.Namespace, settings: Settings) -> int:
    app, secrets = open_app(settings, create=False), SecretStore(settings.data_dir)
    print(access.rotate_secret(app, secrets, name=args.name, by=args.actor))
    return 0


def cmd_integration_retire(args: argparse.Namespace, settings: Settings) -> int:
    app, secrets = open_app(settings, create=False), SecretStore(settings.data_dir)
    access.retire_secret(app, secrets, name=args.name, fingerprint=args.fingerprint, by=args.actor)
    print(f"Đã ngừng khóa (secret retired): {args.fingerprint}")
    return 0


def cmd_integration_list(args: argparse.Namespace, settings: Settings) -> int:
    items = catalog(open_app(settings, create=False)).of_type(Integration)
    views = [
        {
            "name": i.name,
            "kind": i.kind,
            "jurisdiction": i.jurisdiction,
            "senders": i.senders,
            "secrets": i.secrets,
            "fetch_hosts": i.fetch_hosts,
        }
        for i in items
    ]
    if args.json:
        print_json(views)
    else:
        print_table(
            ["name", "kind", "jurisdiction", "CAP senders", "active secrets", "fetch hosts"],
            [
                [
                    v["name"],
                    v["kind"],
                    ",".join(v["jurisdiction"]),
                    " ".join(v["senders"]),
                    " ".join(v["secrets"]),
                    " ".join(v["fetch_hosts"]),
                ]
                for v in views
            ],
        )
    return 0
