"""Settings: every setting read once, from the environment, by runtime/config.py, and nowhere else."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from keng.domain.errors import InvalidValue
from keng.runtime.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
READS_ENVIRONMENT = re.compile(r"os\.environ|os\.getenv|from os import .*(environ|getenv)")


def test_every_documented_variable_lands_in_the_settings(tmp_path: Path) -> None:
    env = {
        "KENG_DATA": str(tmp_path),
        "KENG_MQTT": "mqtt://u:p@broker:1884",
        "KENG_TTS_ENGINE": "coqui",
        "KENG_TTS_MODEL": str(tmp_path / "m.pth"),
        "KENG_TTS_CONFIG": str(tmp_path / "c.json"),
        "KENG_STANDING_ORDERS": str(tmp_path / "orders.json"),
        "KENG_RATIFY_WITHIN_MIN": "45",
        "KENG_MQTT_CA": str(tmp_path / "ca.pem"),
        "KENG_MQTT_CERT": str(tmp_path / "me.pem"),
        "KENG_MQTT_KEY": str(tmp_path / "me.key"),
        "KENG_TOPIC_ROOT": "hanoi/btl/keng",
        "KENG_BROKER_LISTEN": "0.0.0.0:11883",
        "KENG_RENDER_PROCESSES": "3",
        "KENG_RENDER_QUEUE": "16",
        "KENG_RENDER_NICE": "5",
        "KENG_RENDER_LEASE_S": "12.5",
    }
    s = load_settings(environ=env)
    assert (s.render_processes, s.render_queue, s.render_nice, s.render_lease_s) == (3, 16, 5, 12.5)
    assert (s.mqtt_ca, s.mqtt_cert, s.mqtt_key) == (tmp_path / "ca.pem", tmp_path / "me.pem", tmp_path / "me.key")
    assert (s.topic_root, s.broker_listen) == ("hanoi/btl/keng", ("0.0.0.0", 11883))
    assert (s.data_dir, s.broker_url, s.tts_engine) == (tmp_path, "mqtt://u:p@broker:1884", "coqui")
    assert (s.tts_model, s.tts_config) == (tmp_path / "m.pth", tmp_path / "c.json")
    assert s.standing_orders_path == tmp_path / "orders.json"
    assert s.ratify_within == timedelta(minutes=45)


def test_defaults_without_environment(tmp_path: Path) -> None:
    s = load_settings(data_dir=str(tmp_path), environ={})
    assert (s.broker_url, s.tts_engine, s.tts_model, s.slots, s.public_url) == (None, "espeak", None, None, None)
    assert s.standing_orders_path == tmp_path / "standing-orders.json"
    assert s.ratify_within == timedelta(minutes=30) and s.max_body_bytes == 1_048_576
    assert (s.render_processes, s.render_queue, s.render_nice, s.render_lease_s) == (1, 64, 10, 60.0)
    assert (s.topic_root, s.broker_listen, s.mqtt_ca, s.mqtt_cert, s.mqtt_key) == (
        "keng/v1",
        ("127.0.0.1", 1883),
        None,
        None,
        None,
    )


def test_a_commands_options_override_only_what_they_set(tmp_path: Path) -> None:
    s = load_settings(data_dir=str(tmp_path), environ={"KENG_MQTT": "mqtt://env:1883"})
    assert s.override(broker_url=None, slots="05:30-06:30").broker_url == "mqtt://env:1883"
    assert s.override(broker_url="mqtt://arg:1883").broker_url == "mqtt://arg:1883"
    with pytest.raises(TypeError, match="unknown settings: brokr"):
        s.override(brokr="mqtt://typo:1883")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KENG_RATIFY_WITHIN_MIN", "soon", "KENG_RATIFY_WITHIN_MIN must be a number of minutes"),
        ("KENG_RATIFY_WITHIN_MIN", "-5", "more than 0"),
        ("KENG_TTS_ENGINE", "piper", "KENG_TTS_ENGINE must be one of espeak, coqui"),
        ("KENG_AUDIT_SEAL_INTERVAL_S", "0", "more than 0 and at most 3600 seconds"),
        ("KENG_TOPIC_ROOT", "keng/#", "KENG_TOPIC_ROOT: .* no wildcards"),
        ("KENG_TOPIC_ROOT", "/keng/v1", "KENG_TOPIC_ROOT: .* no leading, trailing or doubled"),
        ("KENG_TOPIC_ROOT", "keng/v1/", "KENG_TOPIC_ROOT: .* no leading, trailing or doubled"),
        ("KENG_TOPIC_ROOT", "a/b/c/d/e/f", "KENG_TOPIC_ROOT: .* 6 levels; at most 5"),
        ("KENG_TOPIC_ROOT", "keng/+/v1", "no wildcards"),
        ("KENG_TOPIC_ROOT", "$SYS/keng", "each level"),
        ("KENG_BROKER_LISTEN", "1883", "KENG_BROKER_LISTEN must be HOST:PORT"),
        ("KENG_BROKER_LISTEN", "localhost:99999", "KENG_BROKER_LISTEN must be between 0 and 65535"),
        ("KENG_BROKER_LISTEN", "[::1]:1883", "KENG_BROKER_LISTEN must be HOST:PORT with an IPv4"),
        ("KENG_BROKER_LISTEN", "a b:1883", "is not a host name"),
        ("KENG_RENDER_PROCESSES", "-1", "KENG_RENDER_PROCESSES must be a whole number"),
        ("KENG_RENDER_PROCESSES", "65", "KENG_RENDER_PROCESSES must be between 0 and 64"),
        ("KENG_RENDER_QUEUE", "0", "KENG_RENDER_QUEUE must be between 1 and 100000"),
        ("KENG_RENDER_NICE", "20", "KENG_RENDER_NICE must be between 0 and 19"),
        ("KENG_RENDER_LEASE_S", "0", "KENG_RENDER_LEASE_S must be more than 0"),
    ],
)
def test_a_malformed_variable_is_refused_with_its_name(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        load_settings(data_dir="/tmp/keng", environ={name: value})


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for folder in ("domain", "projections", "adapters", "services", "runtime")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if READS_ENVIRONMENT.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == ["runtime/config.py"]
