"""SQLite persistence with `PRAGMA synchronous=FULL` on every connection, checked, not assumed.

The library opens SQLite in WAL mode but leaves `synchronous` at the build default. In WAL mode NORMAL can lose the
last transactions on power loss, and a broadcast acknowledged to a caller must survive that, so every pooled connection
sets FULL and reads it back; a connection where it did not take raises instead of silently running less durable.
Used through PERSISTENCE_MODULE=adapters.store.sqlite:KengSQLiteFactory.
"""

from __future__ import annotations

from eventsourcing.persistence import PersistenceError
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory

SYNCHRONOUS_FULL = 2


class DurabilityError(PersistenceError):
    """The database refused the durability settings keng requires."""


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    """Connection pool whose connections run with synchronous=FULL."""

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        if not self.is_sqlite_memory_mode:
            cursor = conn.cursor()
            cursor.execute("PRAGMA synchronous=FULL;")
            cursor.execute("PRAGMA synchronous;")
            level = cursor.fetchone()[0]
            if level != SYNCHRONOUS_FULL:
                conn.close()
                raise DurabilityError(f"SQLite {self.db_name}: PRAGMA synchronous is {level}, expected 2 (FULL)")
        return conn


class KengSQLiteFactory(SQLiteFactory):
    """The library's SQLite factory, with the durable connection pool swapped in before any connection is made."""

    def __init__(self, env: object) -> None:
        super().__init__(env)  # type: ignore[arg-type]
        old = self.datastore.pool
        self.datastore.pool = DurableSQLiteConnectionPool(
            db_name=old.db_name,
            lock_timeout=old.lock_timeout,
        )
        old.close()

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
