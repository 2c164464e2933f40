"""services/inbound.py with real collaborators: an SQLite store in tmp_path, the group committer, the secret store and
the caches the HTTP app uses, called directly as a console would (no HTTP).

One idempotency shape for both sources: a new message is stored with its Inbound record; a replay is answered with
its original outcome and stores nothing; the same key with another body is refused; another integration's use of
the same key is a new message; concurrent duplicates all get the winner's answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import orjson
import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.signing import SignatureError, sign
from keng.adapters.store.access import find_inbound
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.adapters.store.group_commit import GroupCommitter
from keng.runtime.http.services import TimedCache
from keng.services.access import add_integration, integrations
from keng.services.inbound import (
    NEEDS_STORE,
    Accepted,
    IdempotencyConflict,
    Intake,
    Prepared,
    accept_cap_alert,
    accept_city_message,
    prepare_city_message,
    prepare_city_message_inline,
)
from keng.services.inventory import install_sample
from tests.unit.cap_builders import SENDER, alert, info

MESSAGE = {
    "title": "Cảnh báo lũ",
    "text": "Nước sông lên cao, đề nghị người dân chú ý.",
    "priority": "emergency",
    "targets": {"areas": ["00601"]},
}
BODY = orjson.dumps(MESSAGE)


@dataclass
class World:
    intake: Intake
    secrets: dict[str, str]

    @property
    def app(self) -> Keng:
        return self.intake.app


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    app = Keng(env=locate_store(f"sqlite:///{tmp_path / 'keng.db'}", tmp_path).env)
    install_sample(app, reorganise=False)  # the 2022 codes (before the reorganisation)
    store = SecretStore(tmp_path)
    secrets = {
        name: add_integration(app, store, name=name, kind=kind, jurisdiction=["00595", "00601"], by="admin", **extra)
        for name, kind, extra in [
            ("city-a", "city-source", {}),
            ("city-b", "city-source", {}),
            ("kttv", "cap", {"senders": [SENDER]}),
        ]
    }
    committer = GroupCommitter(app)
    intake = Intake(
        app=app,
        secrets=store,
        areas=TimedCache(app.area_registry, 30.0),
        integrations=TimedCache(lambda: integrations(app), 5.0),
        committer=committer,
        data_dir=tmp_path,
    )
    try:
        yield World(intake, secrets)
    finally:
        committer.close()
        app.close()


def signed(secret: str, message_id: str, body: bytes) -> dict[str, str]:
    ts = int(time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, message_id, ts, body),
    }


async def city(world: World, sender: str, message_id: str, body: bytes = BODY) -> Accepted:
    headers = signed(world.secrets[sender], message_id, body)
    return await accept_city_message(world.intake, headers=headers, body=body, now=time.time())


async def test_a_new_city_message_is_stored_with_its_broadcast_and_inbound_record(world: World) -> None:
    accepted = await city(world, "city-a", "m-1")
    assert not accepted.replayed and accepted.integration.name == "city-a"
    item = world.app.broadcast(UUID(accepted.outcome["broadcast_id"]))
    assert (item.state, item.source_ref, item.drafted_by) == ("submitted", "m-1", "integration:city-a")
    inbound = find_inbound(world.app, "city-source", "m-1", "city-a")
    assert inbound is not None and inbound.outcome == accepted.outcome == {
        "broadcast_id": str(item.id),
        "state": "submitted",
        "message_id": "m-1",
    }


async def test_a_replay_is_answered_with_its_original_outcome_and_stores_nothing(world: World) -> None:
    first = await city(world, "city-a", "m-1")
    position = world.app.max_position()
    again = await city(world, "city-a", "m-1")  # prepared on the loop; the commit's uniqueness check finds it
    assert again.replayed and again.outcome == first.outcome
    looked_up = prepare_city_message(
        world.intake, headers=signed(world.secrets["city-a"], "m-1", BODY), body=BODY, now=time.time()
    )  # the worker-thread path looks the key up before preparing anything
    assert isinstance(looked_up, Accepted) and looked_up.replayed and looked_up.outcome == first.outcome
    assert world.app.max_position() == position


async def test_the_same_key_with_another_body_is_refused_and_stores_nothing(world: World) -> None:
    await city(world, "city-a", "m-1")
    position = world.app.max_position()
    with pytest.raises(IdempotencyConflict, match="different body"):
        await city(world, "city-a", "m-1", orjson.dumps({**MESSAGE, "title": "Another title"}))
    assert world.app.max_position() == position


async def test_another_integrations_use_of_the_same_key_is_a_new_message(world: World) -> None:
    mine = await city(world, "city-a", "m-1")
    theirs = await city(world, "city-b", "m-1")
    assert not theirs.replayed and theirs.outcome["broadcast_id"] != mine.outcome["broadcast_id"]
    assert world.app.broadcast(UUID(theirs.outcome["broadcast_id"])).drafted_by == "integration:city-b"


async def test_concurrent_duplicates_are_all_answered_with_the_winners_outcome(world: World) -> None:
    before = world.app.max_position()
    answers = await asyncio.gather(*(city(world, "city-a", "m-1") for _ in range(5)))
    assert [a.replayed for a in answers].count(False) == 1
    assert all(a.outcome == answers[0].outcome for a in answers)
    item = world.app.broadcast(UUID(answers[0].outcome["broadcast_id"]))
    assert world.app.max_position() - before == item.version + 1  # one broadcast and one Inbound record


async def test_a_bad_signature_is_refused_before_anything_is_read_or_stored(world: World) -> None:
    position = world.app.max_position()
    headers = signed(world.secrets["city-a"], "m-1", BODY)
    with pytest.raises(SignatureError):
        await accept_city_message(world.intake, headers=headers, body=BODY + b" ", now=time.time())
    assert world.app.max_position() == position


async def test_the_common_message_is_prepared_without_the_store_and_others_ask_for_it(world: World) -> None:
    def inline(body: bytes, intake: Intake = world.intake) -> Prepared | object:
        headers = signed(world.secrets["city-a"], "m-1", body)
        return prepare_city_message_inline(intake, headers=headers, body=body, now=time.time())

    world.intake.areas.get(), world.intake.integrations.get()  # warm caches, as after the first request
    position = world.app.max_position()
    assert isinstance(inline(BODY), Prepared)
    to_endpoint = orjson.dumps({**MESSAGE, "targets": {"endpoints": ["00601-T01-IP1"]}})
    assert inline(to_endpoint) is NEEDS_STORE  # endpoints are not cached: the worker thread reads them
    headers = signed(world.secrets["city-a"], "m-2", to_endpoint)
    assert isinstance(prepare_city_message(world.intake, headers=headers, body=to_endpoint, now=time.time()), Prepared)
    assert inline(orjson.dumps({**MESSAGE, "extra": 1})) is NEEDS_STORE  # a refusal may be a replay's: look it up
    cold = replace(world.intake, areas=TimedCache(world.app.area_registry, 30.0))
    assert inline(BODY, cold) is NEEDS_STORE
    assert world.app.max_position() == position  # preparing stores nothing


# -- CAP ------------------------------------------------------------------------------------------------------------

SENT = datetime.now(UTC) - timedelta(minutes=1)


def cap(world: World, doc: bytes, n: int = 0) -> Accepted:
    headers = signed(world.secrets["kttv"], f"transport-{time.time_ns()}-{n}", doc)
    return accept_cap_alert(world.intake, headers=headers, raw=doc, now=time.time())


def test_a_cap_alert_is_keyed_by_sender_identifier_sent_and_replayed_with_its_outcome(world: World) -> None:
    doc = alert(identifier="KTTV-1", sent=SENT)
    first = cap(world, doc)
    assert not first.replayed and first.outcome["action"] == "submitted"
    assert (world.intake.data_dir / "cap" / f"{first.outcome['document_sha256']}.xml").read_bytes() == doc
    position = world.app.max_position()
    again = cap(world, doc, 1)  # another transport id: CAP's own key decides
    assert again.replayed and again.outcome == first.outcome
    with pytest.raises(IdempotencyConflict):
        cap(world, alert(identifier="KTTV-1", sent=SENT, infos=(info(headline="Another headline"),)), 2)
    assert world.app.max_position() == position


async def test_concurrent_cap_duplicates_are_all_answered_with_the_winners_outcome(world: World) -> None:
    doc = alert(identifier="KTTV-2", sent=SENT)
    answers = await asyncio.gather(*(asyncio.to_thread(cap, world, doc, n) for n in range(4)))
    assert [a.replayed for a in answers].count(False) == 1
    assert all(a.outcome == answers[0].outcome for a in answers)
