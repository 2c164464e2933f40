"""An integration's own senders and alerts, and keys scoped per integration: the domain rules, without I/O."""

from __future__ import annotations

import pytest

from keng.domain.access import Integration, integration_events
from keng.domain.actor import ExternalActor, integration_of
from keng.domain.errors import InvalidValue, NotCreator, SenderNotOwned, SenderTaken
from keng.domain.ids import sourced_broadcast_id
from keng.domain.inbound import inbound_id, legacy_inbound_id
from keng.domain.values import Role


def cap(name: str, *senders: str) -> Integration:
    item = Integration.add(name=name, kind="cap", jurisdiction=["021"], by="admin")
    if senders:
        item.set_senders(senders, by="admin", others=[])
    return item


def test_senders_are_recorded_sorted_once_and_replay_to_the_same_state() -> None:
    item = cap("kttv", "b@x", "a@x", "b@x")
    assert item.senders == ["a@x", "b@x"]
    replayed = None
    for event in item.collect_events():
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.senders == ["a@x", "b@x"]
    assert Integration.SendersSet in integration_events() and Integration.Event not in integration_events()


def test_a_sender_belongs_to_one_integration_and_only_cap_integrations_have_senders() -> None:
    kttv = cap("kttv", "a@x")
    with pytest.raises(SenderTaken, match="rule sender-owned-once: sender 'a@x' belongs to integration 'kttv'"):
        cap("other").set_senders(["a@x"], by="admin", others=[kttv])
    kttv.set_senders(["a@x", "c@x"], by="admin", others=[kttv])  # its own senders are no clash
    city = Integration.add(name="city", kind="city-source", jurisdiction=["021"], by="admin")
    with pytest.raises(InvalidValue, match="senders are for CAP integrations"):
        city.set_senders(["c@x"], by="admin", others=[])
    for bad in ("a b", "a,b", "<a>", "", "x" * 256):
        with pytest.raises(InvalidValue):
            kttv.set_senders([bad], by="admin", others=[])


def test_an_integration_sends_under_its_senders_and_changes_only_what_it_created() -> None:
    actor = ExternalActor("kttv", frozenset({Role.DRAFTER}), frozenset({"021"}), frozenset({"a@x"}))
    actor.require_sender("a@x", "alert/sender")
    with pytest.raises(SenderNotOwned, match=r"rule integration-owns-sender: alert/sender: .* 'b@x'"):
        actor.require_sender("b@x", "alert/sender")
    with pytest.raises(SenderNotOwned, match="keng integration senders bare --sender"):
        ExternalActor("bare", frozenset(), frozenset()).require_sender("a@x", "alert/sender")
    actor.require_creator("integration:kttv", "broadcast 1")
    for other in ("integration:other", "lan.nguyen", "integration:kttv2"):
        with pytest.raises(NotCreator, match="rule integration-owns-alert"):
            actor.require_creator(other, "broadcast 1")
    with pytest.raises(NotCreator, match="sender 'b@x'"):
        actor.require_own_sender("b@x", "alert/references")
    assert integration_of(actor.handle) == "kttv" and integration_of("lan.nguyen") is None


def test_keys_are_scoped_per_integration_and_the_unscoped_ids_stay_as_they_were() -> None:
    key = "a@x,ID-1,2026-11-27T08:00:00+07:00"
    assert len({sourced_broadcast_id("cap", key, scope) for scope in (None, "a", "b")}) == 3
    assert len({legacy_inbound_id("cap", key), inbound_id("cap", key, "a"), inbound_id("cap", key, "b")}) == 3
    # The ids records were stored under before scoping, pinned: changing them would lose those records.
    assert str(legacy_inbound_id("cap", "x")) == "2a29aa46-5eaf-5380-b3c0-c936cb66d5bc"
    assert str(sourced_broadcast_id("city-source", "msg-1")) == "93ac75e9-8d60-564e-8d82-5347bea3f569"
