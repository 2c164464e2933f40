"""A thin SQL helper over the library's own datastores (SQLite or PostgreSQL), shared by the read store and the audit
chain: placeholder style, schema-qualified table names, blob type and the raw record columns of the event table.

Hand-written because the library exposes its datastores but no dialect layer; this keeps one copy of the few SQL
differences instead of two copies of every statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application


@dataclass(frozen=True)
class SqlDb:
    """One database reached through an eventsourcing datastore."""

    kind: str  # "sqlite" or "postgres"
    datastore: Any
    schema: str = ""

    @classmethod
    def of_app(cls, app: Application[Any]) -> SqlDb:
        """The database an application's event store lives in."""
        datastore = app.factory.datastore  # type: ignore[attr-defined]
        if type(datastore).__name__.startswith("Postgres"):
            return cls("postgres", datastore, datastore.schema)
        return cls("sqlite", datastore)

    @property
    def blob(self) -> str:
        return "BYTEA" if self.kind == "postgres" else "BLOB"

    def table(self, name: str) -> str:
        """A table name, qualified with the schema on PostgreSQL."""
        return f'"{self.schema}".{name}' if self.kind == "postgres" else name

    def sql(self, statement: str) -> str:
        """Statements are written with `?` placeholders; PostgreSQL wants `%s`."""
        return statement.replace("?", "%s") if self.kind == "postgres" else statement

    @contextmanager
    def transaction(self, commit: bool) -> Iterator[Any]:
        """A cursor inside one transaction (committed on success when `commit`)."""
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def execute(self, cursor: Any, statement: str, params: Any = (), *, prepare: bool | None = None) -> None:
        if prepare is None:
            cursor.execute(self.sql(statement), params)
        else:  # psycopg only: False keeps a statement out of the server-side prepared ones
            cursor.execute(self.sql(statement), params, prepare=prepare)

    def executemany(self, cursor: Any, statement: str, rows: list[Any]) -> None:
        if rows:
            cursor.executemany(self.sql(statement), rows)


def event_columns(db: SqlDb, events_table: str) -> tuple[str, str]:
    """(position column, qualified table) of the application's event table."""
    position = "notification_id" if db.kind == "postgres" else "rowid"
    return position, db.table(events_table)


def fetch_tuples(db: SqlDb, statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """All rows of one query as plain tuples (no dict or Row objects: the reading hot path)."""
    with db.transaction(commit=False) as c:
        if db.kind == "postgres":
            from psycopg.rows import tuple_row

            c.row_factory = tuple_row
            c.execute(db.sql(statement), params)
            return c.fetchall()  # type: ignore[no-any-return]
        raw = c.sqlite_cursor
        raw.row_factory = None
        raw.execute(statement, params)
        return raw.fetchall()  # type: ignore[no-any-return]


def select_records(db: SqlDb, events_table: str, after: int, limit: int, upto: int | None = None) -> list[Any]:
    """Raw stored records after a position, in global order: (position, originator_id, version, topic, state)."""
    position, table = event_columns(db, events_table)
    stop = "" if upto is None else f" AND {position} <= {int(upto)}"
    statement = (
        f"SELECT {position} AS position, originator_id, originator_version, topic, state FROM {table} "
        f"WHERE {position} > ?{stop} ORDER BY {position} LIMIT ?"
    )
    return fetch_tuples(db, statement, (after, limit))
