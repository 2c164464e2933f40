"""CLI: `keng cap validate FILE... [--json]`, one verdict per file with every violation (error) by element path, and
the warnings apart (doubtful but valid: they never fail a file).

Register with `cli_cap.register(sub)` in runtime/cli/main.py. Exit status 1 when any file is invalid; warnings alone
exit 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import structlog

from keng.adapters.cap.errors import Violation
from keng.adapters.cap.parse import Verdict, check_cap
from keng.runtime.cli.output import print_json
from keng.runtime.config import Settings

log = structlog.get_logger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `cap` commands."""
    cap = sub.add_parser("cap", help="CAP 1.2 (Common Alerting Protocol) tools").add_subparsers(
        dest="action", required=True
    )
    p = cap.add_parser(
        "validate",
        help="check CAP 1.2 files; errors and warnings by element path; exit 1 if any file has an error",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per file, in a list")
    p.set_defaults(handler=cmd_cap_validate)


def verdict_of(path: Path) -> Verdict:
    """The verdict for one file (an unreadable file is a verdict too, not a crash)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        return Verdict(None, (Violation("file", f"cannot read: {e.strerror or e}"),), None)
    return check_cap(raw)


def verdict_view(path: Path, verdict: Verdict) -> dict[str, Any]:
    """A verdict as JSON-ready data."""
    alert = verdict.alert
    return {
        "file": str(path),
        "valid": verdict.valid,
        "version": verdict.version,
        "key": alert.key if alert else None,
        "status": alert.status.value if alert else None,
        "msg_type": alert.msg_type.value if alert else None,
        "infos": len(alert.infos) if alert else None,
        "signed": alert.signed if alert else None,
        "violations": [{"path": v.path, "message": v.message} for v in verdict.violations],
        "warnings": [{"path": v.path, "message": v.message} for v in verdict.warnings],
    }


def cmd_cap_validate(args: argparse.Namespace, settings: Settings) -> int:
    views = [verdict_view(path, verdict_of(path)) for path in args.files]
    invalid = sum(1 for v in views if not v["valid"])
    with_warnings = sum(1 for v in views if v["warnings"])
    log.info("cap.validated", files=len(views), invalid=invalid, with_warnings=with_warnings)
    if args.json:
        print_json(views)
    else:
        for v in views:
            warnings = len(v["warnings"])
            warned = f"{warnings} cảnh báo (warning{'s' if warnings > 1 else ''})" if warnings else ""
            if v["valid"]:
                summary = f"{v['msg_type']} {v['status']}, {v['infos']} info, {v['key']}"
                print(f"{v['file']}: hợp lệ (valid CAP 1.2) — {summary}" + (f"; {warned}" if warned else ""))
            else:
                count = len(v["violations"])
                errors = f"{count} lỗi (error{'s' if count > 1 else ''})"
                print(f"{v['file']}: không hợp lệ (invalid) — {errors}" + (f", {warned}" if warned else ""))
                for item in v["violations"]:
                    print(f"  lỗi (error) {item['path']}: {item['message']}")
            for item in v["warnings"]:
                print(f"  cảnh báo (warning) {item['path']}: {item['message']}")
    return 1 if invalid else 0
