"""How MqttLink tells a connection that went silent (it moves on to the next node of a cluster) from one the broker
closed (it tries that node once more first): docs/broker.md, Broker clusters."""

from __future__ import annotations

import aiomqtt
from paho.mqtt import client as mqtt_client
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from keng.adapters.mqtt.link import _went_silent


def _dropped(reason: object) -> aiomqtt.MqttError:
    """What aiomqtt raises from the message iterator when paho reports a disconnect for `reason`."""
    error = aiomqtt.MqttError("Disconnected during message iteration")
    error.__cause__ = aiomqtt.MqttCodeError(reason, "Unexpected disconnection")  # type: ignore[arg-type]
    return error


def test_a_keepalive_timeout_or_an_operation_timeout_is_silence() -> None:
    reason = mqtt_client.convert_disconnect_error_code_to_reason_code(mqtt_client.MQTT_ERR_KEEPALIVE)
    assert _went_silent(_dropped(reason))  # paho's callback API 2, which aiomqtt uses
    assert _went_silent(_dropped(mqtt_client.MQTT_ERR_KEEPALIVE))
    assert _went_silent(aiomqtt.MqttError("Operation timed out"))


def test_a_connection_the_broker_closed_is_not() -> None:
    lost = mqtt_client.convert_disconnect_error_code_to_reason_code(mqtt_client.MQTT_ERR_CONN_LOST)
    assert not _went_silent(_dropped(lost))
    assert not _went_silent(_dropped(ReasonCode(PacketTypes.DISCONNECT, "Session taken over")))
    assert not _went_silent(_dropped(mqtt_client.MQTT_ERR_CONN_LOST))
