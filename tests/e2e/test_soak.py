"""bench/soak.py, short and light: the full `keng serve` (dispatcher, render processes, workers) with mosquitto and a
simulated fleet, under signed webhooks, a dispatch every 10 s and live-status streams for half a minute, must count no
error: every webhook accepted, every dispatch complete with every device's `played`, every stream up throughout and
carrying every dispatch's close, no process of the service or the fleet gone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson

from tests.integration.conftest import no_broker

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_half_a_minute_of_mixed_load_counts_no_error(tmp_path: Path) -> None:
    if shutil.which("mosquitto") is None:
        no_broker("the mosquitto binary is not installed (apt-get install mosquitto)")
    argv = ["--minutes", "0.5", "--devices", "100", "--webhook-rate", "20", "--streams", "4", "--json"]
    done = subprocess.run(
        [sys.executable, str(SOAK), *argv],
        env={**os.environ, "TMPDIR": str(tmp_path)},  # its data directory and broker config, kept with the test's
        capture_output=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr.decode()[-4000:]
    result = orjson.loads(done.stdout.splitlines()[-1])
    assert result["errors"] == 0, (
        result["errors_by_kind"],
        result["dispatch_failures"],
        result["stream_error_samples"],
    )
    # the load did happen: not an error count of nothing
    assert result["webhooks_ok"] == result["webhooks_sent"] == 600
    assert result["dispatches"] == result["dispatches_completed"] == 3
    assert set(result["dispatch_completion_s_by_priority"]) == {"emergency", "normal"}
    assert result["stream_connects"] == 4 and result["stream_messages"] > 4 * 600
    assert {"serve", "serve-render-process-1", "simulator", "simulator-devices-1", "broker"} <= set(result["rss"])
    assert result["serve_exit_status"] == 0
