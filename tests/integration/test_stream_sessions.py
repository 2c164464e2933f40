"""The live stream (`GET /api/v1/stream`) lives only as long as its token, and carries only what its holder may read.

Over real HTTP on SQLite and PostgreSQL: a revocation made by another process (the CLI) ends an open stream within
5 s with a last `revoked` message; a ward's drafter sees their ward's and district-wide events and not another ward's.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.domain.dispatch import Dispatch
from keng.domain.endpoint import Endpoint
from keng.projections.catalog import Catalog
from keng.runtime.config import load_settings
from keng.runtime.http import routes_stream
from keng.runtime.http.routes_stream import StreamSession
from keng.runtime.http.services import Services
from keng.runtime.http.stream_scope import StreamScope
from keng.services import broadcasts
from keng.services.access import authenticate, grant_role, issue_token, revoke_tokens
from tests.http_server import Client
from tests.integration.test_http_api import DRAFT, api  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parents[2]
WARD_A, WARD_B, DISTRICT = "00595", "00601", "021"


class SseReader:
    """An open SSE connection read message by message (event name and JSON data) on a background thread."""

    def __init__(self, port: int, token: str, since: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        self.conn.request("GET", f"/api/v1/stream?since={since}", headers={"Authorization": f"Bearer {token}"})
        self.sock = self.conn.sock
        self.reply = self.conn.getresponse()
        assert self.reply.status == 200, self.reply.read()
        self.messages: list[tuple[str, Any]] = []
        self.closed_at: float | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event = "message"
        try:
            while line := self.reply.readline():  # decodes the chunked body: its end is the end of the stream
                text = line.decode().rstrip("\r\n")
                if text.startswith("event: "):
                    event = text[7:]
                elif text.startswith("data: "):
                    self.messages.append((event, orjson.loads(text[6:])))
                    event = "message"
        except (OSError, ValueError, http.client.HTTPException):
            return  # the test closed the connection (or it timed out): not an end sent by the server
        self.closed_at = time.monotonic()

    def wait_closed(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return self.closed_at is not None

    def broadcast_ids(self) -> set[str]:
        return {data["broadcast_id"] for _, data in self.messages if "broadcast_id" in data}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # ends the reader's wait; then the reader is gone before the close
        self._thread.join(5)
        self.conn.close()


def keng_cli(store_url: str, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `keng` command in its own process, on the test's store."""
    return subprocess.run(
        [sys.executable, "-m", "keng.runtime.cli", "--data", str(data), "--store", store_url, *args],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "KENG_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_token_revoked_by_another_process_ends_its_open_stream_within_5_s(
    api: tuple[Client, dict[str, str], Keng],  # noqa: F811
    store_url: str,
    tmp_path: Path,
) -> None:
    client, t, app = api
    reader = SseReader(client.port, t["tuan.do"], app.max_position())
    other = SseReader(client.port, t["mai.le"], app.max_position())  # another holder's stream goes on
    try:
        done = keng_cli(store_url, tmp_path, "token", "revoke", "--staff", "tuan.do", "--as", "admin")
        assert done.returncode == 0, done.stderr
        revoked_at = time.monotonic()
        assert reader.wait_closed(5.0), "the stream was still open 5 s after its token was revoked"
        assert reader.closed_at is not None and reader.closed_at - revoked_at < 5.0
        event, data = reader.messages[-1]
        assert event == "revoked" and "revoked" in data["reason"]
        assert not other.wait_closed(0.5)
        client.json("POST", "/api/v1/broadcasts", DRAFT, t["lan.nguyen"])
        deadline = time.monotonic() + 5
        while not other.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other.messages and other.messages[-1][1]["type"] == "Broadcast.Drafted"
        assert client.request("GET", "/api/v1/stream", token=t["tuan.do"]).status == 401
    finally:
        reader.close()
        other.close()


def test_a_revocation_the_stream_does_not_read_is_caught_by_the_periodic_check(
    sample_app: Keng, tmp_path: Path
) -> None:
    app = sample_app
    token = issue_token(app, staff="tuan.do", label="stream", by="admin")
    services = Services(
        app=app, secrets=SecretStore(tmp_path), settings=load_settings(data_dir=str(tmp_path), environ={})
    )
    try:
        session = StreamSession.of_token(services, token, authenticate(app, token))
        revoke_tokens(app, staff="tuan.do", by="admin")  # the session's token, tuan.do's only one
        after = app.max_position()  # the stream is already past the revocation: only the re-check can see it
        assert session.next_batch(after).ended is None  # checked less than REAUTH_S ago
        session.checked_at -= routes_stream.REAUTH_S
        assert session.next_batch(after).ended == "the bearer token was revoked"
    finally:
        services.committer.close()


def test_a_role_change_read_in_the_log_applies_to_the_stream_at_once(sample_app: Keng, tmp_path: Path) -> None:
    app = sample_app
    token = issue_token(app, staff="ha.vu", label="stream", by="admin")  # an approver of ward 00595
    settings = load_settings(data_dir=str(tmp_path), environ={})
    services = Services(app=app, secrets=SecretStore(tmp_path), settings=settings)
    try:
        session = StreamSession.of_token(services, token, authenticate(app, token))
        start = app.max_position()
        draft = {"title": "Thông báo", "text": "Nội dung.", "priority": "normal"}
        broadcasts.draft(app, by="lan.nguyen", target_areas=[WARD_B], **draft)
        assert session.next_batch(start).messages == []
        middle = app.max_position()
        grant_role(app, "ha.vu", "auditor", by="admin")
        foreign = broadcasts.draft(app, by="lan.nguyen", target_areas=[WARD_B], **draft)
        batch = session.next_batch(middle)  # well within REAUTH_S: the Staff event itself triggers the check
        assert batch.ended is None and [m["broadcast_id"] for _, m in batch.messages] == [str(foreign)]
    finally:
        services.committer.close()


def test_a_ward_drafter_streams_their_ward_and_district_wide_events_but_not_another_wards(
    api: tuple[Client, dict[str, str], Keng],  # noqa: F811
) -> None:
    client, t, app = api
    start = app.max_position()
    ward = SseReader(client.port, t["tuan.do"], start)
    auditor = SseReader(client.port, t["mai.le"], start)
    try:
        made = {}
        for name, token, areas in (
            ("own", "tuan.do", [WARD_A]),
            ("foreign", "lan.nguyen", [WARD_B]),
            ("district", "lan.nguyen", [DISTRICT]),
            ("last", "tuan.do", [WARD_A]),
        ):
            reply = client.json("POST", "/api/v1/broadcasts", {**DRAFT, "targets": {"areas": areas}}, t[token])
            assert reply.status == 201, reply.body
            made[name] = reply.json()["id"]
            client.json("POST", f"/api/v1/broadcasts/{made[name]}/submit", None, t[token])
        deadline = time.monotonic() + 10
        while not {made["last"]} <= ward.broadcast_ids() & auditor.broadcast_ids() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # anything else on its way arrives
        assert ward.broadcast_ids() == {made["own"], made["district"], made["last"]}
        assert auditor.broadcast_ids() == set(made.values())
        assert [d["type"] for _, d in ward.messages if d["broadcast_id"] == made["own"]] == [
            "Broadcast.Drafted",
            "Broadcast.SubmittedForApproval",
        ]
    finally:
        ward.close()
        auditor.close()


def _dispatch(app: Keng, bid: UUID, endpoints: list[Endpoint]) -> UUID:
    d = Dispatch.open(
        broadcast_id=bid,
        wave=1,
        priority="normal",
        targets=[e.code for e in endpoints],
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        drill=False,
    )
    d.record_acks([{"endpoint": e.code, "state": "received", "at": datetime.now(UTC).isoformat()} for e in endpoints])
    d.close({"targeted": len(endpoints)})
    app.save_new(d, what="dispatch")
    return d.id


def test_dispatch_and_device_events_follow_their_broadcast_and_ward_with_or_without_history(sample_app: Keng) -> None:
    app = sample_app
    start = app.max_position()
    catalog = Catalog().fold(app.read_events())
    in_a, in_b = catalog.endpoints(ward=WARD_A)[:2], catalog.endpoints(ward=WARD_B)[:2]
    draft = {"title": "Thông báo", "text": "Nội dung.", "priority": "normal"}
    bid_a = broadcasts.draft(app, by="tuan.do", target_areas=[WARD_A], **draft)
    bid_b = broadcasts.draft(app, by="lan.nguyen", target_areas=[WARD_B], **draft)
    a_side = {bid_a, _dispatch(app, bid_a, in_a), *(e.id for e in in_a)}
    _dispatch(app, bid_b, in_b)
    for endpoint in (*in_a, *in_b):
        member = app.load(Endpoint, endpoint.id, "endpoint")
        assert member.went_offline()
        app.save_changes(member)
    events = [e for _, e in app.read_events(start)]
    expected = [e.originator_id in a_side for e in events]
    assert sum(expected) == 1 + 3 + len(in_a)  # drafted; opened, acks, closed; offline

    visibility = app.visibility_of(app.staff("tuan.do"))
    learnt = StreamScope(app, visibility)  # from the start: facts learnt from the events
    assert [learnt.admits(e) for e in events] == expected
    looked_up = StreamScope(app, visibility)  # started after the drafts and openings: facts looked up in the store
    later = [(e, ok) for e, ok in zip(events, expected, strict=True) if type(e).__name__ not in ("Drafted", "Opened")]
    assert [looked_up.admits(e) for e, _ in later] == [ok for _, ok in later]
    auditor = StreamScope(app, app.visibility_of(app.staff("mai.le")))
    assert all(auditor.admits(e) for e in events)


def test_a_streams_scope_remembers_a_bounded_number_of_broadcasts_and_reads_a_forgotten_one_again(
    sample_app: Keng,
) -> None:
    app = sample_app
    start = app.max_position()
    draft = {"title": "Thông báo", "text": "Nội dung.", "priority": "normal"}
    mine = [broadcasts.draft(app, by="tuan.do", target_areas=[WARD_A], **draft) for _ in range(15)]
    others = [broadcasts.draft(app, by="lan.nguyen", target_areas=[WARD_B], **draft) for _ in range(15)]
    scope = StreamScope(app, app.visibility_of(app.staff("tuan.do")), keep=8)
    events = [e for _, e in app.read_events(start)]
    assert [scope.admits(e) for e in events] == [e.originator_id in mine for e in events]
    assert max(len(scope._scopes), len(scope._verdicts), len(scope._owners), len(scope._wards)) <= 8
    later = app.max_position()
    for bid in (mine[0], others[0]):  # long forgotten by this stream: their scopes are read again from the store
        broadcasts.submit(app, bid, by="tuan.do" if bid == mine[0] else "lan.nguyen")
    assert [scope.admits(e) for _, e in app.read_events(later)] == [True, False]
    assert len(scope._scopes) <= 8
