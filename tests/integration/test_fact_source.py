"""The raw fact source used by rebuilds reads exactly what the library's mapper decodes, on SQLite and PostgreSQL,
and a rebuild through it equals one through domain events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from keng.adapters.readstore.source import FactSource
from keng.adapters.readstore.sql import SqlDb, event_columns, fetch_tuples
from keng.adapters.readstore.store import ReadStore
from keng.adapters.store.app import Keng
from keng.projections.facts import facts_of
from keng.projections.runner import run, run_facts
from tests.synthetic import History


def test_raw_facts_equal_the_facts_of_decoded_domain_events(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    History(app, seed=8, wards=3, groups=3).run(2500)
    source = FactSource.of_app(app)
    fast = list(source.facts(page=333))
    assert len(fast) == app.max_position()
    assert fast == list(facts_of(app.read_events(0)))
    assert list(source.facts(after=1000, upto=1500)) == fast[1000:1500]


def test_raw_facts_of_old_event_versions_are_upcast_as_the_mapper_does(make_app: Callable[..., Keng]) -> None:
    app = make_app()
    History(app, seed=4, wards=2, groups=2).run(1500)
    db = SqlDb.of_app(app)
    pos, table = event_columns(db, app.recorder.events_table_name)
    rendered = fetch_tuples(db, f"SELECT {pos}, state FROM {table} WHERE topic LIKE ? ORDER BY {pos} LIMIT 3",
                            ("%Broadcast.Rendered",))  # fmt: skip
    assert rendered
    with db.transaction(commit=True) as c:
        for position, state in rendered:  # as written before Rendered v2: no content hash, no class_version
            old = {k: v for k, v in orjson.loads(bytes(state)).items() if k not in ("class_version", "content_sha256")}
            db.execute(c, f"UPDATE {table} SET state = ? WHERE {pos} = ?", (orjson.dumps(old), position))
    facts = {f.position: f for f in FactSource.of_app(app).facts()}
    assert [facts[p].data["content_sha256"] for p, _ in rendered] == [None] * len(rendered)
    assert list(facts.values()) == list(facts_of(app.read_events(0)))


def test_a_rebuild_from_raw_facts_equals_one_from_domain_events(make_app: Callable[..., Keng], tmp_path: Path) -> None:
    app = make_app()
    History(app, seed=9, wards=3, groups=4).run(3000)
    dumps = []
    for name, folded in (("events", run), ("facts", None)):
        store = ReadStore.sqlite_file(tmp_path / f"{name}.db")
        if folded is None:
            run_facts(FactSource.of_app(app).facts(), store, batch_size=701)
        else:
            folded(app.read_events(0), store, batch_size=499)
        dumps.append(store.dump())
        store.close()
    assert dumps[0] == dumps[1]
