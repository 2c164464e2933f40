"""The device protocol end to end, as a device maker meets it: `keng serve` on a mosquitto, `keng simulate` as the
fleet, an emergency approved over HTTP. Every MQTT message either side sends follows docs/asyncapi.json (the
`contract_tap` fixture checks them at teardown), the devices' last wills included (the fleet is killed at the end);
the service serves that document; and what the schemas cannot say holds too: the signed audio URL of a `play`
downloads without credentials and hashes to `audio.sha256`, a forged signature is refused, and `text_sha256` is the
hash of `text`."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from urllib.parse import urlsplit

import orjson

from keng.adapters.mqtt.asyncapi import DEFAULT_ROOT, asyncapi_document
from tests.contract import Taps
from tests.integration.conftest import Mosquitto
from tests.keng_process import KENG, KengHome

EMERGENCY = {
    "title": "Cảnh báo lũ",
    "text": "Nước sông đang lên nhanh, đề nghị bà con di chuyển lên chỗ cao.",
    "priority": "emergency",
    "targets": {"areas": ["00598"]},
}


def test_keng_and_the_simulated_fleet_speak_the_documented_protocol(
    home: KengHome, mosquitto: Mosquitto, contract_tap: Taps
) -> None:
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    home.run("init", "--sample")
    tokens = {h: home.run("token", "create", "--staff", h).stdout.split()[0] for h in ("lan.nguyen", "hung.tran")}
    client = home.serve("--broker", url)
    fleet = subprocess.Popen(
        [*KENG, "simulate", "--broker", url, "--play-scale", "0.001"],
        env=home.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its worker processes too are killed below
    )
    try:
        assert fleet.stdout is not None
        ready = fleet.stdout.readline().decode()
        assert ready.startswith("ready "), ready
        served = client.request("GET", "/asyncapi.json")
        assert served.status == 200 and served.headers["content-type"].startswith("application/json")
        assert served.json() == asyncapi_document(DEFAULT_ROOT)

        bid = client.json("POST", "/api/v1/broadcasts", EMERGENCY, tokens["lan.nguyen"]).json()["id"]
        assert client.json("POST", f"/api/v1/broadcasts/{bid}/submit", None, tokens["lan.nguyen"]).status == 200
        assert client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, tokens["hung.tran"]).status == 200
        deadline, state = time.time() + 60, ""
        while time.time() < deadline and state != "completed":
            time.sleep(0.3)
            state = client.json("GET", f"/api/v1/broadcasts/{bid}", None, tokens["lan.nguyen"]).json()["state"]
        assert state == "completed", home.log.read_text()[-3000:]

        commands = [orjson.loads(p) for t, p in contract_tap.seen if "/cmd/" in t]
        plays = [c for c in commands if c.get("op") == "play" and c.get("broadcast") == bid]
        assert plays, commands[:3]
        for command in plays + [c for c in commands if c.get("op") == "display" and c.get("broadcast") == bid]:
            assert command["text_sha256"] == hashlib.sha256(command["text"].encode()).hexdigest()
        audio = plays[0]["audio"]
        assert audio and audio["url"], plays[0]
        link = urlsplit(audio["url"])
        fetched = client.request("GET", f"{link.path}?{link.query}")  # a device has no token: the link is signed
        assert fetched.status == 200 and hashlib.sha256(fetched.body).hexdigest() == audio["sha256"]
        forged = client.request("GET", f"{link.path}?{link.query[:-1]}{'0' if link.query[-1] != '0' else '1'}")
        assert forged.status == 403
        # The fleet dies without a word: the broker publishes every device's last will.
        os.killpg(fleet.pid, signal.SIGKILL)
        fleet.wait(20)
        deadline = time.time() + 20
        while time.time() < deadline and not any(b"last-will" in p for t, p in contract_tap.seen if "/status/" in t):
            time.sleep(0.1)
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGKILL)
            fleet.wait(20)
        home.stop()
    acks = [orjson.loads(p) for t, p in contract_tap.seen if "/ack/" in t and "/ack/~" not in t]
    assert {a["state"] for a in acks} >= {"received", "playing", "played", "displayed"}
    statuses = [orjson.loads(p) for t, p in contract_tap.seen if "/status/" in t and p]
    assert {s["state"] for s in statuses} == {"online", "offline"}
    assert any(s.get("reason") == "last-will" for s in statuses)
