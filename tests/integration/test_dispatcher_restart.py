"""Kill the dispatcher process mid-dispatch: the restarted one resumes from the log; every device plays once."""

from __future__ import annotations

import asyncio
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
