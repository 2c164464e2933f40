"""`keng audit ...` (auditor role and up): seal, verify, checkpoint export, as-of replay, raw export.

Events are chained as they are recorded and `keng serve` signs checkpoints by itself; `seal` signs one now. The signing
key is `<data dir>/audit-key.pem`, created on first use (see docs/audit.md)."""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import orjson
import structlog

from keng.adapters.audit.chain import iter_chain, seal
from keng.adapters.audit.keys import load_or_create
from keng.adapters.audit.verify import Exported, export_checkpoint, verify
from keng.adapters.readstore.source import FactSource
from keng.adapters.readstore.sql import SqlDb, select_records
from keng.adapters.readstore.store import ReadStore
from keng.adapters.store.app import MAX_POSITION, Keng
from keng.domain.values import require_aware
from keng.projections.facts import facts_until
from keng.projections.runner import run_facts
from keng.runtime.bootstrap import open_app
from keng.runtime.cli.args import add_structure_options, digits
from keng.runtime.cli.output import print_csv, print_json, show
from keng.runtime.config import Settings
from keng.runtime.reports import REPORTS, ReportOptions, build
from keng.runtime.workers.readmodels import REBUILD_BATCH, events_table, require_auditor

log = structlog.get_logger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keng audit`."""
    audit = sub.add_parser("audit", help="tamper-evident audit trail and point-in-time replay (auditor)")
    actions = audit.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text)
        p.add_argument("--as", dest="actor", required=True, help="handle of an auditor (or admin)")
        return p

    action("seal", "chain any unchained events and sign checkpoints now (the service does it by itself)").set_defaults(
        handler=cmd_seal
    )
    p = action("verify", "recompute the chain, check signatures; name the first bad position")
    p.add_argument("--checkpoint", type=Path, help="an exported checkpoint file kept off this machine")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_verify)
    checkpoint = actions.add_parser("checkpoint", help="signed checkpoints").add_subparsers(dest="sub", required=True)
    p = checkpoint.add_parser("export", help="write the newest signed checkpoint (keep it off this machine)")
    p.add_argument("--as", dest="actor", required=True)
    p.add_argument("--out", type=Path, help="file to write (default: stdout)")
    p.set_defaults(handler=cmd_checkpoint_export)
    p = action("replay", "rebuild every read model as of an instant into a separate store and report from it")
    p.add_argument("--as-of", required=True, type=datetime.fromisoformat, help="e.g. 2026-11-27T14:03:00+07:00")
    p.add_argument("--out", type=Path, help="directory for the replayed store (default: a new temporary one)")
    p.add_argument("--report", dest="name", choices=REPORTS, default="board")
    p.add_argument("--state", help="board: e.g. submitted (pending approval)")
    add_structure_options(p)
    p.add_argument("--area", help="timeline: every unit that ever held this area code")
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", action="store_true")
    p.set_defaults(handler=cmd_replay, first=2022, last=2025, start=None, end=None, broadcast=None, staff=None)
    p = action("export", "raw events with their chain links, for outside tools")
    position = digits("a log position", lo=1, hi=MAX_POSITION)
    p.add_argument("--from", dest="first", type=position, default=1, help="first position")
    p.add_argument("--to", dest="last", type=position, default=None, help="last position")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.set_defaults(handler=cmd_export)


def _open(args: argparse.Namespace, settings: Settings) -> tuple[Keng, SqlDb]:
    app = open_app(settings, create=False)
    require_auditor(app, args.actor)
    return app, SqlDb.of_app(app)


def cmd_seal(args: argparse.Namespace, settings: Settings) -> int:
    app, db = _open(args, settings)
    sealed = seal(db, events_table(app), load_or_create(settings.data_dir))
    log.info("audit.sealed", actor=args.actor, events=sealed)
    print(f"Đã niêm phong (sealed) {sealed} sự kiện mới (new events under a signed checkpoint)")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    app, db = _open(args, settings)
    exported = Exported.from_json(args.checkpoint.read_bytes()) if args.checkpoint else None
    started = datetime.now()
    report = verify(db, events_table(app), load_or_create(settings.data_dir), exported)
    seconds = (datetime.now() - started).total_seconds()
    log.info("audit.verified", ok=report.ok, events=report.events, first_bad=report.first_bad_position,
             events_per_s=round(report.events / seconds) if seconds else None)  # fmt: skip
    if args.json:
        print_json(report.as_dict())
    elif report.ok:
        print(f"Toàn vẹn (intact): {report.sealed} sealed, {report.unsealed} not yet sealed "
              f"({report.chained - report.sealed} of them chained), {report.checkpoints} signed checkpoints, "
              f"key {report.key_id}")  # fmt: skip
    else:
        print(f"PHÁT HIỆN SAI LỆCH (tampering detected): first bad position {report.first_bad_position}")
        for f in report.findings[:20]:
            print(f"  #{f.position}: {f.problem}")
    return 0 if report.ok else 2


def cmd_checkpoint_export(args: argparse.Namespace, settings: Settings) -> int:
    _, db = _open(args, settings)
    data = export_checkpoint(db).to_json()
    if args.out:
        args.out.write_bytes(data)
        print(f"Đã xuất (exported) checkpoint to {args.out}")
    else:
        sys.stdout.write(data.decode() + "\n")
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    app, _ = _open(args, settings)
    as_of = require_aware(args.as_of, "--as-of")
    directory = args.out or Path(tempfile.mkdtemp(prefix="keng-asof-"))
    store = ReadStore.sqlite_file(directory / f"asof-{as_of.strftime('%Y%m%dT%H%M%S%z')}.db")
    store.clear()
    folded = run_facts(facts_until(FactSource.of_app(app).facts(), as_of), store, batch_size=REBUILD_BATCH)
    print(f"# as of {as_of.isoformat()}: {folded} events, store {store.db.datastore.pool.db_name}", file=sys.stderr)
    show(build(store, ReportOptions.from_args(args), as_of.isoformat()), args)
    store.close()
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    app, db = _open(args, settings)
    links = dict(iter_chain(db, upto=args.last)) if args.last else dict(iter_chain(db))
    rows = []
    for pos, oid, version, topic, state in select_records(db, events_table(app), args.first - 1,
                                                          10**12, args.last):  # fmt: skip
        link = links.get(pos)
        state_b64 = base64.b64encode(bytes(state)).decode()
        rows.append({"position": pos, "originator_id": str(oid), "originator_version": version, "topic": topic,
                     "state_b64": state_b64, "link": link.hex() if link else None})  # fmt: skip
    if args.format == "csv":
        print_csv(rows)
    else:
        for row in rows:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
    return 0
