"""`keng serve` as a user runs it: one process with the HTTP API, the dispatcher and an embedded MQTT broker.

Started on a free port over a fresh SQLite store; driven over HTTP; stopped with SIGTERM, which must end it cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.http_server import Client

KENG = [sys.executable, "-m", "runtime.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {**os.environ, "KENG_DATA": str(tmp_path), "KENG_LOG_FORMAT": "json", "KENG_LOG_LEVEL": "info"}
    env.pop("KENG_MQTT", None)
    run = lambda *a: subprocess.run([*KENG, *a], env=env, check=True, capture_output=True, text=True)  # noqa: E731
    run("init", "--sample")
    tokens = {h: run("token", "create", "--staff", h).stdout.split()[0] for h in ("lan.nguyen", "hung.tran")}
    secret = run("integration", "add", "city-source", "--jurisdiction", "021").stdout.split()[0]
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*KENG, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    client = Client(port)
    deadline = time.time() + 30
    while True:
        try:
            if client.request("GET", "/readyz").status == 200:
                break
        except OSError:
            pass
        assert proc.poll() is None and time.time() < deadline, (tmp_path / "serve.log").read_text()
        time.sleep(0.2)
    yield client, tokens, secret, proc, tmp_path / "serve.log"
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_serve_accepts_signed_webhooks_dispatches_approved_broadcasts_and_stops_cleanly(served) -> None:  # type: ignore[no-untyped-def]
    client, tokens, secret, proc, log = served
    body = orjson.dumps(
        {
            "title": "Cảnh báo cháy",
            "text": "Cháy tại chợ, đề nghị bà con tránh khu vực.",
            "priority": "emergency",
            "targets": {"areas": ["00595"]},
        }
    )
    accepted = client.signed("/api/v1/hooks/city-source", body, secret, "e2e-1")
    assert accepted.status == 202, accepted.body
    bid = accepted.json()["broadcast_id"]
    approved = client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, tokens["hung.tran"])
    assert approved.status == 200 and approved.json()["state"] == "approved"
    deadline = time.time() + 30
    state = "approved"
    while time.time() < deadline and state == "approved":
        time.sleep(0.3)
        state = client.json("GET", f"/api/v1/broadcasts/{bid}", None, tokens["lan.nguyen"]).json()["state"]
    assert state in ("dispatching", "completed"), log.read_text()
    # The render worker produced the speaker audio; staff (and devices, by signed link) can fetch it.
    deadline = time.time() + 30
    renders: list[dict[str, object]] = []
    while time.time() < deadline and not renders:
        view = client.json("GET", f"/api/v1/broadcasts/{bid}", None, tokens["lan.nguyen"]).json()
        renders = [r for r in view["renders"] if r["channel"] == "speaker"]
        time.sleep(0.3)
    assert renders and renders[0]["content_sha256"], log.read_text()
    audio = client.request("GET", f"/audio/{renders[0]['asset_hash']}", token=tokens["lan.nguyen"])
    assert audio.status == 200 and audio.headers["content-type"] == "audio/mpeg"
    exposition = client.request("GET", "/metrics").body.decode()
    for metric in (
        "keng_http_requests_total",
        'keng_dispatch_queue_depth{priority="emergency"}',
        "keng_devices_online",
        'keng_webhook_outcomes_total{outcome="accepted",source="city-source"} 1.0',
    ):
        assert metric in exposition, metric
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, log.read_text()
