"""Device protocol v1 (docs/device-protocol.md): the one module that builds and parses topics and payloads.

Topics (under the installation's root, `KENG_TOPIC_ROOT`, default `keng/v1`; adapters/mqtt/topics.py names them;
`<class>` is `speaker` or `board`):
- `<root>/cmd/<class>/area/<area code>`: group commands; the broker fans out to every device under the area;
- `<root>/cmd/<class>/ep/<endpoint code>`: one endpoint (retries, endpoints targeted one by one);
- `<root>/ack/<endpoint code>`: acknowledgements from the device;
- `<root>/status/<endpoint code>`: retained status, with a retained last will `offline`.
Payloads are JSON objects (orjson) with `"v": 1`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from keng.adapters.mqtt.topics import BARRIER_MARK as BARRIER_MARK
from keng.adapters.mqtt.topics import DEFAULT_ROOT
from keng.adapters.mqtt.topics import DEFAULT_TOPICS as DEFAULT_TOPICS
from keng.adapters.mqtt.topics import Topics as Topics
from keng.adapters.mqtt.topics import is_barrier_code as is_barrier_code

PREFIX = DEFAULT_ROOT
QOS = 1
HEARTBEAT_S = 30  # MQTT keep-alive: the broker publishes the last will after 1.5 x this without a packet
SPEAKER, BOARD = "speaker", "board"
CLASS_OF_KIND = {"ip-speaker": SPEAKER, "eboard": BOARD}
KINDS_OF_CHANNEL = {"speaker": ("ip-speaker",), "eboard": ("eboard",)}
ACK_SUBSCRIPTION = DEFAULT_TOPICS.ack_subscription
STATUS_SUBSCRIPTION = DEFAULT_TOPICS.status_subscription
PLAY_OP = {SPEAKER: "play", BOARD: "display"}
STOP_OP = {SPEAKER: "stop", BOARD: "clear"}


class ProtocolError(ValueError):
    """A message that does not follow the protocol."""


# The default root's topics (`keng/v1`), for tools and tests of one installation. The dispatcher, its intake, the
# simulator and the benchmarks take a `Topics` (adapters/mqtt/topics.py) built from KENG_TOPIC_ROOT instead.
area_topic = DEFAULT_TOPICS.area
endpoint_topic = DEFAULT_TOPICS.endpoint
ack_topic = DEFAULT_TOPICS.ack
status_topic = DEFAULT_TOPICS.status
device_subscriptions = DEFAULT_TOPICS.device_subscriptions
parse_ack_topic = DEFAULT_TOPICS.parse_ack
parse_status_topic = DEFAULT_TOPICS.parse_status
barrier_topic = DEFAULT_TOPICS.barrier
is_barrier_topic = DEFAULT_TOPICS.is_barrier_topic


def text_sha256(text: str) -> str:
    """The `text_sha256` of a command: SHA-256 of the UTF-8 bytes of its `text` (what a device that speaks or shows
    the text itself acknowledges)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode(message: dict[str, Any]) -> bytes:
    """Serialise a payload."""
    return orjson.dumps(message)


def decode(payload: bytes | bytearray | str) -> Any:
    """Parse a payload; ProtocolError when it is not JSON."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise ProtocolError(f"not JSON: {e}") from None


def play_command(
    *,
    cls: str,
    broadcast_id: str,
    dispatch_id: str,
    seq: int,
    priority: str,
    rank: int,
    title: str,
    text: str,
    text_sha256: str,
    repeats: int,
    volume: int,
    expires_at: datetime,
    issued_at: datetime,
    drill: bool,
    audio: dict[str, Any] | None = None,
    variants: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `play` (speaker) or `display` (board) command for item `seq` of a dispatch. A speaker's carries `audio`
    (`audio_ref`: a real file, never a text's hash); a board's carries `board.variants` (`board_variant`: one page
    per resolution) unless it goes to boards that show text only. `text_sha256` hashes the UTF-8 bytes of `text`."""
    message: dict[str, Any] = {
        "v": 1,
        "op": PLAY_OP[cls],
        "broadcast": broadcast_id,
        "dispatch": dispatch_id,
        "seq": seq,
        "priority": priority,
        "rank": rank,
        "title": title,
        "text": text,
        "text_sha256": text_sha256,
    }
    if cls == SPEAKER:
        if audio is None:
            raise ValueError("a speaker command carries an audio file")
        message["audio"] = audio
    elif variants:
        message["board"] = {"variants": variants}
    message.update(
        repeats=repeats,
        volume=volume,
        expires_at=expires_at.isoformat(),
        issued_at=issued_at.isoformat(),
        drill=drill,
    )
    return message


def stop_command(*, cls: str, broadcast_id: str, dispatch_id: str, seq: int, expires_at: datetime) -> dict[str, Any]:
    """A `stop` (speaker) or `clear` (board) command for a dispatch."""
    return {
        "v": 1,
        "op": STOP_OP[cls],
        "broadcast": broadcast_id,
        "dispatch": dispatch_id,
        "seq": seq,
        "expires_at": expires_at.isoformat(),
    }


def ack_message(
    *, code: str, dispatch_id: str, seq: int, state: str, at: datetime, sha256: str | None = None, reason: str = ""
) -> dict[str, Any]:
    """An acknowledgement (built by devices and the simulator)."""
    msg: dict[str, Any] = {"v": 1, "endpoint": code, "dispatch": dispatch_id, "seq": seq, "state": state}
    msg["at"] = at.isoformat()
    if sha256:
        msg["sha256"] = sha256
    if reason:
        msg["reason"] = reason
    return msg


def audio_ref(*, url: str, sha256: str, duration_s: float, fmt: str = "mp3") -> dict[str, Any]:
    """The `audio` of a speaker command: where to fetch the file (signed, expiring), the SHA-256 of its bytes."""
    return {"url": url, "sha256": sha256, "duration_s": duration_s, "format": fmt}


def board_variant(
    *, width: int, height: int, image_url: str, image_sha256: str, layout_url: str, layout_sha256: str
) -> dict[str, Any]:
    """One entry of a display command's `board.variants`: the page rendered for boards of one resolution."""
    return {
        "width": width,
        "height": height,
        "image": {"url": image_url, "sha256": image_sha256},
        "layout": {"url": layout_url, "sha256": layout_sha256},
    }


ACK_REFUSED_OP = "ack-refused"


def ack_refused(*, dispatch_id: str, seq: int | None, state: str | None, reason: str) -> dict[str, Any]:
    """The notice keng sends on an endpoint's own command topic when it refused one of its acks about a live dispatch
    (`seq` and `state` as the ack gave them, when usable)."""
    return {"v": 1, "op": ACK_REFUSED_OP, "dispatch": dispatch_id, "seq": seq, "state": state, "reason": reason}


def status_message(code: str, state: str, at: datetime | None = None, **extra: str) -> dict[str, Any]:
    """A status message (`online`, `offline` with a reason, `fault` with a fault)."""
    msg: dict[str, Any] = {"v": 1, "endpoint": code, "state": state, **extra}
    if at is not None:
        msg["at"] = at.isoformat()
    return msg


MAX_EXPIRY_INTERVAL = 2**32 - 1  # MQTT 5's Message Expiry Interval is a four-byte integer (seconds)


def expiry_properties(expires_at: datetime, now: datetime) -> Properties | None:
    """MQTT 5 PUBLISH properties with the message expiry set from the broadcast's expiry (None once expired)."""
    remaining = int((expires_at - now).total_seconds())
    if remaining <= 0:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = min(remaining, MAX_EXPIRY_INTERVAL)
    return props
