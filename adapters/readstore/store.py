"""The read store: read-model documents, the timeline and the library's tracking record, on SQLite or PostgreSQL.

Every batch is one transaction: documents are upserted, timeline rows appended, and the position recorded through the
library's tracking recorder (`_insert_tracking` on the same cursor), which refuses a position that does not advance.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from keng.adapters.private_files import touch_private
from keng.adapters.readstore.sql import SqlDb
from keng.projections.fold import Doc, Row

APPLICATION = "keng"
CACHE_KIB = 65_536


class ReadStore:
    """Read models of the `keng` application in one database (tables prefixed `prefix_`)."""

    def __init__(self, db: SqlDb, prefix: str = "rm") -> None:
        self.db, self.docs, self.rows = db, db.table(f"{prefix}_doc"), db.table(f"{prefix}_timeline")
        self.tracking: TrackingRecorder
        if db.kind == "postgres":
            # Imported here: psycopg is the `postgres` extra, absent from an SQLite-only install.
            from eventsourcing.postgres import PostgresTrackingRecorder

            self.tracking = PostgresTrackingRecorder(db.datastore, tracking_table_name=f"{prefix}_tracking")
            self.tracking_table = db.table(f"{prefix}_tracking")
        else:
            self.tracking = SQLiteTrackingRecorder(db.datastore)
            self.tracking_table = "tracking"
        self.tracking.create_table()
        self.index = f"{prefix}_timeline_subject"
        with db.transaction(commit=True) as c:
            db.execute(c, f"CREATE TABLE IF NOT EXISTS {self.docs} (kind TEXT, key TEXT, doc {db.blob} NOT NULL, "
                          "PRIMARY KEY (kind, key))")  # fmt: skip
            db.execute(c, f"CREATE TABLE IF NOT EXISTS {self.rows} (position BIGINT, at TEXT, subject_kind TEXT, "
                          "subject TEXT, event TEXT, actor TEXT, detail TEXT)")  # fmt: skip
        # An empty store is about to be rebuilt: its timeline index is built once, after the rows (at the first read
        # or on close), which is much cheaper than keeping it sorted through a million inserts. Any later open of a
        # store that has rows builds it if missing, so a crash mid-rebuild costs only time.
        self.index_pending = self.position() == 0
        if self.index_pending:
            with db.transaction(commit=True) as c:
                db.execute(c, f"DROP INDEX IF EXISTS {db.table(self.index)}")
        else:
            self.ensure_index()

    def ensure_index(self) -> None:
        """Build the timeline index if it is not there (reads call this)."""
        with self.db.transaction(commit=True) as c:
            self.db.execute(c, f"CREATE INDEX IF NOT EXISTS {self.index} ON {self.rows} "
                               "(subject_kind, subject, position)")  # fmt: skip
        self.index_pending = False

    @classmethod
    def sqlite_file(cls, path: Path) -> ReadStore:
        """A read store in its own SQLite file (live models beside an SQLite event store, or an as-of replay)."""
        touch_private(path)
        return cls(SqlDb("sqlite", SQLiteDatastore(db_name=str(path))))

    def close(self) -> None:
        if self.index_pending:
            self.ensure_index()
        if self.db.kind == "sqlite":
            self.db.datastore.close()

    def position(self) -> int:
        return self.tracking.max_tracking_id(APPLICATION) or 0

    def load(self, kind: str, key: str) -> Doc | None:
        with self.db.transaction(commit=False) as c:
            self.db.execute(c, f"SELECT doc FROM {self.docs} WHERE kind = ? AND key = ?", (kind, key))
            row = c.fetchone()
        if row is None:
            return None
        return orjson.loads(row["doc"] if self.db.kind == "postgres" else row[0])  # type: ignore[no-any-return]

    def load_kind(self, kind: str) -> dict[str, Doc]:
        with self.db.transaction(commit=False) as c:
            self.db.execute(c, f"SELECT key, doc FROM {self.docs} WHERE kind = ? ORDER BY key", (kind,))
            rows = c.fetchall()
        pairs = [(r["key"], r["doc"]) for r in rows] if self.db.kind == "postgres" else [(r[0], r[1]) for r in rows]
        return {k: orjson.loads(d) for k, d in pairs}

    def timeline(self, subject_kind: str, subject: str | None = None, until: str | None = None) -> list[Row]:
        where, params = "subject_kind = ?", [subject_kind]
        if subject is not None:
            where, params = where + " AND subject = ?", [*params, subject]
        if until is not None:
            where, params = where + " AND at <= ?", [*params, until]
        cols = "position, at, subject_kind, subject, event, actor, detail"
        if self.index_pending:
            self.ensure_index()
        with self.db.transaction(commit=False) as c:
            self.db.execute(c, f"SELECT {cols} FROM {self.rows} WHERE {where} ORDER BY position", params)
            rows = c.fetchall()
        keys = cols.split(", ")
        return [tuple(r[k] for k in keys) if self.db.kind == "postgres" else tuple(r) for r in rows]

    def commit(self, docs: dict[tuple[str, str], Doc], rows: list[Row], position: int) -> None:
        db = self.db
        with self._writing() as c:
            db.executemany(
                c,
                f"INSERT INTO {self.docs} VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc",
                [(k, key, orjson.dumps(doc)) for (k, key), doc in docs.items()],
            )
            db.executemany(c, f"INSERT INTO {self.rows} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self.tracking._insert_tracking(c, Tracking(APPLICATION, position))  # type: ignore[attr-defined]

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        """One write transaction. On SQLite with `synchronous = NORMAL` (WAL): a commit survives a crash of the
        process, and a power cut can only lose whole recent transactions, documents and tracking position together,
        so exactly-once holds and the lost batches are simply folded again. (The event store itself stays FULL.)"""
        if self.db.kind != "sqlite":
            with self.db.transaction(commit=True) as c:
                yield c
            return
        with self.db.datastore.get_connection(commit=True) as conn:
            with conn.cursor() as setup:  # outside the transaction: SQLite refuses to change it inside one
                setup.execute("PRAGMA synchronous = NORMAL")
                setup.execute(f"PRAGMA cache_size = -{CACHE_KIB}")  # large indexes; the default cache is 2 MB
            with conn.transaction(commit=True) as c:
                yield c

    def clear(self) -> None:
        """Drop every read model (for a rebuild by replay)."""
        with self.db.transaction(commit=True) as c:
            self.db.execute(c, f"DELETE FROM {self.docs}")
            self.db.execute(c, f"DELETE FROM {self.rows}")
            self.db.execute(c, f"DELETE FROM {self.tracking_table} WHERE application_name = ?", (APPLICATION,))
            self.db.execute(c, f"DROP INDEX IF EXISTS {self.db.table(self.index)}")
        self.index_pending = True

    def dump(self) -> dict[str, Any]:
        """Everything, for comparisons in tests."""
        if self.index_pending:
            self.ensure_index()
        with self.db.transaction(commit=False) as c:
            self.db.execute(c, f"SELECT kind, key, doc FROM {self.docs} ORDER BY kind, key")
            docs = c.fetchall()
        out = {
            f"{r[0]}/{r[1]}" if self.db.kind == "sqlite" else f"{r['kind']}/{r['key']}": orjson.loads(
                r[2] if self.db.kind == "sqlite" else r["doc"]
            )
            for r in docs
        }
        with self.db.transaction(commit=False) as c:
            self.db.execute(c, f"SELECT * FROM {self.rows} ORDER BY position, subject_kind, subject")
            timeline = [tuple(r.values()) if self.db.kind == "postgres" else tuple(r) for r in c.fetchall()]
        return {"docs": out, "timeline": timeline, "position": self.position()}
