"""SQLite persistence with `PRAGMA synchronous=FULL` on every connection, checked, not assumed.

The library opens SQLite in WAL mode but leaves `synchronous` at the build default. In WAL mode NORMAL can lose the
last transactions on power loss, and a broadcast acknowledged to a caller must survive that, so every pooled connection
sets FULL and reads it back; a connection where it did not take raises instead of silently running less durable.
The application recorder links every event into the audit hash chain in the transaction that inserts it
(adapters/audit/chain.py). Used through PERSISTENCE_MODULE=adapters.store.sqlite:KengSQLiteFactory.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import structlog
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)

from keng.adapters.audit.chain import ensure_tables, extend, inserted
from keng.adapters.readstore.sql import SqlDb

SYNCHRONOUS_FULL = 2
log = structlog.get_logger(__name__)


class DurabilityError(PersistenceError):
    """The database refused the durability settings keng requires."""


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    """Connection pool whose connections run with synchronous=FULL and leave WAL checkpoints to a background thread
    (a checkpoint inside a commit stalls every writer queued behind it for tens of milliseconds)."""

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        if not self.is_sqlite_memory_mode:
            cursor = conn.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint=0;")
            cursor.execute("PRAGMA synchronous=FULL;")
            cursor.execute("PRAGMA synchronous;")
            level = cursor.fetchone()[0]
            if level != SYNCHRONOUS_FULL:
                conn.close()
                raise DurabilityError(f"SQLite {self.db_name}: PRAGMA synchronous is {level}, expected 2 (FULL)")
        return conn


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` every `interval_s` on a connection of its own: PASSIVE never blocks
    writers or readers, and keeps the WAL from growing. A final checkpoint runs when it stops (and SQLite checkpoints
    when the last connection to a database closes, so short-lived CLI processes need nothing more)."""

    def __init__(self, db_name: str, interval_s: float = 0.5) -> None:
        self.db_name, self.interval_s = db_name, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keng-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.db_name, uri=True, check_same_thread=False, timeout=30)
        try:
            while not self._stop.wait(self.interval_s):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE);").fetchall()
        except sqlite3.Error as e:  # a busy or vanished database: the next round tries again; writers never wait
            log.warning("sqlite.checkpoint_failed", db=self.db_name, error=str(e))

    def stop(self) -> None:
        """Checkpoint once more and stop."""
        self._stop.set()
        self._thread.join(10)


class ChainedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """The library's application recorder, linking each transaction's events into the audit chain before it commits
    (SQLite's single writer lock is held from the first insert to the commit)."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
        self._db = SqlDb("sqlite", datastore)

    def create_table(self) -> None:
        super().create_table()
        ensure_tables(self._db)

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        ids = super()._insert_events(c, stored_events, **kwargs) or []
        extend(self._db, c, self.events_table_name, inserted(ids, stored_events))
        return ids


class KengSQLiteFactory(SQLiteFactory):
    """The library's SQLite factory, with the durable connection pool swapped in before any connection is made and
    the chaining application recorder (`APPLICATION_RECORDER_TOPIC` may name the library's plain one: no chain)."""

    application_recorder_class = ChainedSQLiteApplicationRecorder

    def __init__(self, env: object) -> None:
        super().__init__(env)  # type: ignore[arg-type]
        old = self.datastore.pool
        self.datastore.pool = DurableSQLiteConnectionPool(
            db_name=old.db_name,
            lock_timeout=old.lock_timeout,
        )
        old.close()
        self._checkpointer = Checkpointer(old.db_name) if not old.is_sqlite_memory_mode else None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        super().close()

    def synchronous_level(self) -> int:
        """Read `PRAGMA synchronous` through a pooled connection (2 = FULL)."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA synchronous;")
            return int(cursor.fetchone()[0])

    def journal_mode(self) -> str:
        """Read `PRAGMA journal_mode` through a pooled connection."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA journal_mode;")
            return str(cursor.fetchone()[0])
