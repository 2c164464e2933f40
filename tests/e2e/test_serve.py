"""`keng serve` as a user runs it: one process with the HTTP API, the dispatcher and an embedded MQTT broker.

Started on a free port over a fresh SQLite store; driven over HTTP; stopped with SIGTERM, which must end it cleanly.
"""

from __future__ import annotations

import signal
import time

import orjson
import pytest

from tests.exposition import with_an_empty_label
from tests.keng_process import KengHome


@pytest.fixture
def served(home: KengHome):  # type: ignore[no-untyped-def]
    home.run("init", "--sample")
    tokens = {h: home.run("token", "create", "--staff", h).stdout.split()[0] for h in ("lan.nguyen", "hung.tran")}
    secret = home.run("integration", "add", "city-source", "--jurisdiction", "01").stdout.split()[0]
    client = home.serve()
    assert home.proc is not None
    return client, tokens, secret, home.proc, home.log


def test_serve_accepts_signed_webhooks_dispatches_approved_broadcasts_and_stops_cleanly(served, home: KengHome) -> None:  # type: ignore[no-untyped-def]
    client, tokens, secret, proc, log = served
    body = orjson.dumps(
        {
            "title": "Cảnh báo cháy",
            "text": "Cháy tại chợ, đề nghị bà con tránh khu vực.",
            "priority": "emergency",
            "targets": {"areas": ["00598"]},
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
    scraped = client.request("GET", "/metrics").body
    exposition = scraped.decode()
    for metric in (
        "keng_http_requests_total",
        'keng_dispatch_queue_depth{priority="emergency"}',
        "keng_devices_online",
        'keng_webhook_outcomes_total{outcome="accepted",source="city-source"} 1.0',
        'keng_dispatcher_events_total{event="commands_published"}',
        "process_cpu_seconds_total",
    ):
        assert metric in exposition, metric
    assert with_an_empty_label(scraped) == []
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, log.read_text()
    # The human banner names where devices connect: the embedded broker's fixed address (KENG_BROKER_LISTEN).
    listen = home.env["KENG_BROKER_LISTEN"]
    assert f"Broker MQTT nhúng (embedded broker) mqtt://{listen}\n" in log.read_text()
