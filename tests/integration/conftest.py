"""MQTT brokers for integration tests: a mosquitto started by the test on a free port (with a temporary config;
tests/servers.py, where bench/faults.py finds it too), the embedded amqtt broker, and the configured one
(KENG_TEST_MQTT, default mqtt://127.0.0.1:1883).

The `mosquitto`, `tls_mosquitto` and `embedded` fixtures are tapped: every message on them is checked against
docs/asyncapi.json (tests/contract.py, the `contract_tap` fixture). Without a broker the `mqtt` tests are skipped
with the reason, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keng.adapters.mqtt.broker import BrokerAddress, EmbeddedBroker, parse_broker_url
from tests.contract import Taps
from tests.servers import Mosquitto
from tests.servers import listening as _listening

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SYSTEM_MQTT = os.environ.get("KENG_TEST_MQTT", "mqtt://127.0.0.1:1883")


def no_broker(reason: str) -> None:
    """Skip (locally) or fail (in CI) a test that needs a broker."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


class TlsMosquitto(Mosquitto):
    """A mosquitto whose only listener speaks TLS, with a certificate for `hosts` (localhost and 127.0.0.1) from a CA
    made for it (adapters/mqtt/certs.py); `client_certificates` makes the broker require one signed by that CA. Its
    files live in a folder that user `mosquitto` may read (mosquitto started as root drops to that user first),
    removed by `remove_files`."""

    def __init__(
        self,
        workdir: Path,
        *,
        client_certificates: bool = False,
        hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
        log: Path | None = None,
    ) -> None:
        from keng.adapters.mqtt.certs import make_ca, make_server_cert

        self.files = Path(tempfile.mkdtemp(prefix="keng-tls-"))
        self.files.chmod(0o755)
        self.ca = make_ca("keng test CA")
        self.ca.write(self.files / "ca.pem", self.files / "ca.key")
        make_server_cert(self.ca, hosts).write(self.files / "server.pem", self.files / "server.key")
        (self.files / "server.key").chmod(0o644)  # a test's throwaway key, read by user mosquitto
        self.client_certificates = client_certificates
        super().__init__(workdir, log)

    def listener_conf(self) -> str:
        return (
            f"cafile {self.files / 'ca.pem'}\ncertfile {self.files / 'server.pem'}\n"
            f"keyfile {self.files / 'server.key'}\n"
            + ("require_certificate true\n" if self.client_certificates else "")
        )

    @property
    def ca_file(self) -> Path:
        return self.files / "ca.pem"

    @property
    def address(self) -> BrokerAddress:
        return parse_broker_url(f"mqtts://localhost:{self.port}?ca={self.ca_file}")

    def remove_files(self) -> None:
        shutil.rmtree(self.files, ignore_errors=True)


@pytest.fixture
def start_tls_mosquitto(tmp_path: Path) -> Iterator[Callable[..., TlsMosquitto]]:
    """Start TLS mosquittos (TlsMosquitto's options), each in a folder of its own; all stopped at the end."""
    if shutil.which("mosquitto") is None:
        no_broker("the mosquitto binary is not installed (apt-get install mosquitto)")
    started: list[TlsMosquitto] = []

    def start(**options: Any) -> TlsMosquitto:
        workdir = tmp_path / f"tls-{len(started)}"
        workdir.mkdir()
        broker = TlsMosquitto(workdir, **options)
        started.append(broker)
        try:
            broker.start()
        except RuntimeError as e:
            no_broker(str(e))
        return broker

    yield start
    for broker in started:
        broker.stop()
        broker.remove_files()


@pytest.fixture
def tls_mosquitto(start_tls_mosquitto: Callable[..., TlsMosquitto], contract_tap: Taps) -> TlsMosquitto:
    """A fresh mosquitto with one TLS listener on a free port (its CA: `.ca_file`; `.address` trusts it), its traffic
    checked against the contract (the tap connects over TLS too)."""
    broker = start_tls_mosquitto()
    contract_tap.attach(broker.address)
    return broker


@pytest.fixture
def system_broker() -> BrokerAddress:
    """The configured broker (KENG_TEST_MQTT, default the local mosquitto service). Not tapped: others may share it."""
    address = parse_broker_url(SYSTEM_MQTT)
    if not _listening(address.host, address.port):
        no_broker(f"no MQTT broker listening at {address.display} (set KENG_TEST_MQTT)")
    return address


@pytest.fixture
async def embedded(contract_tap: Taps) -> AsyncIterator[BrokerAddress]:
    """The embedded amqtt broker in the test's event loop, its traffic checked against the contract."""
    broker = EmbeddedBroker()
    address = await broker.start()
    await contract_tap.attach_async(address)
    yield address
    await broker.stop()
