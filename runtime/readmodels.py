"""Composition for read models and the audit trail: where the live read store lives, catching it up, auditor checks.

Live read store: with an SQLite event store, its own SQLite file beside it (`<events file>.readmodels.db`, so that
projection writes never wait on the event writer); with PostgreSQL, `rm_*` tables in the event store's schema.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.readstore.source import FactSource
from adapters.readstore.sql import SqlDb
from adapters.readstore.store import ReadStore
from adapters.store.app import Keng
from domain.errors import NotAuthorised
from domain.values import Role
from projections.runner import run_facts

# Events per read-model transaction when catching up or rebuilding: fewer, larger commits write each busy document
# once per batch instead of once per few thousand events.
REBUILD_BATCH = 20_000


def live_store(app: Keng) -> ReadStore:
    db = SqlDb.of_app(app)
    if db.kind == "postgres":
        return ReadStore(db)
    events = Path(db.datastore.pool.db_name)
    return ReadStore.sqlite_file(events.with_name(events.name + ".readmodels.db"))


def events_table(app: Keng) -> str:
    """Name of the application's event table (the recorder knows it; the base class does not declare it)."""
    return str(app.recorder.events_table_name)  # type: ignore[attr-defined]


def caught_up(app: Keng) -> ReadStore:
    """The live read store, brought up to the newest event."""
    store = live_store(app)
    try:
        run_facts(FactSource.of_app(app).facts(store.position()), store, batch_size=REBUILD_BATCH)
    except BaseException:
        store.close()
        raise
    return store


def require_auditor(app: Keng, handle: str) -> None:
    """Reports and audit are for the auditor role and up (admin)."""
    member = app.staff(handle)
    if not (member.has_role(Role.AUDITOR) or member.has_role(Role.ADMIN)):
        raise NotAuthorised(f"rule {NotAuthorised.rule}: {handle} cannot read reports: the auditor role is required")


def print_csv(rows: Sequence[dict[str, Any]]) -> None:
    """Rows of flat dicts as CSV on stdout (lists joined with ';')."""
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
