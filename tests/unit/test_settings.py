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
    }
    s = load_settings(environ=env)
    assert (s.data_dir, s.broker_url, s.tts_engine) == (tmp_path, "mqtt://u:p@broker:1884", "coqui")
    assert (s.tts_model, s.tts_config) == (tmp_path / "m.pth", tmp_path / "c.json")
    assert s.standing_orders_path == tmp_path / "orders.json"
    assert s.ratify_within == timedelta(minutes=45)


def test_defaults_without_environment(tmp_path: Path) -> None:
    s = load_settings(data_dir=str(tmp_path), environ={})
    assert (s.broker_url, s.tts_engine, s.tts_model, s.slots, s.public_url) == (None, "espeak", None, None, None)
    assert s.standing_orders_path == tmp_path / "standing-orders.json"
    assert s.ratify_within == timedelta(minutes=30) and s.max_body_bytes == 1_048_576


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
