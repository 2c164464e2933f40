"""The lean MQTT client's framing: what it writes, its parser reads back, however the bytes are split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keng.adapters.mqtt.wire import PUBLISH, _packet, _string, parse_packets, publish_packet


@given(
    bodies=st.lists(st.binary(max_size=300) | st.integers(0, 20_000).map(lambda n: b"\x01" * n), max_size=6),
    cut=st.integers(0, 100_000),
)
def test_packets_round_trip_through_the_parser_split_anywhere(bodies: list[bytes], cut: int) -> None:
    stream = b"".join(_packet(PUBLISH, 2, body) for body in bodies)
    cut = min(cut, len(stream))
    buffer = bytearray(stream[:cut])
    got = parse_packets(buffer)
    buffer += stream[cut:]
    got += parse_packets(buffer)
    assert got == [(PUBLISH, 2, body) for body in bodies] and not buffer


def test_a_publish_with_a_pre_encoded_topic_is_the_same_packet() -> None:
    topic = "keng/v1/ack/00595-G01-S01"
    plain = publish_packet(topic, b"{}", qos=1, retain=False, packet_id=7)
    assert publish_packet(_string(topic), b"{}", qos=1, retain=False, packet_id=7) == plain
    assert plain[0] == PUBLISH << 4 | 2
