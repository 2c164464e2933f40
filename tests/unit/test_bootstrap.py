"""The composition root: what it wires, and that importing it (or what it wires) does nothing yet."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.broker import BrokerAddress
from keng.adapters.mqtt.link import MqttLink
from keng.adapters.mqtt.topics import Topics
from keng.adapters.mqtt.wire import WireLink
from keng.domain.programme import SAMPLE_SLOTS, parse_slots
from keng.runtime.bootstrap import client_id_for, mqtt_links, programme_of
from keng.runtime.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_dispatchers_real_links_publish_on_mqtt_5_and_read_acks_and_statuses_at_qos_0() -> None:
    link, inbound = mqtt_links(BrokerAddress("127.0.0.1", 1883), "keng-dispatcher")
    assert isinstance(link, MqttLink) and isinstance(inbound, WireLink)
    assert (link.client_id, inbound.client_id) == ("keng-dispatcher", "keng-dispatcher-intake")
    assert inbound.subscriptions == (proto.ACK_SUBSCRIPTION, proto.STATUS_SUBSCRIPTION)
    assert inbound.subscribe_qos == 0 and inbound.announce
    assert not link.connected.is_set() and not inbound.connected.is_set()  # built, not connected


def test_a_dispatchers_client_id_is_its_processs_own_and_its_links_read_under_the_topic_root() -> None:
    first, second = (mqtt_links(BrokerAddress("127.0.0.1", 1883)) for _ in range(2))
    prefix = f"keng-dispatcher-{socket.gethostname()[:8]}"
    for link, inbound in (first, second):
        assert link.client_id.startswith(prefix) and f"-{os.getpid()}-" in link.client_id
        assert inbound.client_id == f"{link.client_id}-intake"
        assert "/" not in link.client_id and "+" not in link.client_id and "#" not in link.client_id
    assert first[0].client_id != second[0].client_id  # two dispatchers of one process: still two ids
    _, inbound = mqtt_links(BrokerAddress("127.0.0.1", 1883), topics=Topics("district-a/keng"))
    assert inbound.subscriptions == ("district-a/keng/ack/+", "district-a/keng/status/+")
    assert client_id_for("keng-x").startswith("keng-x-")


def test_slots_from_the_settings_make_the_programme_else_the_sample_slots(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path), environ={})
    assert programme_of(settings.override(slots="05:30-06:30")).default == parse_slots("05:30-06:30")
    assert programme_of(settings).default == SAMPLE_SLOTS


def test_importing_the_composition_root_and_what_it_wires_starts_nothing() -> None:
    probe = (
        "import sys, threading\n"
        "import keng.runtime.bootstrap\n"
        "light = [m for m in ('aiohttp', 'aiomqtt', 'numpy') if m in sys.modules]\n"
        "import keng.adapters.tts.render, keng.runtime.dispatch.dispatcher, keng.runtime.cli.service\n"
        "import keng.runtime.cli.dispatch, keng.runtime.demo.run, keng.runtime.workers.renderer\n"
        "import keng.runtime.http.app\n"
        "print(light, threading.active_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    # The service stack loads only when something is built; no thread or connection exists before that.
    assert out.stdout.split() == ["[]", "1"]
