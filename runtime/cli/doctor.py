"""`keng doctor`: checks an installation; today, that the data directory is private (0700, its files 0600).

Exit status 0 when all is well, 1 when something is wrong (after `--fix`, when something could not be fixed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from keng.adapters.private_files import LoosePath, loose_paths, tighten
from keng.adapters.store.config import locate_store
from keng.runtime.cli.output import print_json, print_table
from keng.runtime.config import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `doctor`."""
    p = sub.add_parser("doctor", help="check the installation (data directory permissions)")
    p.add_argument("--fix", action="store_true", help="clear group and other permissions on what is found")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_doctor)


def store_files_outside(settings: Settings) -> list[Path]:
    """An SQLite store kept outside the data directory: its database, -wal, -shm and read-model files."""
    location = locate_store(settings.store_url, settings.data_dir)
    if location.kind != "sqlite":
        return []
    db = Path(location.env["SQLITE_DBNAME"])
    if db.resolve().is_relative_to(settings.data_dir.resolve()):
        return []
    return sorted(p for p in db.parent.glob(f"{db.name}*") if p.is_file())


def find_loose(settings: Settings) -> list[LoosePath]:
    """What group or others may read or write: in the data directory, and the SQLite store's files."""
    found = loose_paths(settings.data_dir) if settings.data_dir.is_dir() else []
    for path in store_files_outside(settings):
        found += loose_paths(path)
    return found


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    loose = find_loose(settings)
    if args.fix:
        tighten(loose)
    remaining = find_loose(settings) if args.fix else loose
    report = {
        "data_dir": str(settings.data_dir),
        "exists": settings.data_dir.is_dir(),
        "ok": not remaining and settings.data_dir.is_dir(),
        "too_wide": [item.as_dict() for item in loose],
        "fixed": len(loose) - len(remaining) if args.fix else 0,
    }
    if args.json:
        print_json(report)
    elif not report["exists"]:
        print(f"Không có thư mục dữ liệu (no data directory): {settings.data_dir} — run `keng init`")
    elif loose:
        print_table(["path", "kind", "mode", "wanted"], [list(item.as_dict().values()) for item in loose])
        print(
            f"Đã sửa (fixed) {report['fixed']} of {len(loose)}"
            if args.fix
            else f"{len(loose)} path(s) readable by group or others: run `keng doctor --fix` (0700 folders, 0600 files)"
        )
    else:
        print(f"Thư mục dữ liệu riêng tư (data directory private): {settings.data_dir}")
    return 0 if report["ok"] else 1
