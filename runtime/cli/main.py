"""The `keng` command line: argument parsing, the composition of each command, and error reporting.

Messages for ward staff are Vietnamese first, with the English detail (which names the broken rule) after a dash.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import structlog

from adapters.private_files import PRIVATE_UMASK
from domain.errors import InvalidValue
from runtime.cli import (
    admin,
    audit,
    broadcast,
    cap,
    dispatch,
    doctor,
    render,
    report,
    service,
    tts,
)
from runtime.cli.output import CommandError
from runtime.config import load_settings
from runtime.errors import headline_for
from runtime.logs import configure_logging, report_error


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (each module adds its own sub-commands)."""
    parser = argparse.ArgumentParser(
        prog="keng",
        description="keng: hệ thống phát thanh cơ sở và cảnh báo khẩn cấp (emergency alerting core)",
    )
    parser.add_argument("--data", help="data directory (default: $KENG_DATA or ~/.local/share/keng)")
    parser.add_argument(
        "--store",
        help="event store URL, e.g. postgres://user@host:5432/db (default: $KENG_STORE, "
        "else SQLite in the data directory)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.register(sub)
    broadcast.register(sub)
    dispatch.register(sub)
    report.register(sub)
    audit.register(sub)
    cap.register(sub)
    service.register(sub)
    tts.register(sub)
    render.register(sub)
    doctor.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `keng` console script."""
    os.umask(PRIVATE_UMASK)  # whatever this process creates (libraries included) is private to its owner
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(data_dir=args.data, store_url=args.store)
    except InvalidValue as e:
        print(f"lỗi: cấu hình không hợp lệ — {e}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    structlog.contextvars.bind_contextvars(command=args.command, actor=getattr(args, "actor", None))
    try:
        result = args.handler(args, settings)
    except CommandError as e:
        report_error(f"lỗi: {e.headline} — {e.detail}", command=args.command)
        return 1
    except Exception as e:
        headline = headline_for(e)
        if headline is None:
            structlog.get_logger(__name__).exception("command.crashed", command=args.command)
            report_error(f"lỗi: sự cố ngoài dự kiến — unexpected {type(e).__name__}: {e}", command=args.command)
            return 70
        report_error(f"lỗi: {headline} — {e}", command=args.command)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
