"""CLI: `keng broker config`, the mosquitto configuration of a district written from the endpoint registry
(docs/broker.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from keng.runtime.cli.args import digits
from keng.runtime.cli.output import CommandError, print_json
from keng.runtime.config import Settings

if TYPE_CHECKING:
    from keng.adapters.mqtt.provision import TlsOptions


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the broker commands."""
    broker = sub.add_parser("broker", help="the MQTT broker: mosquitto configuration from the registry")
    actions = broker.add_subparsers(dest="action", required=True)
    p = actions.add_parser(
        "config",
        help="write mosquitto.conf, passwords, acl and keng.url (with --tls: CA and server certificate) into DIR",
        description="Write a mosquitto configuration from the endpoint registry as it stands: every device with "
        "credentials (keng endpoint credentials) may read its own and its areas' command topics and write its own "
        "ack and status topics; keng's own account what the dispatcher needs. Rerun after a district change, then "
        "`kill -HUP <mosquitto pid>` reloads passwords and ACL. Run the broker with `mosquitto -c DIR/mosquitto.conf`.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write into (created 0700)")
    p.add_argument("--port", type=digits("a TCP port", lo=1, hi=65535), default=None, metavar="N",
                   help="listener port (default 1883, with --tls 8883)")  # fmt: skip
    p.add_argument("--listen", default=None, metavar="HOST", help="address to bind (default: every interface)")
    p.add_argument("--keng-port", type=digits("a TCP port", lo=1, hi=65535), default=None, metavar="N",
                   help="a listener for keng's own account alone; devices' client ids are then their usernames, so "
                   "that no device can take over another's session (recommended)")  # fmt: skip
    p.add_argument("--keng-listen", default=None, metavar="HOST",
                   help="with --keng-port: the address keng's listener binds (default 127.0.0.1)")  # fmt: skip
    p.add_argument("--tls", action="store_true", help="a TLS listener (keng's own CA unless one is given)")
    p.add_argument("--ca-cert", type=Path, default=None, metavar="F", help="with --tls: sign with this CA (PEM)")
    p.add_argument("--ca-key", type=Path, default=None, metavar="F", help="with --ca-cert: its private key (PEM)")
    p.add_argument("--cert", type=Path, default=None, metavar="F",
                   help="with --tls: a server certificate made elsewhere (PEM), used as is")  # fmt: skip
    p.add_argument("--key", type=Path, default=None, metavar="F", help="with --cert: its private key (PEM)")
    p.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="with --tls: a name or address devices dial, for the server certificate (repeat)")  # fmt: skip
    p.add_argument("--persistence", action="store_true", help="keep sessions and queued messages in DIR")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(handler=cmd_broker_config)


def _tls_options(args: argparse.Namespace) -> TlsOptions | None:
    from keng.adapters.mqtt.provision import TlsOptions

    given = {name: getattr(args, name) for name in ("ca_cert", "ca_key", "cert", "key") if getattr(args, name)}
    if args.host:
        given["host"] = args.host
    if not args.tls:
        if given:
            names = ", ".join("--" + name.replace("_", "-") for name in given)
            raise CommandError("Thiếu --tls", f"{names} need --tls", rule="usage")
        return None
    if (args.cert is None) != (args.key is None):
        raise CommandError("Thiếu tệp chứng thư", "--cert and --key go together", rule="usage")
    if args.cert is not None and args.ca_key is not None:
        raise CommandError(
            "Tùy chọn mâu thuẫn",
            "--ca-key signs a server certificate; with --cert and --key the certificate is given (use --ca-cert "
            "alone to name the CA that verifies it)",
            rule="usage",
        )
    if args.cert is None and (args.ca_cert is None) != (args.ca_key is None):
        raise CommandError("Thiếu tệp CA", "--ca-cert and --ca-key go together", rule="usage")
    return TlsOptions(ca_cert=args.ca_cert, ca_key=args.ca_key, cert=args.cert, key=args.key, hosts=tuple(args.host))


def cmd_broker_config(args: argparse.Namespace, settings: Settings) -> int:
    from keng.adapters.mqtt.accounts import DevicePasswords, KengAccounts
    from keng.adapters.mqtt.certs import CertError
    from keng.adapters.mqtt.provision import BrokerOptions, ProvisionError
    from keng.runtime.bootstrap import open_app
    from keng.services.device_access import broker_config

    tls = _tls_options(args)
    options = BrokerOptions(
        out=args.out.expanduser(),
        port=args.port,
        listen=args.listen,
        tls=tls,
        persistence=args.persistence,
        topic_root=settings.topic_root,
        keng_port=args.keng_port,
        keng_listen=args.keng_listen,
    )
    app = open_app(settings, create=False)
    try:
        written = broker_config(app, DevicePasswords(settings.data_dir), KengAccounts(settings.data_dir), options)
    except (CertError, ProvisionError) as e:
        raise CommandError("Không ghi được cấu hình broker", str(e), rule="broker-config") from None
    except OSError as e:
        raise CommandError("Không ghi được cấu hình broker", f"{e.filename or args.out}: {e.strerror}") from None
    if args.json:
        print_json(
            {
                "files": {name: str(path) for name, path in written.files.items()},
                "devices": written.devices,
                "url": written.url_display,
                "ca": written.ca,
                "server_cert": written.server_cert,
                "notes": written.notes,
            }
        )
        return 0
    print(f"Đã ghi cấu hình broker (broker configuration written) for {written.devices} thiết bị (devices):")
    for name, path in written.files.items():
        print(f"  {name:<12} {path}")
    if tls is not None:
        print(f"  CA: {written.ca}; server certificate: {written.server_cert}")
    for note in written.notes:
        print(f"  note: {note}")
    print(f"keng connects with: {written.url_display} (KENG_MQTT=$(cat {written.files['url']}))")
    print(f"Run: mosquitto -c {written.files['conf']}   (after a regeneration: kill -HUP <mosquitto pid>)")
    return 0
