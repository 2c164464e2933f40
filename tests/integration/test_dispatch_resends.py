"""Resends against a real broker: the ack barrier (no resend while acks may still be queued unread) and its timeout
when the broker refuses the barrier topic."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.broker import BrokerAddress
from keng.domain.dispatch import Dispatch
from tests.contract import Taps
from tests.integration.conftest import Mosquitto, no_broker
from tests.integration.harness import Harness

pytestmark = pytest.mark.mqtt


async def silent_endpoint_dispatch(
    h: Harness, barrier_timeout_s: float | None = None, **dispatcher: Any
) -> tuple[str, Dispatch]:
    """A fleet in which one endpoint went silent (disconnected cleanly, so its retained status still says online),
    an emergency to its ward, and the dispatch once its first resend round is recorded."""
    fleet = await h.start_fleet()
    dispatcher = await h.start_dispatcher(**dispatcher)
    if barrier_timeout_s is not None:
        dispatcher.barrier.timeout_s = barrier_timeout_s
    silent = next(iter(fleet.devices.values()))
    await h.until(lambda: dispatcher.online.get(silent.code) is True)
    await silent.close()
    bid = h.broadcast("emergency")
    await h.until(lambda: bool(h.events(Dispatch.RetriesSent)))
    d = h.dispatch_of(bid)
    assert d is not None
    return silent.code, d


async def test_a_silent_endpoint_is_asked_again_once_the_ack_barrier_has_come_back(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    h = Harness(tmp_path, mosquitto.address)
    try:
        code, d = await silent_endpoint_dispatch(h)
        first = h.events(Dispatch.RetriesSent)[0]
        assert first.endpoints == [code]  # every other endpoint's acks were read before the round: none resent
        assert h.dispatcher is not None and h.dispatcher.metrics["ack_barriers"] >= 1
        assert h.dispatcher.metrics["ack_barriers_timed_out"] == 0
        assert d.states.get(code) is None and all(d.states[c]["state"] in ("played", "displayed") for c in d.states)
    finally:
        await h.close()


async def test_the_barrier_comes_back_through_the_embedded_broker_too(tmp_path: Path, embedded: BrokerAddress) -> None:
    h = Harness(tmp_path, embedded)
    try:
        code, _ = await silent_endpoint_dispatch(h)
        assert h.events(Dispatch.RetriesSent)[0].endpoints == [code]
        assert h.dispatcher is not None and h.dispatcher.metrics["ack_barriers"] >= 1
    finally:
        await h.close()


async def test_a_broker_that_refuses_the_barrier_topic_delays_resends_but_never_stops_them(
    tmp_path: Path, contract_tap: Taps
) -> None:
    if shutil.which("mosquitto") is None:
        no_broker("the mosquitto binary is not installed (apt-get install mosquitto)")
    broker = Mosquitto(tmp_path)
    readable = Path(tempfile.mkdtemp())  # mosquitto started as root reads its ACL as user mosquitto, after setuid
    readable.chmod(0o755)
    acl = readable / "acl"
    acl.write_text(f"topic readwrite keng/#\ntopic deny {proto.barrier_topic('keng-dispatcher')}\n")  # anonymous
    broker.conf.write_text(broker.conf.read_text() + f"acl_file {acl}\n")
    broker.start()
    contract_tap.attach(broker.address)
    h = Harness(tmp_path, broker.address)
    try:
        code, _ = await silent_endpoint_dispatch(h, barrier_timeout_s=0.5, client_id="keng-dispatcher")
        assert h.events(Dispatch.RetriesSent)[0].endpoints == [code]
        assert h.dispatcher is not None and h.dispatcher.metrics["ack_barriers_timed_out"] >= 1
        assert h.dispatcher.metrics["ack_barriers"] == 0
    finally:
        await h.close()
        broker.stop()
        shutil.rmtree(readable)
