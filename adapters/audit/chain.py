"""A hash chain over the global event order, extended in the transaction that records the events, with checkpoints
signed by the district key.

link(0) = SHA-256(b"keng-audit-chain/1"); link(n) = SHA-256(link(n-1) + record_bytes(n)), where record_bytes is the
stored record exactly as the store holds it, framed so that no two records share bytes: position, originator id
(16 bytes), originator version, topic length, topic, then the stored state bytes (compressed/encrypted if the store
is). Links are kept in `audit_chain` beside the events. The store's recorders (adapters/store/sqlite.py, postgres.py)
call `extend` inside the very transaction that inserts the events, while the database's own write lock is held (SQLite
has one writer; on PostgreSQL the library locks the events table in EXCLUSIVE mode to keep insert order = commit
order), so two processes writing the same store cannot fork the chain, and the primary key on the position refuses a
second link for one event. `seal` links any events recorded without a link (a store older than this code, or written
with chaining off) under the same lock, then signs checkpoints (position, count, link, time) with Ed25519 into
`audit_checkpoint`: one every `checkpoint_every` events and one at the head.

Hand-written: the library records events but offers no tamper evidence, and the chain is a few lines of hashlib.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog

from keng.adapters.audit.keys import Signer
from keng.adapters.readstore.sql import SqlDb, event_columns, fetch_tuples

GENESIS = hashlib.sha256(b"keng-audit-chain/1").digest()
CHAIN_TABLE = "audit_chain"
CHECKPOINT_TABLE = "audit_checkpoint"
PAGE = 10_000
RECORD_HEAD = struct.Struct(">QQQ")
Record = tuple[int, bytes, int, str, bytes]  # position, raw originator id, version, topic, stored state

log = structlog.get_logger(__name__)


def record_bytes(position: int, originator_id: bytes, version: int, topic: str, state: bytes) -> bytes:
    """The framed bytes of one stored record, as hashed into the chain."""
    t = topic.encode()
    return RECORD_HEAD.pack(position, version, len(t)) + originator_id + t + state


def id_bytes(db: SqlDb) -> Any:
    """How to turn the stored originator id column into its 16 raw bytes on this database."""
    if db.kind == "postgres":
        return lambda v: v.bytes
    return lambda v: bytes.fromhex(v) if isinstance(v, str) else bytes(v)


def raw_id(originator_id: UUID | str) -> bytes:
    """The 16 raw bytes of an originator id as the recorders receive it (the same bytes `id_bytes` reads back)."""
    return originator_id.bytes if isinstance(originator_id, UUID) else bytes.fromhex(originator_id)


def inserted(ids: Sequence[int], stored_events: Sequence[Any]) -> list[Record]:
    """The records a recorder just inserted (the library's StoredEvents with the positions the database gave them)."""
    return [
        (i, raw_id(s.originator_id), s.originator_version, s.topic, s.state)
        for i, s in zip(ids, stored_events, strict=True)
    ]


def checkpoint_message(position: int, count: int, link: bytes, signed_at: str) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    return f"keng-audit-checkpoint/1|{position}|{count}|{link.hex()}|{signed_at}".encode()


@dataclass(frozen=True)
class Checkpoint:
    position: int
    count: int
    link: bytes
    signed_at: str
    key_id: str
    public_key: bytes
    signature: bytes


def ensure_tables(db: SqlDb) -> None:
    """Create the chain and checkpoint tables if missing."""
    with db.transaction(commit=True) as c:
        db.execute(
            c,
            f"CREATE TABLE IF NOT EXISTS {db.table(CHAIN_TABLE)} "
            f"(position BIGINT PRIMARY KEY, link {db.blob} NOT NULL)",
        )
        db.execute(
            c,
            f"CREATE TABLE IF NOT EXISTS {db.table(CHECKPOINT_TABLE)} (position BIGINT PRIMARY KEY, "
            f"count BIGINT NOT NULL, link {db.blob} NOT NULL, signed_at TEXT NOT NULL, key_id TEXT NOT NULL, "
            f"public_key {db.blob} NOT NULL, signature {db.blob} NOT NULL)",
        )


# -- extending the chain (inside a write transaction, the store's write lock held) -----------------------------------


def ask_head(db: SqlDb, c: Any) -> None:
    """Send the query for the newest link on a cursor of the writing transaction (a pipeline may carry it). Never a
    prepared statement: when the insert before it in the pipeline fails (a duplicate), psycopg would count it as
    prepared although the server never saw it, and the connection's next use fails ("prepared statement does not
    exist")."""
    db.execute(
        c,
        f"SELECT position, link FROM {db.table(CHAIN_TABLE)} ORDER BY position DESC LIMIT 1",
        prepare=False if db.kind == "postgres" else None,
    )


def read_head(c: Any) -> tuple[int, bytes]:
    """(position, link) of the newest link from `ask_head`'s cursor; (0, GENESIS) when the chain is empty."""
    row = c.fetchone()
    return (0, GENESIS) if row is None else (int(row["position"]), bytes(row["link"]))


def _head(db: SqlDb, c: Any) -> tuple[int, bytes]:
    ask_head(db, c)
    return read_head(c)


def _unlinked(db: SqlDb, c: Any, events_table: str, after: int, before: int | None) -> list[Record]:
    """Up to PAGE stored records after a position (and before another), read on the writing cursor."""
    position, table = event_columns(db, events_table)
    stop = "" if before is None else f" AND {position} < {int(before)}"
    db.execute(
        c,
        f"SELECT {position} AS position, originator_id, originator_version, topic, state FROM {table} "
        f"WHERE {position} > ?{stop} ORDER BY {position} LIMIT ?",
        (after, PAGE),
    )
    to_bytes = id_bytes(db)
    return [
        (int(r["position"]), to_bytes(r["originator_id"]), int(r["originator_version"]), r["topic"], bytes(r["state"]))
        for r in c.fetchall()
    ]


def _link(db: SqlDb, c: Any, link: bytes, records: Sequence[Record]) -> bytes:
    rows, sha = [], hashlib.sha256
    for pos, oid, version, topic, state in records:
        link = sha(link + record_bytes(pos, oid, version, topic, state)).digest()
        rows.append((pos, link))
    if db.kind == "postgres":
        # One statement for the batch, its links as one bytea cut in SQL: a list of bytes adapts 3x slower, and
        # executemany sends one statement per row.
        statement = (
            f"INSERT INTO {db.table(CHAIN_TABLE)} (position, link) SELECT p, substring(?::bytea FROM i::int * 32 - 31 "
            "FOR 32) FROM unnest(?::bigint[]) WITH ORDINALITY AS t(p, i)"
        )
        db.execute(c, statement, (b"".join(lk for _, lk in rows), [p for p, _ in rows]))
    else:
        db.executemany(c, f"INSERT INTO {db.table(CHAIN_TABLE)} (position, link) VALUES (?, ?)", rows)
    return link


def extend(
    db: SqlDb, c: Any, events_table: str, records: Sequence[Record], head: tuple[int, bytes] | None = None
) -> int:
    """Link records just inserted on cursor `c` (in position order), first linking any earlier events that have no
    link yet. Runs inside the inserting transaction, under the store's write lock; `head` is the newest link when
    the caller already read it in that transaction. Returns the links added."""
    if not records:
        return 0
    position, link = head or _head(db, c)
    first = records[0][0]
    if first <= position:
        # Positions at or below the chain's head were reused: newer events were deleted from the store. Recording
        # must go on (an alert is never refused for the audit trail's sake); `keng audit verify` reports the gap.
        log.error("audit.chain_ahead_of_store", chain_head=position, first_new=first)
        return 0
    added = 0
    while first > position + 1 and (gap := _unlinked(db, c, events_table, position, first)):
        link, position = _link(db, c, link, gap), gap[-1][0]
        added += len(gap)
    _link(db, c, link, records)
    return added + len(records)


def lock_writes(db: SqlDb, c: Any, events_table: str) -> None:
    """Take the store's write lock at the start of a transaction, as inserting events does."""
    if db.kind == "postgres":
        db.execute(c, f"LOCK TABLE {event_columns(db, events_table)[1]} IN EXCLUSIVE MODE")
    else:  # a write statement takes SQLite's one write lock even when it matches no row
        db.execute(c, f"DELETE FROM {db.table(CHAIN_TABLE)} WHERE position < 0")


def head_position(db: SqlDb) -> int:
    """Position of the newest link (0 when the chain is empty)."""
    return int(fetch_tuples(db, f"SELECT MAX(position) FROM {db.table(CHAIN_TABLE)}")[0][0] or 0)


def _behind(db: SqlDb, events_table: str) -> bool:
    position, table = event_columns(db, events_table)
    linked = head_position(db)
    return bool((fetch_tuples(db, f"SELECT MAX({position}) FROM {table}")[0][0] or 0) > linked)


def catch_up(db: SqlDb, events_table: str) -> int:
    """Link every event recorded without a link, a page per transaction under the write lock. Returns links added."""
    ensure_tables(db)
    added = 0
    while _behind(db, events_table):
        with db.transaction(commit=True) as c:
            lock_writes(db, c, events_table)
            position, link = _head(db, c)
            records = _unlinked(db, c, events_table, position, None)
            if not records:
                break
            _link(db, c, link, records)
        added += len(records)
    return added


# -- checkpoints ------------------------------------------------------------------------------------------------------


def sign_checkpoint(signer: Signer, position: int, count: int, link: bytes, now: datetime | None = None) -> Checkpoint:
    signed_at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    signature = signer.sign(checkpoint_message(position, count, link, signed_at))
    return Checkpoint(position, count, link, signed_at, signer.key_id, signer.public, signature)


def newest_checkpoint(db: SqlDb) -> tuple[int, int]:
    """(position, count) of the newest signed checkpoint; (0, 0) when there is none."""
    rows = fetch_tuples(db, f"SELECT position, count FROM {db.table(CHECKPOINT_TABLE)} ORDER BY position DESC LIMIT 1")
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def sign_pending(db: SqlDb, signer: Signer, *, checkpoint_every: int = 10_000) -> int:
    """Sign checkpoints over the links made since the newest checkpoint: at every `checkpoint_every`-th event and at
    the head. Two processes signing at once sign the same positions; the second's rows are dropped. Returns the
    number of events the new checkpoints cover."""
    position, count = newest_checkpoint(db)
    checkpoints, covered, last = [], 0, None
    for pos, link in iter_chain(db, after=position):
        count, covered, last = count + 1, covered + 1, (pos, link)
        if count % checkpoint_every == 0:
            checkpoints.append(sign_checkpoint(signer, pos, count, link))
    if last is not None and (not checkpoints or checkpoints[-1].position != last[0]):
        checkpoints.append(sign_checkpoint(signer, last[0], count, last[1]))
    with db.transaction(commit=True) as c:
        db.executemany(
            c,
            f"INSERT INTO {db.table(CHECKPOINT_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING",
            [(k.position, k.count, k.link, k.signed_at, k.key_id, k.public_key, k.signature) for k in checkpoints],
        )
    return covered


def seal(db: SqlDb, events_table: str, signer: Signer, *, checkpoint_every: int = 10_000) -> int:
    """Link any unlinked events, then sign checkpoints up to the head. Returns the events newly covered."""
    catch_up(db, events_table)
    return sign_pending(db, signer, checkpoint_every=checkpoint_every)


def iter_chain(db: SqlDb, upto: int | None = None, page: int = PAGE, after: int = 0) -> Iterator[tuple[int, bytes]]:
    """Stored (position, link) rows in order, after a position and up to another."""
    stop = "" if upto is None else f" AND position <= {int(upto)}"
    statement = f"SELECT position, link FROM {db.table(CHAIN_TABLE)} WHERE position > ?{stop} ORDER BY position LIMIT ?"
    while True:
        rows = fetch_tuples(db, statement, (after, page))
        if not rows:
            return
        for position, link in rows:
            yield position, bytes(link)
        after = rows[-1][0]


def load_checkpoints(db: SqlDb) -> list[Checkpoint]:
    """Every stored checkpoint, oldest first."""
    rows = fetch_tuples(
        db,
        "SELECT position, count, link, signed_at, key_id, public_key, signature "
        f"FROM {db.table(CHECKPOINT_TABLE)} ORDER BY position",
    )
    return [Checkpoint(int(p), int(n), bytes(lk), s, k, bytes(pk), bytes(sig)) for p, n, lk, s, k, pk, sig in rows]
