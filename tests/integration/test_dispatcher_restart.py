"""Kill the dispatcher process mid-dispatch: the restarted one resumes from the log; every device plays once."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from keng.domain.dispatch import Dispatch
from tests.integration.conftest import Mosquitto
from tests.integration.harness import Harness

pytestmark = pytest.mark.mqtt


def start_dispatcher(h: Harness, broker: Mosquitto) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keng.runtime.cli",
            "--data",
            str(h.data_dir),
            "--store",
            h.store_url,
            "dispatch",
            "run",
            "--broker",
            f"mqtt://127.0.0.1:{broker.port}",
            "--slots",
            "00:00-24:00",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "KENG_LOG_LEVEL": "warning"},
    )


async def test_a_killed_dispatcher_resumes_from_the_log_and_every_device_plays_once(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    h = Harness(tmp_path, mosquitto.address)
    fleet = await h.start_fleet(play_scale=0.3)
    proc = start_dispatcher(h, mosquitto)
    try:
        bid = h.broadcast("emergency")
        # kill it as soon as the first acks are recorded: mid-dispatch, with playback still going on
        await h.until(lambda: len(h.events(Dispatch.AcksRecorded)) >= 1, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert not h.closed(bid)
        proc = start_dispatcher(h, mosquitto)
        await h.until(lambda: h.closed(bid), timeout=60)
        d = h.dispatch_of(bid)
        assert d is not None and d.summary["played"] == d.summary["targeted"] == len(fleet.devices)
        assert all(dev.plays[str(d.id)] == 1 for dev in fleet.devices.values())
        opened = [e for e in h.events(Dispatch.Opened) if e.broadcast_id == bid]
        assert len(opened) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 10)
        await h.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_audio_rendered_after_the_first_send_does_not_change_what_a_resumed_dispatch_sends(
    tmp_path: Path, mosquitto: Mosquitto, sig: signal.Signals
) -> None:
    """The issue's sample: the audio lands after approval, the dispatcher restarts before the `played` acks; the
    resumed dispatch re-sends the item it first sent, so every device's `played` counts (none sha256-mismatch)."""
    h = Harness(tmp_path, mosquitto.address)
    fleet = await h.start_fleet(play_scale=0.5)
    proc = start_dispatcher(h, mosquitto)
    try:
        bid = h.broadcast("emergency")
        await h.until(lambda: len(h.events(Dispatch.AcksRecorded)) >= 1, timeout=30)
        # a better voice finishes after the emergency went out: a new speaker render of the same revision
        late = hashlib.sha256(b"a neural voice, rendered late").hexdigest()
        item = h.app.broadcast(bid)
        item.record_render(channel="speaker", asset_hash=late, duration_s=4.0, engine="coqui", content_sha256=late)
        h.app.save_changes(item)
        proc.send_signal(sig)
        await asyncio.to_thread(proc.wait, 10)
        d = h.dispatch_of(bid)
        assert d is not None and not d.closed
        assert not [c for c, a in d.states.items() if a["state"] == "played"]  # no speaker has finished yet
        proc = start_dispatcher(h, mosquitto)
        await h.until(lambda: h.closed(bid), timeout=60)
        d = h.dispatch_of(bid)
        assert d is not None
        assert d.summary["failed"] == 0, [a for a in d.states.values() if a["state"] == "failed"][:3]
        assert d.summary["played"] == d.summary["targeted"] == len(fleet.devices)
        assert all(dev.plays[str(d.id)] == 1 for dev in fleet.devices.values())
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 10)
        await h.close()
