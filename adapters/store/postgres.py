"""PostgreSQL persistence whose application recorder links every event into the audit hash chain in the transaction
that inserts it (adapters/audit/chain.py). The library locks the events table in EXCLUSIVE mode before inserting, so
insert order is commit order and chain extensions from several processes are serialised by the database.
Used through PERSISTENCE_MODULE=keng.adapters.store.postgres:KengPostgresFactory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg.errors
import structlog
from eventsourcing.persistence import IntegrityError, InternalError, ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from psycopg import Cursor
from psycopg.rows import DictRow, dict_row

from keng.adapters.audit.chain import ask_head, ensure_tables, extend, inserted, read_head
from keng.adapters.readstore.sql import SqlDb

CREATE_ATTEMPTS = 5
CATALOG_RACES = ("tuple concurrently updated", '"pg_', "already exists")  # "pg_...": a catalog index
log = structlog.get_logger(__name__)


class ChainedPostgresApplicationRecorder(PostgresApplicationRecorder):
    """The library's application recorder, linking the inserted events once their positions are known, inside the
    same transaction and under the table lock taken for the insert."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        if datastore.enable_db_functions:  # that path inserts through a database function and skips the hook below
            raise ValueError("the audit chain needs POSTGRES_ENABLE_DB_FUNCTIONS off")
        super().__init__(datastore, events_table_name=events_table_name)
        self._db = SqlDb("postgres", datastore, datastore.schema)
        self._head = threading.local()  # the head query's cursor, from the insert to the fetch of its positions

    def create_table(self) -> None:
        # Processes that start together (several `keng serve` workers, a CLI command beside the service) run the same
        # idempotent DDL at once, and PostgreSQL may refuse one of them over its own catalog rows ("tuple concurrently
        # updated", a duplicate in pg_type when two create one table, or "relation ... already exists" when two pass
        # the IF NOT EXISTS check together): the statements are IF NOT EXISTS, so trying again after a pause is right.
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                super().create_table()
                ensure_tables(self._db)
                return
            except (InternalError, IntegrityError, ProgrammingError, psycopg.errors.Error) as e:
                if not any(sign in str(e) for sign in CATALOG_RACES) or attempt == CREATE_ATTEMPTS:
                    raise
                log.info("store.create_table_retried", attempt=attempt, reason=str(e))
                time.sleep(0.05 * attempt)

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)  # the table lock, then the insert
        # The chain's head is asked for in the same pipeline, so the insert and the head take one round trip.
        head = curs.connection.cursor(row_factory=dict_row)
        ask_head(self._db, head)
        self._head.cursor = head

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs) or []
        with self._head.cursor as head:
            extend(self._db, curs, self.events_table_name, inserted(ids, stored_events), read_head(head))
        return ids


class KengPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory with the chaining application recorder (`APPLICATION_RECORDER_TOPIC` may name
    the library's plain one: no chain)."""

    application_recorder_class = ChainedPostgresApplicationRecorder
