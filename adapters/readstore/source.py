"""The fast event source for read models: raw stored records read in large pages with a plain cursor and decoded
straight into `Fact`s (orjson, flat values), without the library's notification objects, mapper or domain event
classes. A rebuild spends its time folding, not decoding.

Equivalent to `facts_of(app.read_events(...))` (tests compare both on SQLite and PostgreSQL): topics are resolved
with the library's `resolve_topic` (renamed topics work), upcasters run on the flat state, and a compressed or
encrypted store goes through the application's own compressor and cipher first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from eventsourcing.utils import resolve_topic

from keng.adapters.readstore.sql import SqlDb, event_columns, fetch_tuples
from keng.adapters.store.transcoder import OrjsonTranscoder
from keng.projections.facts import Fact, flat

PAGE = 20_000


class FactSource:
    """Reads an application's event table as Facts, in global order."""

    def __init__(self, db: SqlDb, events_table: str, mapper: Any) -> None:
        self.db, self.events_table = db, events_table
        transcoder = mapper.transcoder
        if not isinstance(transcoder, OrjsonTranscoder):
            raise TypeError("FactSource reads stores written with keng's OrjsonTranscoder")
        self.decode: Callable[[bytes], dict[str, Any]] = transcoder.decode_flat
        self.cipher, self.compressor = mapper.cipher, mapper.compressor
        self.topics: dict[str, tuple[str, str, Any, int]] = {}

    @classmethod
    def of_app(cls, app: Any) -> FactSource:
        """The source for a `Keng` application's own store."""
        return cls(SqlDb.of_app(app), app.recorder.events_table_name, app.mapper)

    def _statement(self, upto: int | None) -> str:
        position, table = event_columns(self.db, self.events_table)
        oid = "originator_id::text" if self.db.kind == "postgres" else "originator_id"
        stop = "" if upto is None else f" AND {position} <= {int(upto)}"
        where = f"WHERE {position} > ?{stop} ORDER BY {position} LIMIT ?"
        return f"SELECT {position}, {oid}, topic, state FROM {table} {where}"

    def facts(self, after: int = 0, upto: int | None = None, page: int = PAGE) -> Iterator[Fact]:
        """Facts after position `after` (and up to `upto`), in global order."""
        statement = self._statement(upto)
        while True:
            rows = fetch_tuples(self.db, statement, (after, page))
            if not rows:
                return
            yield from self._decode_page(rows)
            after = rows[-1][0]

    def _decode_page(self, rows: list[tuple[Any, ...]]) -> Iterator[Fact]:
        decode, topics, dashes = self.decode, self.topics, self.db.kind != "postgres"
        for position, oid, topic, state in rows:
            try:
                name, aggregate, cls, version = topics[topic]
            except KeyError:
                name, aggregate, cls, version = topics[topic] = self._resolve(topic)
            if self.cipher is not None or self.compressor is not None:
                state = self._plain(state)
            data = decode(state if type(state) is bytes else bytes(state))
            at = data.pop("timestamp")
            if version > 1:
                self._upcast(cls, version, data)
            if dashes and len(oid) == 32:
                oid = f"{oid[:8]}-{oid[8:12]}-{oid[12:16]}-{oid[16:20]}-{oid[20:]}"
            yield Fact(position, name, oid, at, data, aggregate)

    def _resolve(self, topic: str) -> tuple[str, str, Any, int]:
        cls = resolve_topic(topic)
        name = cls.__qualname__
        return name, name.partition(".")[0], cls, int(getattr(cls, "class_version", 1))

    def _plain(self, state: bytes) -> bytes:
        if self.cipher is not None:
            state = self.cipher.decrypt(bytes(state))
        if self.compressor is not None:
            state = self.compressor.decompress(bytes(state))
        return bytes(state)

    @staticmethod
    def _upcast(cls: Any, version: int, data: dict[str, Any]) -> None:
        # As the library's mapper does; upcasters may set Python values, hence the flattening afterwards.
        start = data.pop("class_version", 1)
        if start >= version:
            return
        for v in range(start, version):
            getattr(cls, f"upcast_v{v}_v{v + 1}")(data)
        for key, value in data.items():
            data[key] = flat(value)
