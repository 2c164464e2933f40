"""Integrations own what they create, over real HTTP on SQLite and PostgreSQL: a CAP integration sends only under its
own senders, updates and cancels only its own alerts, and no integration's idempotency key (a CAP key, a webhook id)
can be taken by another. Every refusal is a 403 problem naming its rule and leaves the event count as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.domain.ids import sourced_broadcast_id
from keng.domain.inbound import Inbound, legacy_inbound_id
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.services import broadcasts
from keng.services.access import add_integration, issue_token
from tests.http_server import Client, serve
from tests.integration.test_http_api import DRAFT, HOOK, problem
from tests.integration.test_http_cap import post
from tests.unit.cap_builders import SENDER, alert, info, reference

OTHER = "canhbao@other.example"
CITY_BODY = orjson.dumps(
    {"title": "Cảnh báo lũ", "text": "Nước sông lên cao.", "priority": "emergency", "targets": {"areas": ["00595"]}}
)

World = tuple[Client, dict[str, str], Keng]


@pytest.fixture
def world(sample_app: Keng, tmp_path: Path) -> Iterator[World]:
    """Two CAP integrations with a sender each, one added before senders existed, two city sources and a drafter."""
    secrets = SecretStore(tmp_path)
    add = partial(add_integration, sample_app, secrets, jurisdiction=["021"], by="admin")
    creds = {
        "kttv": add(name="kttv", kind="cap", senders=[SENDER]),
        "other": add(name="other", kind="cap", senders=[OTHER]),
        "bare": add(name="bare", kind="cap"),
        "city-a": add(name="city-a", kind="city-source"),
        "city-b": add(name="city-b", kind="city-source"),
        "lan": issue_token(sample_app, staff="lan.nguyen", label="t", by="admin"),
    }
    settings = load_settings(data_dir=str(tmp_path), environ={})
    with serve(Services(app=sample_app, secrets=secrets, settings=settings)) as client:
        yield client, creds, sample_app


def accepted(reply: Any) -> dict[str, Any]:
    assert reply.status == 202, reply.body
    assert "idempotent-replayed" not in reply.headers, "a new message, not a replay"
    outcome: dict[str, Any] = reply.json()
    return outcome


def created_by(kind: str, w: World) -> UUID:
    """A broadcast in ward 00595 made by an operator, the city source or another CAP integration."""
    client, t, _ = w
    if kind == "operator":
        return UUID(client.json("POST", "/api/v1/broadcasts", DRAFT, t["lan"]).json()["id"])
    if kind == "city-source":
        return UUID(accepted(client.signed(HOOK, CITY_BODY, t["city-a"], "city-1"))["broadcast_id"])
    return UUID(accepted(post(client, alert(identifier="OTHER-1", sender=OTHER), t["other"]))["broadcast_ids"][0])


def refused(reply: Any, app: Keng, before: int, rule: str, *fragments: str) -> None:
    problem(reply, 403, f"rule {rule}", *fragments)
    assert reply.json()["type"] == f"urn:keng:problem:{rule}"
    assert app.max_position() == before, "a refused message stores nothing"


def test_a_cap_sender_the_integration_does_not_own_is_refused(world: World) -> None:
    client, t, app = world
    before = app.max_position()
    refused(post(client, alert(sender=SENDER), t["other"]), app, before, "integration-owns-sender", repr(SENDER), OTHER)
    refused(post(client, alert(sender="mine@x"), t["other"]), app, before, "integration-owns-sender", "'mine@x'")


def test_an_integration_without_configured_senders_sends_no_cap_and_is_told_how_to_fix_it(world: World) -> None:
    client, t, app = world
    reply = post(client, alert(sender=SENDER), t["bare"])
    refused(reply, app, app.max_position(), "integration-owns-sender", "keng integration senders bare --sender")


@pytest.mark.parametrize("creator", ["operator", "city-source", "another integration"])
def test_update_and_cancel_of_a_broadcast_the_integration_did_not_create_are_refused(
    world: World, creator: str
) -> None:
    client, t, app = world
    bid = created_by(creator, world)
    ref = reference(SENDER, f"keng-{bid}-r0", "2026-11-27T08:00:00+07:00")
    before, state = app.max_position(), app.broadcast(bid).state
    update = alert(identifier="KTTV-U", msg_type="Update", references=ref, infos=(info(headline="Đã sửa"),))
    refused(post(client, update, t["kttv"]), app, before, "integration-owns-alert", f"broadcast {bid}")
    cancel = alert(identifier="KTTV-C", msg_type="Cancel", references=ref)
    refused(post(client, cancel, t["kttv"]), app, before, "integration-owns-alert")
    assert (app.broadcast(bid).state, app.broadcast(bid).revision) == (state, 0)


def test_an_alert_of_another_integrations_sender_cannot_be_referenced_but_its_own_can(world: World) -> None:
    client, t, app = world
    sent = "2026-11-27T08:00:00+07:00"
    bid = accepted(post(client, alert(identifier="KTTV-1", sent=sent), t["kttv"]))["broadcast_ids"][0]
    foreign = alert(identifier="OTHER-C", sender=OTHER, msg_type="Cancel", references=reference(SENDER, "KTTV-1", sent))
    refused(post(client, foreign, t["other"]), app, app.max_position(), "integration-owns-alert", repr(SENDER))
    own = alert(identifier="KTTV-1C", msg_type="Cancel", references=reference(SENDER, "KTTV-1", sent))
    assert accepted(post(client, own, t["kttv"]))["action"] == "cancelled"
    assert app.broadcast(UUID(bid)).state == "cancelled"


def legacy_record(app: Keng, *, integration: str, key: str, body: bytes, outcome: dict[str, Any]) -> None:
    """An Inbound record as stored before keys were scoped to their integration (under the unscoped id)."""
    record = Inbound._create(
        Inbound.Accepted,
        id=legacy_inbound_id("cap", key),
        source="cap",
        message_id=key,
        integration=integration,
        signature="v1:legacy",
        payload_sha256=hashlib.sha256(body).hexdigest(),
        outcome=outcome,
    )
    app.save_new(record, what="a record stored before keys were scoped")


def test_another_integrations_use_of_a_key_never_blocks_the_genuine_alert(world: World) -> None:
    client, t, app = world
    sent = "2026-11-27T09:00:00+07:00"
    genuine = alert(identifier="KTTV-9", sent=sent)
    key = f"{SENDER},KTTV-9,{sent}"
    squat = alert(identifier="KTTV-9", sent=sent, infos=(info(headline="Giả mạo"),))
    refused(post(client, squat, t["other"]), app, app.max_position(), "integration-owns-sender")
    # What a squatter could leave behind before keys were scoped: its record and a broadcast under the unscoped ids.
    legacy_record(app, integration="other", key=key, body=squat, outcome={"action": "submitted", "broadcast_ids": []})
    taken = broadcasts.draft(app, by="lan.nguyen", source_kind="cap", source_ref=key, target_areas=["00595"], **{
        k: v for k, v in DRAFT.items() if k != "targets"
    })  # fmt: skip
    assert taken == sourced_broadcast_id("cap", key)
    outcome = accepted(post(client, genuine, t["kttv"]))
    assert outcome["action"] == "submitted" and outcome["broadcast_ids"] == [
        str(sourced_broadcast_id("cap", key, "kttv"))
    ]
    again = post(client, genuine, t["kttv"], 1)
    assert again.status == 202 and again.headers["idempotent-replayed"] == "true" and again.json() == outcome


def test_a_record_stored_before_keys_were_scoped_still_answers_its_own_integrations_replay(world: World) -> None:
    client, t, app = world
    sent = "2026-11-27T10:00:00+07:00"
    doc = alert(identifier="KTTV-OLD", sent=sent)
    key = f"{SENDER},KTTV-OLD,{sent}"
    earlier = {"action": "submitted", "key": key, "broadcast_ids": ["an earlier one"]}
    legacy_record(app, integration="kttv", key=key, body=doc, outcome=earlier)
    before = app.max_position()
    reply = post(client, doc, t["kttv"])
    assert reply.status == 202 and reply.headers["idempotent-replayed"] == "true" and reply.json() == earlier
    assert app.max_position() == before


def test_webhook_ids_are_scoped_per_integration(world: World) -> None:
    client, t, app = world
    first = accepted(client.signed(HOOK, CITY_BODY, t["city-b"], "HN-1"))
    second = accepted(client.signed(HOOK, CITY_BODY, t["city-a"], "HN-1"))  # the same id from another integration
    assert first["broadcast_id"] != second["broadcast_id"]
    assert app.broadcast(UUID(second["broadcast_id"])).drafted_by == "integration:city-a"
    position = app.max_position()
    replay = client.signed(HOOK, CITY_BODY, t["city-b"], "HN-1")
    assert replay.status == 202 and replay.headers["idempotent-replayed"] == "true" and replay.json() == first
    problem(client.signed(HOOK, CITY_BODY + b" ", t["city-a"], "HN-1"), 422, "different body")
    assert app.max_position() == position
