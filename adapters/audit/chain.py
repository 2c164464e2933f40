"""A hash chain over the global event order, with checkpoints signed by the district key.

link(0) = SHA-256(b"keng-audit-chain/1"); link(n) = SHA-256(link(n-1) + record_bytes(n)), where record_bytes is the
stored record exactly as the store holds it, framed so that no two records share bytes: position, originator id
(16 bytes), originator version, topic length, topic, then the stored state bytes (compressed/encrypted if the store
is). Links are kept in `audit_chain` beside the events; every `checkpoint_every` events and at the end of each seal a
checkpoint (position, count, link, time) is signed with Ed25519 into `audit_checkpoint`.

Hand-written: the library records events but offers no tamper evidence, and the chain is a few lines of hashlib.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.audit.keys import Signer
from adapters.readstore.sql import SqlDb, fetch_tuples, select_records

GENESIS = hashlib.sha256(b"keng-audit-chain/1").digest()
CHAIN_TABLE = "audit_chain"
CHECKPOINT_TABLE = "audit_checkpoint"
PAGE = 10_000
RECORD_HEAD = struct.Struct(">QQQ")


def record_bytes(position: int, originator_id: bytes, version: int, topic: str, state: bytes) -> bytes:
    """The framed bytes of one stored record, as hashed into the chain."""
    t = topic.encode()
    return RECORD_HEAD.pack(position, version, len(t)) + originator_id + t + state


def id_bytes(db: SqlDb) -> Any:
    """How to turn the stored originator id column into its 16 raw bytes on this database."""
    if db.kind == "postgres":
        return lambda v: v.bytes
    return lambda v: bytes.fromhex(v) if isinstance(v, str) else bytes(v)


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


def chain_tail(db: SqlDb) -> tuple[int, bytes, int]:
    """(last sealed position, its link, number of sealed events); (0, GENESIS, 0) when nothing is sealed."""
    with db.transaction(commit=False) as c:
        db.execute(c, f"SELECT position, link FROM {db.table(CHAIN_TABLE)} ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        if row is None:
            return 0, GENESIS, 0
        db.execute(c, f"SELECT COUNT(*) AS n FROM {db.table(CHAIN_TABLE)}")
        n = c.fetchone()
    position, link = (row["position"], row["link"]) if db.kind == "postgres" else (row[0], row[1])
    count = n["n"] if db.kind == "postgres" else n[0]
    return int(position), bytes(link), int(count)


def sign_checkpoint(signer: Signer, position: int, count: int, link: bytes, now: datetime | None = None) -> Checkpoint:
    signed_at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    signature = signer.sign(checkpoint_message(position, count, link, signed_at))
    return Checkpoint(position, count, link, signed_at, signer.key_id, signer.public, signature)


def _insert_checkpoints(db: SqlDb, c: Any, checkpoints: list[Checkpoint]) -> None:
    db.executemany(
        c,
        f"INSERT INTO {db.table(CHECKPOINT_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(k.position, k.count, k.link, k.signed_at, k.key_id, k.public_key, k.signature) for k in checkpoints],
    )


def seal(db: SqlDb, events_table: str, signer: Signer, *, checkpoint_every: int = 10_000) -> int:
    """Extend the chain over every event recorded since the last seal; sign checkpoints. Returns events sealed."""
    ensure_tables(db)
    position, link, count = chain_tail(db)
    to_bytes, sealed = id_bytes(db), 0
    while True:
        records = select_records(db, events_table, position, PAGE)
        if not records:
            break
        rows, checkpoints = [], []
        for pos, oid, version, topic, state in records:
            link = hashlib.sha256(link + record_bytes(pos, to_bytes(oid), version, topic, bytes(state))).digest()
            rows.append((pos, link))
            count += 1
            if count % checkpoint_every == 0:
                checkpoints.append(sign_checkpoint(signer, pos, count, link))
        position = records[-1][0]
        sealed += len(records)
        if not checkpoints or checkpoints[-1].position != position:
            checkpoints.append(sign_checkpoint(signer, position, count, link))  # every sealed link is covered
        with db.transaction(commit=True) as c:
            db.executemany(c, f"INSERT INTO {db.table(CHAIN_TABLE)} VALUES (?, ?)", rows)
            _insert_checkpoints(db, c, checkpoints)
    return sealed


def iter_chain(db: SqlDb, upto: int | None = None, page: int = PAGE) -> Iterator[tuple[int, bytes]]:
    """Stored (position, link) rows in order."""
    after = 0
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
    with db.transaction(commit=False) as c:
        db.execute(
            c,
            "SELECT position, count, link, signed_at, key_id, public_key, signature "
            f"FROM {db.table(CHECKPOINT_TABLE)} ORDER BY position",
        )
        rows = c.fetchall()
    keys = ("position", "count", "link", "signed_at", "key_id", "public_key", "signature")
    out = []
    for r in rows:
        v = [r[k] for k in keys] if db.kind == "postgres" else list(r)
        out.append(Checkpoint(int(v[0]), int(v[1]), bytes(v[2]), v[3], v[4], bytes(v[5]), bytes(v[6])))
    return out
