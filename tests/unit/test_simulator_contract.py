"""Every message the simulated device (the reference device, runtime/demo/simulator.py) can send follows
docs/asyncapi.json: each ack state, `online`/`offline` statuses and the last will, built by the simulator itself while
it handles commands that keng's own builders made (adapters/mqtt/protocol.py); and every such command follows it too.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.broker import BrokerAddress
from keng.adapters.mqtt.topics import Topics
from keng.adapters.mqtt.wire import WireLink
from keng.domain.values import AckState
from keng.runtime.demo.simulator import DeviceSpec, FleetOptions, SimDevice, device_will
from tests.contract import contract

TOPICS = Topics("site-a/keng")
SPEAKER, BOARD, TEXT_BOARD = "00595-T01-IP1", "00595-T10-EB1", "00595-T01-TX1"
AREAS = ("00595-T01", "00595", "021")
TEXT = "Nước sông đang lên nhanh, đề nghị bà con di chuyển lên chỗ cao."
IMAGE = b"\x89PNG a rendered page"
LINK = "https://keng.example.vn/{}?exp=1795863600&sig=2c1f0e9d8b7a6c5d4e3f2a1b0c9d8e7f"


class Recorder:
    """Stands in for the device's MQTT connection: keeps what it publishes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, payload: bytes) -> None:
        self.sent.append((topic, payload))

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.sent.append((topic, payload))

    async def close(self) -> None:
        pass


def device(
    code: str, cls: str, *, display: tuple[int, int] | None = None, **options: Any
) -> tuple[SimDevice, Recorder]:
    spec = DeviceSpec(code, cls, AREAS, display)
    fleet_options = FleetOptions(**{"play_scale": 0.0001, **options})
    sim = SimDevice(spec, BrokerAddress("127.0.0.1", 1), fleet_options, random.Random(1), TOPICS)
    recorder = Recorder()
    sim.link = cast(WireLink, recorder)

    async def fetch(url: str) -> bytes:
        return IMAGE

    sim.fetch = fetch
    return sim, recorder


def command(
    cls: str,
    *,
    rank: int = 0,
    expires_in_s: float = 600,
    drill: bool = False,
    variants: bool = True,
    dispatch: str = "9f0c6a52-3f43-4a8e-9a38-3c8b6d6f2a11",
) -> dict[str, Any]:
    now = datetime.now(UTC)
    image_sha = hashlib.sha256(IMAGE).hexdigest()
    return proto.play_command(
        cls=cls, broadcast_id="5b6f8e1e-2d7a-4a8e-8f1e-0c2b7d9a4e55", dispatch_id=dispatch, seq=1,
        priority=("emergency", "priority", "normal")[rank], rank=rank, title="Cảnh báo lũ", text=TEXT,
        text_sha256=hashlib.sha256(TEXT.encode()).hexdigest(), repeats=3, volume=100,
        expires_at=now + timedelta(seconds=expires_in_s), issued_at=now, drill=drill,
        audio=proto.audio_ref(url=LINK.format("audio/a1b2"), sha256="3f" * 32, duration_s=8.6),
        variants=[proto.board_variant(width=192, height=96, image_url=LINK.format(f"board/{image_sha}.png"),
                                      image_sha256=image_sha, layout_url=LINK.format("board/ab.json"),
                                      layout_sha256="ab" * 32)] if variants else None,
    )  # fmt: skip


def stop(cls: str, dispatch: str) -> dict[str, Any]:
    """`stop` (speaker) or `clear` (board), after item 1."""
    expires_at = datetime.now(UTC) + timedelta(minutes=5)
    broadcast = "5b6f8e1e-2d7a-4a8e-8f1e-0c2b7d9a4e55"
    return proto.stop_command(cls=cls, broadcast_id=broadcast, dispatch_id=dispatch, seq=2, expires_at=expires_at)


def deliver(sim: SimDevice, cls: str, message: dict[str, Any]) -> str:
    """Hand a command to the device as the broker would, after checking it against the contract too."""
    topic, payload = TOPICS.endpoint(cls, sim.code), proto.encode(message)
    assert contract().check(topic, payload) is None, (topic, contract().check(topic, payload))
    sim._on_message(topic, payload)
    return str(message["dispatch"])


async def until(sent: Recorder, state: str, reason: str | None = None, timeout_s: float = 10.0) -> None:
    """Wait (the device's timers run) until it has sent an ack in that state (and with that reason)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not any(
        (m := proto.decode(p)).get("state") == state and (reason is None or m.get("reason") == reason)
        for t, p in sent.sent
        if "/ack/" in t
    ):
        assert asyncio.get_running_loop().time() < deadline, f"no {state} ack in {sent.sent}"
        await asyncio.sleep(0.01)


def checked(recorder: Recorder) -> list[dict[str, Any]]:
    """Every message the device sent, each checked against the contract; the decoded payloads."""
    for topic, payload in recorder.sent:
        assert contract().check(topic, payload) is None, (topic, payload, contract().check(topic, payload))
    return [proto.decode(payload) for _, payload in recorder.sent]


async def test_every_ack_state_and_status_the_simulator_sends_follows_the_contract() -> None:
    speaker, said = device(SPEAKER, proto.SPEAKER)
    await speaker._announce(cast(WireLink, said))  # online
    normal = deliver(
        speaker, proto.SPEAKER, command(proto.SPEAKER, rank=2, dispatch="00000000-0000-4000-8000-0000000000a1")
    )
    urgent = deliver(
        speaker, proto.SPEAKER, command(proto.SPEAKER, rank=0, dispatch="00000000-0000-4000-8000-0000000000a2")
    )
    assert ("interrupted", normal) in [(w, d) for w, d, _ in speaker.journal]
    deliver(
        speaker, proto.SPEAKER, command(proto.SPEAKER, expires_in_s=-1, dispatch="00000000-0000-4000-8000-0000000000a3")
    )
    deliver(speaker, proto.SPEAKER, command(proto.SPEAKER, dispatch=urgent))  # a resend: re-acknowledged
    await until(said, "played")
    deliver(speaker, proto.SPEAKER, command(proto.SPEAKER, dispatch=urgent))  # a resend after `played`
    deliver(speaker, proto.SPEAKER, stop(proto.SPEAKER, urgent))
    await speaker.go_offline()  # offline, reason powered-off

    declining, declined = device(f"{SPEAKER}X", proto.SPEAKER, drill_mode_rate=0.0)
    deliver(declining, proto.SPEAKER, command(proto.SPEAKER, drill=True))
    faulty, faults = device(f"{SPEAKER}F", proto.SPEAKER, fail_rate=1.0)
    deliver(faulty, proto.SPEAKER, command(proto.SPEAKER))
    waiting, waited = device(f"{SPEAKER}W", proto.SPEAKER, play_scale=0.01)  # the first plays for 0.26 s
    deliver(
        waiting,
        proto.SPEAKER,
        command(proto.SPEAKER, rank=2, expires_in_s=600, dispatch="00000000-0000-4000-8000-0000000000b1"),
    )
    deliver(
        waiting,
        proto.SPEAKER,
        command(proto.SPEAKER, rank=2, expires_in_s=0.01, dispatch="00000000-0000-4000-8000-0000000000b2"),
    )
    await until(waited, "failed", "expired-while-waiting")  # the second expired while it waited for the first

    board, shown = device(BOARD, proto.BOARD, display=(192, 96))
    clear_me = deliver(board, proto.BOARD, command(proto.BOARD, dispatch="00000000-0000-4000-8000-0000000000c1"))
    text_board, texts = device(TEXT_BOARD, proto.BOARD)
    deliver(text_board, proto.BOARD, command(proto.BOARD, variants=False, expires_in_s=0.05))
    await until(shown, "displayed")
    deliver(board, proto.BOARD, stop(proto.BOARD, clear_me))
    await until(shown, "cleared")  # on `clear`
    await until(texts, "cleared")  # at expiry

    messages = [m for r in (said, declined, faults, waited, shown, texts) for m in checked(r)]
    states = {m["state"] for m in messages if "dispatch" in m}
    assert states == set(AckState), set(AckState) - states  # every ack state the protocol has, each one valid
    reasons = {m.get("reason") for m in messages if m.get("state") == "failed"}
    assert reasons == {"expired", "drill-mode-off", "amplifier-fault", "expired-while-waiting"}
    assert {m["state"] for m in messages if "dispatch" not in m} == {"online", "offline"}
    image_sha = hashlib.sha256(IMAGE).hexdigest()
    text_sha = hashlib.sha256(TEXT.encode()).hexdigest()
    assert {m["sha256"] for m in checked(shown) if m["state"] == "displayed"} == {image_sha}
    assert {m["sha256"] for m in checked(texts) if m["state"] == "displayed"} == {text_sha}


@pytest.mark.parametrize("topics", [Topics(), TOPICS])
def test_the_last_will_and_a_fault_follow_the_contract(topics: Topics) -> None:
    will = device_will(SPEAKER, topics)
    assert will.retain and will.qos == 1
    assert contract().check(will.topic, will.payload) is None
    fault = proto.status_message(SPEAKER, "fault", datetime.now(UTC), fault="amplifier-overheat")
    assert contract().check(topics.status(SPEAKER), proto.encode(fault)) is None


def test_the_ack_refused_notice_keng_sends_follows_the_contract() -> None:
    for seq, state in ((7, "played"), (None, None)):
        notice = proto.ack_refused(dispatch_id="9f0c6a52-3f43-4a8e-9a38-3c8b6d6f2a11", seq=seq, state=state,
                                   reason="bad-sequence")  # fmt: skip
        assert contract().check(TOPICS.endpoint(proto.BOARD, BOARD), proto.encode(notice)) is None
