"""The device link over TLS, against a mosquitto started by the test with only a TLS listener (its CA and certificate
made by adapters/mqtt/certs.py): the dispatcher (aiomqtt out, the lean reader in) delivers to simulated devices that
speak TLS too (adapters/mqtt/wire.py), and a broker that the configured CA did not sign, or whose certificate was not
made for the host dialled, is refused with an error that says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from keng.adapters.mqtt.broker import BrokerAddress
from keng.adapters.mqtt.certs import make_ca, make_client_cert
from keng.adapters.mqtt.link import MqttLink
from keng.adapters.mqtt.wire import WireLink
from keng.domain.dispatch import Dispatch
from tests.integration.conftest import TlsMosquitto
from tests.integration.harness import Harness

pytestmark = pytest.mark.mqtt


@pytest.fixture
async def h(tmp_path: Path, tls_mosquitto: TlsMosquitto) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path, tls_mosquitto.address)
    yield harness
    await harness.close()


async def test_the_dispatcher_delivers_over_tls_to_devices_on_tls(h: Harness, tls_mosquitto: TlsMosquitto) -> None:
    assert h.broker is not None and h.broker.tls and h.broker.display.startswith("mqtts://localhost:")
    fleet = await h.start_fleet()
    dispatcher = await h.start_dispatcher()
    assert isinstance(dispatcher.link, MqttLink) and dispatcher.link.broker.tls
    assert isinstance(dispatcher.intake_link, WireLink) and dispatcher.intake_link.broker.tls
    await h.until(lambda: all(dispatcher.online.get(code) for code in fleet.devices))  # statuses in, over TLS
    bid = h.broadcast("emergency")
    await h.until(lambda: h.closed(bid))
    d = h.dispatch_of(bid)
    assert d is not None and d.summary["outcome"] == "complete"
    assert d.summary["targeted"] == len(fleet.devices) == d.summary["played"] > 0
    assert all(device.plays[str(d.id)] == 1 for device in fleet.devices.values())
    assert h.events(Dispatch.AcksRecorded)


@pytest.fixture
def wrong_ca(tmp_path: Path) -> Path:
    path = tmp_path / "someone-elses-ca.pem"
    path.write_bytes(make_ca("not the broker's CA").cert_pem)
    return path


async def _refusals(address: BrokerAddress, seconds: float = 1.5) -> tuple[list[int], list[dict[str, object]]]:
    """Both links against `address` for a while: how often each connected, and what they logged."""
    with capture_logs() as logs:
        links: list[MqttLink | WireLink] = [
            MqttLink(address, client_id="test-tls-out", max_backoff_s=0.5),
            WireLink(address, client_id="test-tls-in", announce=True, max_backoff_s=0.5),
        ]
        for link in links:
            link.start()
        await asyncio.sleep(seconds)
        for link in links:
            await link.close()
    return [link.connects for link in links], logs


async def test_a_broker_the_configured_ca_did_not_sign_is_refused_with_a_clear_error(
    tls_mosquitto: TlsMosquitto, wrong_ca: Path
) -> None:
    connects, logs = await _refusals(replace(tls_mosquitto.address, ca_file=wrong_ca))
    assert connects == [0, 0]
    refused = [e for e in logs if e["event"] == "mqtt.tls_refused"]
    assert {e["client_id"] for e in refused} == {"test-tls-out", "test-tls-in"}
    for event in refused:
        assert event["log_level"] == "error" and event["ca"] == str(wrong_ca)
        assert str(event["error"]).startswith("certificate verify failed: ")  # the broker sent a chain we do not trust
        assert "not signed by this CA" in str(event["hint"])
    # The right CA connects at once: nothing else was wrong.
    connects, _ = await _refusals(tls_mosquitto.address, seconds=0.5)
    assert connects == [1, 1]


async def test_a_host_name_the_certificate_was_not_made_for_is_refused(
    start_tls_mosquitto: Callable[..., TlsMosquitto],
) -> None:
    broker = start_tls_mosquitto(hosts=("broker.example",))  # dialled as localhost, which it does not name
    connects, logs = await _refusals(broker.address)
    assert connects == [0, 0]
    refused = [e for e in logs if e["event"] == "mqtt.tls_refused"]
    assert {e["client_id"] for e in refused} == {"test-tls-out", "test-tls-in"}
    assert all("Hostname mismatch" in str(e["error"]) for e in refused), refused


async def test_a_broker_that_requires_client_certificates_admits_the_links_that_present_one(
    start_tls_mosquitto: Callable[..., TlsMosquitto], tmp_path: Path
) -> None:
    broker = start_tls_mosquitto(client_certificates=True)
    connects, _ = await _refusals(broker.address, seconds=1.0)
    assert connects == [0, 0]  # no certificate: the broker ends the handshake
    make_client_cert(broker.ca, "keng-dispatcher").write(tmp_path / "me.pem", tmp_path / "me.key")
    address = replace(broker.address, cert_file=tmp_path / "me.pem", key_file=tmp_path / "me.key")
    connects, _ = await _refusals(address, seconds=0.5)
    assert connects == [1, 1]
