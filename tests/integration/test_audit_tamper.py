"""Tamper matrix over 10,000 events on SQLite and PostgreSQL: each manipulation is detected and the first bad
position named; truncating the tail and re-chaining with a new key are caught only with an exported checkpoint.
The events are chained as they are recorded; `seal` only signs checkpoints (one every 1,000 here)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from keng.adapters.audit.chain import CHAIN_TABLE, CHECKPOINT_TABLE, id_bytes, iter_chain, record_bytes, seal
from keng.adapters.audit.keys import Signer
from keng.adapters.audit.verify import Exported, export_checkpoint, verify
from keng.adapters.readstore.sql import SqlDb, event_columns, select_records
from keng.adapters.store.app import Keng
from keng.services import access
from tests.synthetic import History

EVENTS = 10_000
P, Q, T = 4_321, 7_654, 4_000  # T: a checkpoint position (one every 1,000)


@pytest.fixture
def sealed(make_app: Callable[..., Keng]) -> tuple[Keng, SqlDb, Signer, Exported]:
    app = make_app()
    History(app, seed=6).run(EVENTS)
    db, signer = SqlDb.of_app(app), Signer.generate()
    assert seal(db, app.recorder.events_table_name, signer, checkpoint_every=1000) == app.max_position()
    return app, db, signer, export_checkpoint(db)


def _sql(app: Keng, db: SqlDb, statement: str, params: Any = ()) -> list[Any]:
    pos, table = event_columns(db, app.recorder.events_table_name)
    with db.transaction(commit=True) as c:
        db.execute(c, statement.format(pos=pos, events=table, chain=db.table(CHAIN_TABLE),
                                       checkpoints=db.table(CHECKPOINT_TABLE)), params)  # fmt: skip
        return list(c.fetchall()) if statement.startswith("SELECT") else []


def _state(app: Keng, db: SqlDb, p: int) -> bytes:
    row = _sql(app, db, "SELECT state FROM {events} WHERE {pos} = ?", (p,))[0]
    return bytes(row["state"] if db.kind == "postgres" else row[0])


def change_byte(app: Keng, db: SqlDb) -> None:
    state = bytearray(_state(app, db, P))
    state[len(state) // 2] ^= 0x01
    _sql(app, db, "UPDATE {events} SET state = ? WHERE {pos} = ?", (bytes(state), P))


def delete_one(app: Keng, db: SqlDb) -> None:
    _sql(app, db, "DELETE FROM {events} WHERE {pos} = ?", (P,))


def swap_two(app: Keng, db: SqlDb) -> None:
    for a, b in ((P, -1), (Q, P), (-1, Q)):
        _sql(app, db, "UPDATE {events} SET {pos} = ? WHERE {pos} = ?", (b, a))


def insert_one(app: Keng, db: SqlDb) -> None:
    _sql(app, db, "UPDATE {events} SET {pos} = -{pos} WHERE {pos} >= ?", (P,))
    _sql(app, db, "UPDATE {events} SET {pos} = 1 - {pos} WHERE {pos} < 0")
    forged = uuid.uuid4()
    oid: Any = forged if db.kind == "postgres" else forged.hex
    row = _sql(app, db, "SELECT topic, state FROM {events} WHERE {pos} = ?", (P + 1,))[0]
    topic, state = (row["topic"], row["state"]) if db.kind == "postgres" else (row[0], row[1])
    _sql(app, db, "INSERT INTO {events} ({pos}, originator_id, originator_version, topic, state) VALUES (?,?,?,?,?)",
         (P, oid, 1, topic, state))  # fmt: skip


def truncate_tail(app: Keng, db: SqlDb) -> None:
    """A careful attacker drops the newest events back to a signed checkpoint, with their links and checkpoints."""
    for table in ("{events} WHERE {pos}", "{chain} WHERE position", "{checkpoints} WHERE position"):
        _sql(app, db, f"DELETE FROM {table} > ?", (T,))


def rechain_new_key(app: Keng, db: SqlDb) -> Signer:
    """A careful attacker changes one event, then rebuilds the whole chain and signs it with a key of their own."""
    change_byte(app, db)
    _sql(app, db, "DELETE FROM {chain}")
    _sql(app, db, "DELETE FROM {checkpoints}")
    forger = Signer.generate()
    seal(db, app.recorder.events_table_name, forger, checkpoint_every=1000)
    return forger


def rewrite_chain_same_key_unknown(app: Keng, db: SqlDb) -> None:
    """An attacker without the key changes one event and recomputes the links, but cannot re-sign checkpoints."""
    change_byte(app, db)
    link = bytes(next(lk for pos, lk in iter_chain(db) if pos == P - 1))
    to_bytes, rows = id_bytes(db), []
    for pos, oid, version, topic, state in select_records(db, app.recorder.events_table_name, P - 1, EVENTS * 2):
        link = hashlib.sha256(link + record_bytes(pos, to_bytes(oid), version, topic, bytes(state))).digest()
        rows.append((pos, link))
    _sql(app, db, "DELETE FROM {chain} WHERE position >= ?", (P,))
    with db.transaction(commit=True) as c:
        db.executemany(c, f"INSERT INTO {db.table(CHAIN_TABLE)} VALUES (?, ?)", rows)


def truncate_tail_anywhere(app: Keng, db: SqlDb) -> None:
    """Cutting the tail between checkpoints leaves a chained end after the newest checkpoint: what events recorded in
    the last interval look like, so only an export tells the difference."""
    for table in ("{events} WHERE {pos}", "{chain} WHERE position", "{checkpoints} WHERE position"):
        _sql(app, db, f"DELETE FROM {table} > ?", (P,))


NOT_DETECTED = None


@pytest.mark.parametrize(
    ("tamper", "first_bad", "alone_first_bad"),
    [
        (change_byte, P, P),
        (delete_one, P, P),
        (swap_two, P, P),
        (insert_one, P, P),
        (truncate_tail, T + 1, NOT_DETECTED),
        (truncate_tail_anywhere, P + 1, NOT_DETECTED),
        (rechain_new_key, P, NOT_DETECTED),
        (rewrite_chain_same_key_unknown, P, 5000),  # without an export: the checkpoint interval's end
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_tampering_is_detected_at_the_first_bad_position(
    sealed: tuple[Keng, SqlDb, Signer, Exported],
    tamper: Callable[..., Any],
    first_bad: int,
    alone_first_bad: int | None,
) -> None:
    app, db, signer, exported = sealed
    table = app.recorder.events_table_name
    assert verify(db, table, signer, exported).ok
    forged_key = tamper(app, db)
    key = forged_key if isinstance(forged_key, Signer) else signer  # a re-chainer also replaces the key file
    alone = verify(db, table, key)
    with_export = verify(db, table, key, exported)
    assert not with_export.ok
    assert with_export.first_bad_position == first_bad
    assert alone.ok is (alone_first_bad is None), "only an exported checkpoint catches these"
    assert alone.first_bad_position == alone_first_bad


def test_events_recorded_after_the_last_seal_are_reported_unsealed_not_bad(
    sealed: tuple[Keng, SqlDb, Signer, Exported],
) -> None:
    app, db, signer, exported = sealed
    for i in range(5):
        access.enrol_staff(app, handle=f"late{i}", name="Late", roles=["auditor"], by="admin")
    report = verify(db, app.recorder.events_table_name, signer, exported)
    assert report.ok and report.unsealed == 5 and report.chained == report.events == report.sealed + 5
