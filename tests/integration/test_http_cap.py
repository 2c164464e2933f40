"""CAP 1.2 over HTTP: signed ingest with idempotency, standing orders with ratification, and CAP/Atom/JSON out.

Runs on SQLite and PostgreSQL; every refusal is a precise 4xx and leaves the event count as it was.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from defusedxml import ElementTree

from keng.adapters.audio_store import encode_wav
from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.adapters.tts.espeak import EspeakSynthesizer
from keng.domain.standing_orders import parse_orders
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.services.access import add_integration, issue_token
from tests.http_server import Client, Reply, serve
from tests.outbound_servers import Answer, closed_port, http_answers, quiet
from tests.unit.cap_builders import SENDER, alert, area, info, reference

CAP = "/api/v1/cap"
CAP_TYPE = "application/cap+xml"
ORDERS = [
    {"name": "kttv-extreme-immediate", "senders": ["kttv"], "severities": ["Extreme"], "urgencies": ["Immediate"]}
]


@pytest.fixture
def cap_api(sample_app: Keng, tmp_path: Path) -> Iterator[tuple[Client, dict[str, str], Keng]]:
    secrets = SecretStore(tmp_path)
    creds = {
        "secret": add_integration(
            sample_app,
            secrets,
            name="kttv",
            kind="cap",
            jurisdiction=["00595", "00601"],
            by="admin",
            fetch_hosts=["localhost"],
            senders=[SENDER],
        ),
        "hung": issue_token(sample_app, staff="hung.tran", label="t", by="admin"),
        "ha": issue_token(sample_app, staff="ha.vu", label="t", by="admin"),
    }
    services = Services(
        app=sample_app,
        secrets=secrets,
        settings=load_settings(data_dir=str(tmp_path), environ={}),
        standing_orders=parse_orders(ORDERS),
        public_url="https://keng.example",
    )
    with serve(services) as client:
        yield client, creds, sample_app


def post(client: Client, doc: bytes, secret: str, n: int = 0) -> Reply:
    return client.signed(CAP, doc, secret, f"cap-{time.time_ns()}-{n}", content_type=CAP_TYPE)


def test_a_moderate_alert_waits_for_approval_and_is_published_after(cap_api) -> None:  # type: ignore[no-untyped-def]
    client, t, _ = cap_api
    english = info(language="en-US", severity="Moderate", urgency="Expected", headline="Flash flood warning")
    doc = alert(identifier="KTTV-1", infos=(info(severity="Moderate", urgency="Expected"), english))
    reply = post(client, doc, t["secret"])
    assert reply.status == 202, reply.body
    outcome = reply.json()
    assert outcome["action"] == "submitted"
    bid = outcome["broadcast_ids"][0]
    assert client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, t["ha"]).status == 200
    atom = client.request("GET", "/feeds/alerts.atom")
    assert atom.status == 200 and bid in atom.body.decode()
    feed = json.loads(client.request("GET", "/feeds/alerts.json").body)
    assert any("lũ quét" in item["content_text"] for item in feed["items"])
    cap = client.request("GET", f"/cap/{bid}.xml")
    assert cap.status == 200 and cap.headers["content-type"].startswith(CAP_TYPE)
    assert ElementTree.fromstring(cap.body).tag.endswith("alert")
    assert cap.body == doc  # the original, unrevised: every info block, in every language, as received
    again = post(client, doc, t["secret"], 1)
    assert again.status == 202 and again.json() == outcome
    assert again.headers["idempotent-replayed"] == "true"


def test_a_standing_order_approves_at_once_and_an_approver_ratifies(cap_api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = cap_api
    reply = post(client, alert(identifier="KTTV-2"), t["secret"])
    assert reply.status == 202 and reply.json()["action"] == "auto-approved"
    bid = reply.json()["broadcast_ids"][0]
    item = app.broadcast(UUID(bid))
    assert item.approvals[0]["rule"] == "kttv-extreme-immediate" and item.awaiting_ratification
    pending = client.json("GET", "/api/v1/broadcasts?unratified=1", None, t["hung"]).json()
    assert [b["id"] for b in pending] == [bid]
    assert pending[0]["ratify_by"] and pending[0]["ratification_overdue"] is False
    assert client.json("POST", f"/api/v1/broadcasts/{bid}/ratify", None, t["hung"]).status == 200
    assert client.json("GET", "/api/v1/broadcasts?unratified=1", None, t["hung"]).json() == []


def test_cancel_references_the_alert_and_stops_it(cap_api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = cap_api
    first = alert(identifier="KTTV-3", sent="2026-11-27T08:00:00+07:00")
    bid = post(client, first, t["secret"]).json()["broadcast_ids"][0]
    cancel = alert(
        identifier="KTTV-3C",
        msg_type="Cancel",
        references=reference("kttv@hanoi.gov.vn", "KTTV-3", "2026-11-27T08:00:00+07:00"),
    )
    reply = post(client, cancel, t["secret"])
    assert reply.status == 202 and reply.json()["action"] == "cancelled"
    assert app.broadcast(UUID(bid)).state == "cancelled"


def test_bad_cap_is_refused_precisely_and_stores_nothing(cap_api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = cap_api
    secret = t["secret"]
    before = app.max_position()
    dtd = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><alert>&x;</alert>'
    assert post(client, dtd, secret).status == 400
    laughs = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><alert>&b;</alert>'
    assert post(client, laughs, secret).status == 400
    external = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><alert>&e;</alert>'
    assert post(client, external, secret).status == 400
    missing = alert(identifier="KTTV-4").replace(b"<status>Actual</status>", b"")
    reply = post(client, missing, secret)
    assert reply.status == 422 and "status" in reply.json()["detail"]
    unknown_ward = alert(identifier="KTTV-5", infos=(info(areas=(area(codes=("99999",)),)),))
    assert post(client, unknown_ward, secret).status == 422
    outside = alert(identifier="KTTV-6", infos=(info(areas=(area(codes=("00598",)),)),))
    reply = post(client, outside, secret)
    assert reply.status == 422 and "00598" in reply.json()["detail"]
    orphan = alert(
        identifier="KTTV-7", msg_type="Update", references="kttv@hanoi.gov.vn,NOPE,2026-01-01T00:00:00+07:00"
    )
    assert post(client, orphan, secret).status == 422
    unsigned = client.request("POST", CAP, alert(identifier="KTTV-8"), {"Content-Type": CAP_TYPE})
    assert unsigned.status == 401
    wrong_type = client.signed(CAP, alert(identifier="KTTV-9"), secret, "x", content_type="application/json")
    assert wrong_type.status == 415
    assert app.max_position() == before
    first = alert(identifier="KTTV-10", sent="2026-11-27T09:00:00+07:00")
    assert post(client, first, secret).status == 202
    altered = alert(identifier="KTTV-10", sent="2026-11-27T09:00:00+07:00", infos=(info(headline="Khác hẳn"),))
    reply = post(client, altered, secret)
    assert reply.status == 422 and "different body" in reply.json()["detail"]


def burst(client: Client, doc: bytes, secret: str, n: int) -> list[Reply]:
    """The same CAP document sent by `n` threads at once (each with its own transport id), over `n` connections."""
    start = threading.Barrier(n)

    def send(i: int) -> Reply:
        start.wait()
        return client.signed(CAP, doc, secret, f"dup-{time.time_ns()}-{i}", content_type=CAP_TYPE)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(send, range(n)))


def test_concurrent_duplicates_all_get_the_original_answer(cap_api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = cap_api
    threads, rounds = 12, 3
    for r in range(rounds):
        sent = f"2026-11-27T1{r}:00:00+07:00"
        original = alert(identifier=f"DUP-{r}", sent=sent, infos=(info(severity="Moderate", urgency="Expected"),))
        ref = reference(SENDER, f"DUP-{r}", sent)
        update = alert(identifier=f"DUP-{r}-U", msg_type="Update", references=ref, infos=(info(headline="Cập nhật"),))
        cancel = alert(identifier=f"DUP-{r}-C", msg_type="Cancel", references=ref)
        for doc, action in ((original, "submitted"), (update, "revised"), (cancel, "cancelled")):
            before = app.max_position()
            replies = burst(client, doc, t["secret"], threads)
            assert [r.status for r in replies] == [202] * threads, [r.body for r in replies if r.status != 202]
            fresh = [r for r in replies if "idempotent-replayed" not in r.headers]
            assert len(fresh) == 1 and fresh[0].json()["action"] == action
            assert all(r.json() == fresh[0].json() for r in replies)  # the replays carry the original answer
            assert all(r.headers["idempotent-replayed"] == "true" for r in replies if r is not fresh[0])
            bid = UUID(fresh[0].json()["broadcast_ids"][0])
            written = [e for _, e in app.read_events(before)]
            assert sum(type(e).__name__ == "Accepted" for e in written) == 1  # one Inbound record
            assert {e.originator_id for e in written} == {bid, written[-1].originator_id}
        assert app.broadcast(bid).state == "cancelled" and app.broadcast(bid).revision == 1


def test_an_inline_recording_becomes_the_speaker_audio(cap_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, t, app = cap_api
    wav = encode_wav(EspeakSynthesizer().synthesize(["Cảnh báo lũ quét"], voice="vi", speed=1.0))
    resource = (
        "<resource><resourceDesc>Bản tin âm thanh</resourceDesc><mimeType>audio/x-wav</mimeType>"
        f"<derefUri>{base64.b64encode(wav).decode()}</derefUri><digest>{hashlib.sha1(wav).hexdigest()}</digest>"
        "</resource>"
    )
    reply = post(client, alert(identifier="KTTV-20", infos=(info(severity="Moderate", extra=resource),)), t["secret"])
    assert reply.status == 202, reply.body
    bid = UUID(reply.json()["broadcast_ids"][0])
    renders, failures = recording_outcome(app, bid)
    assert renders, failures
    audio = client.request("GET", f"/audio/{renders[0]['asset_hash']}", token=t["hung"])
    assert audio.status == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert hashlib.sha256(audio.body).hexdigest() == renders[0]["content_sha256"]


def recording_outcome(app: Keng, bid: UUID) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The broadcast's `cap-resource` renders and render failures, once either is recorded (within 15 s)."""
    deadline = time.time() + 15
    while True:
        item = app.broadcast(bid)
        renders = [r for r in item.renders if r["engine"] == "cap-resource"]
        failures = [f for f in item.render_failures if f["engine"] == "cap-resource"]
        if renders or failures or time.time() > deadline:
            return renders, failures
        time.sleep(0.1)


def post_with_audio_uri(client: Client, secret: str, identifier: str, uri: str) -> UUID:
    resource = (
        "<resource><resourceDesc>Bản tin âm thanh</resourceDesc><mimeType>audio/x-wav</mimeType>"
        f"<uri>{uri}</uri></resource>"
    )
    reply = post(client, alert(identifier=identifier, infos=(info(severity="Moderate", extra=resource),)), secret)
    assert reply.status == 202, reply.body  # type: ignore[attr-defined]
    return UUID(reply.json()["broadcast_ids"][0])  # type: ignore[attr-defined]


def test_a_resource_uri_on_loopback_gets_no_connection_and_a_generic_reason(cap_api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = cap_api
    with quiet() as listener:
        uris = [f"http://127.0.0.1:{listener.port}/a.wav", f"http://127.0.0.1:{closed_port()}/a.wav"]
        bids = [post_with_audio_uri(client, t["secret"], f"KTTV-3{n}", uri) for n, uri in enumerate(uris)]
        outcomes = [recording_outcome(app, bid) for bid in bids]
        assert listener.connections() == 0
    # An open port and a closed one read the same: the log and the events are no port scanner.
    assert [(r, [f["reason"] for f in fails]) for r, fails in outcomes] == [([], ["address not allowed"])] * 2


def test_an_allowlisted_host_serves_the_recording_and_a_redirect_off_it_is_refused(cap_api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = cap_api
    wav = encode_wav(EspeakSynthesizer().synthesize(["Cảnh báo lũ quét"], voice="vi", speed=1.0))
    with quiet() as other:
        away = f"http://127.0.0.1:{other.port}/a.wav"  # the same machine, but not by an allowlisted name
        answers = {"/a.wav": Answer(body=wav), "/away": Answer(302, headers=(("Location", away),))}
        with http_answers(answers) as (port, requested):
            good = post_with_audio_uri(client, t["secret"], "KTTV-40", f"http://localhost:{port}/a.wav")
            bad = post_with_audio_uri(client, t["secret"], "KTTV-41", f"http://localhost:{port}/away")
            (renders, _), (_, failures) = recording_outcome(app, good), recording_outcome(app, bad)
        assert other.connections() == 0
    assert len(renders) == 1 and [f["reason"] for f in failures] == ["address not allowed"]
    assert sorted(requested) == ["/a.wav", "/away"]
