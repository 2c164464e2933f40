"""Citizen feedback end to end (the app's signed message -> triage -> reply pushed back to the app, verified with the
reference `standardwebhooks` library) and bulletins pushed to ward portals (retried after a 500, withdrawn on
cancel), over real HTTP: keng's service on one loopback port, the receivers real aiohttp servers on free ports."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from aiohttp import web
from PIL import Image
from standardwebhooks.webhooks import Webhook

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.domain.push import BULLETIN, REPLY, WITHDRAWN, Push
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.runtime.workers.pusher import KEEP_DELIVERED, Pusher
from keng.services import broadcasts
from keng.services.access import add_integration, issue_token
from keng.services.pushes import push_summary, pushes_of
from tests.http_server import Client, serve

NOTICE = {"title": "Thông báo lịch cắt điện", "text": "Cắt điện từ 8 giờ đến 11 giờ.", "priority": "normal"}


@dataclass
class Receiver:
    """A real aiohttp server that records every POST and answers with the next planned status (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(b) for _, b in self.received]


@asynccontextmanager
async def receiver(*statuses: int) -> AsyncIterator[Receiver]:
    r = Receiver(list(statuses))

    async def hook(request: web.Request) -> web.Response:
        r.received.append((dict(request.headers), await request.read()))
        return web.Response(status=r.statuses.pop(0) if r.statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    r.port = runner.addresses[0][1]
    try:
        yield r
    finally:
        await runner.cleanup()


@pytest.fixture
def secrets(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path)


@pytest.fixture
def client(sample_app: Keng, secrets: SecretStore, tmp_path: Path) -> Iterator[Client]:
    settings = load_settings(data_dir=str(tmp_path), environ={})
    with serve(Services(app=sample_app, secrets=secrets, settings=settings)) as c:
        yield c


def png(size: tuple[int, int] = (32, 24)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The body, verified with the reference implementation of Standard Webhooks."""
    data: dict[str, Any] = Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
    return data


async def test_feedback_from_the_app_is_triaged_replied_to_and_the_reply_reaches_the_app(
    sample_app: Keng, secrets: SecretStore, client: Client, tmp_path: Path
) -> None:
    async with receiver(500) as app_backend:
        secret = add_integration(
            sample_app,
            secrets,
            name="vn-app",
            kind="app",
            jurisdiction=["021"],
            by="admin",
            report_url=app_backend.url,
            fetch_hosts=["127.0.0.1"],
        )
        ward_staff = issue_token(sample_app, staff="tuan.do", label="t", by="admin")  # drafter of ward 00595
        auditor = issue_token(sample_app, staff="mai.le", label="t", by="admin")
        photo = png()
        body = orjson.dumps(
            {
                "category": "environment",
                "text": "Rác thải đổ trộm ở đầu ngõ 12.",
                "place": {"group": "00595-T01"},
                "photo": {"content_type": "image/png", "data": photo},
                "contact": {"name": "Nguyễn Văn An", "phone": "0912345678"},
            }
        )
        reply = client.signed("/api/v1/feedback", body, secret, "fb-1")
        assert reply.status == 202, reply.body
        outcome = reply.json()
        assert (outcome["ward"], outcome["state"], outcome["message_id"]) == ("00595", "received", "fb-1")
        fid = outcome["feedback_id"]
        again = client.signed("/api/v1/feedback", body, secret, "fb-1")
        assert (again.status, again.headers.get("idempotent-replayed"), again.json()) == (202, "true", outcome)

        # The photo and the contact are kept outside the event log.
        stored = b"".join(orjson.dumps(e.__dict__, default=str) for _, e in sample_app.read_events())
        assert b"0912345678" not in stored and photo[:200].encode() not in stored
        assert list((tmp_path / "feedback" / "photos").iterdir())

        listed = client.json("GET", "/api/v1/feedback", token=ward_staff).json()
        assert [(f["id"], f["ward"], f["group"], f["has_contact"]) for f in listed] == [
            (fid, "00595", "00595-T01", True)
        ]
        # A ward's staff act only within their wards; an auditor does not act.
        assert client.json("POST", f"/api/v1/feedback/{fid}/triage", {"ward": "00598"}, ward_staff).status == 403
        assert client.json("POST", f"/api/v1/feedback/{fid}/triage", {"ward": "00595"}, auditor).status == 403
        assert client.json("POST", f"/api/v1/feedback/{fid}/reply", {"text": "x"}, ward_staff).status == 409
        triaged = client.json("POST", f"/api/v1/feedback/{fid}/triage", {"ward": "00595"}, ward_staff)
        assert (triaged.status, triaged.json()["state"]) == (200, "triaged")
        answer = "Đã chuyển tổ môi trường xử lý trong ngày."
        replied = client.json("POST", f"/api/v1/feedback/{fid}/reply", {"text": answer}, ward_staff)
        assert (replied.status, replied.json()["state"]) == (200, "replied")

        pusher = Pusher(sample_app, secrets, backoff_base_s=0.05)
        await pusher.step()  # the app answers 500: retried
        await asyncio.sleep(0.1)
        await pusher.step()
        assert len(app_backend.received) == 2
        headers, raw = app_backend.received[-1]
        sent = verified(secret, headers, raw)
        assert (sent["type"], sent["feedback_id"], sent["message_id"], sent["text"]) == (REPLY, fid, "fb-1", answer)
        assert headers["webhook-id"] == app_backend.received[0][0]["webhook-id"], "one id across retries"
        (push,) = pushes_of(sample_app, fid)
        assert (push.status, push.attempts, push.last_error) == ("delivered", 2, "HTTP 500")

        closed = client.json("POST", f"/api/v1/feedback/{fid}/close", {"reason": "đã xử lý"}, ward_staff)
        assert (closed.status, closed.json()["state"]) == (200, "closed")
        assert client.json("GET", "/api/v1/feedback?overdue=1", token=auditor).json() == []


def test_feedback_is_refused_precisely(sample_app: Keng, secrets: SecretStore, client: Client) -> None:
    secret = add_integration(sample_app, secrets, name="vn-app", kind="app", jurisdiction=["00595"], by="admin")
    city = add_integration(sample_app, secrets, name="city", kind="city-source", jurisdiction=["021"], by="admin")
    before = sample_app.max_position()

    def send(data: dict[str, Any], key: str, with_secret: str = secret) -> Any:
        return client.signed("/api/v1/feedback", orjson.dumps(data), with_secret, key)

    base = {"category": "other", "text": "Đèn đường hỏng."}
    assert send(base, "a", city).status == 401  # a city source is not the app
    assert send({**base, "category": "weather"}, "b").status == 422
    assert send({**base, "place": {"ward": "00598"}}, "c").status == 422  # outside the app's jurisdiction
    assert send({**base, "place": {"ward": "99999"}}, "d").status == 422
    not_png = {"content_type": "image/png", "data": base64.b64encode(b"GIF89a" + b"\0" * 64).decode()}
    problem = send({**base, "photo": not_png}, "e")
    assert problem.status == 422 and "photo" in problem.json()["detail"]
    jpeg_claimed = {"content_type": "image/jpeg", "data": png()}
    assert send({**base, "photo": jpeg_claimed}, "f").status == 422
    too_wide = {"content_type": "image/png", "data": png((4097, 1))}
    assert send({**base, "photo": too_wide}, "g").status == 422
    assert sample_app.max_position() == before, "a refused message stores nothing"
    near = send({**base, "place": {"lat": 21.093, "lon": 105.735}}, "h")  # by Thượng Cát's centre
    assert (near.status, near.json()["ward"]) == (202, "00595")


async def _approved(app: Keng, **content: Any) -> UUID:
    bid = broadcasts.draft(app, by="lan.nguyen", target_areas=["00595"], channels=["portal", "app"], **NOTICE)
    broadcasts.submit(app, bid, by="lan.nguyen")
    broadcasts.approve(app, bid, by="hung.tran")
    return bid


async def test_a_bulletin_reaches_its_ward_portal_after_a_500_and_is_withdrawn_on_cancel(
    sample_app: Keng, secrets: SecretStore
) -> None:
    async with receiver(500) as portal, receiver() as other_portal:
        secret = add_integration(
            sample_app,
            secrets,
            name="portal-00595",
            kind="portal",
            jurisdiction=["00595"],
            by="admin",
            report_url=portal.url,
            fetch_hosts=["127.0.0.1"],
        )
        add_integration(
            sample_app,
            secrets,
            name="portal-00598",
            kind="portal",
            jurisdiction=["00598"],
            by="admin",
            report_url=other_portal.url,
            fetch_hosts=["127.0.0.1"],
        )
        bid = await _approved(sample_app)
        pusher = Pusher(sample_app, secrets, backoff_base_s=0.05)
        await pusher.step()
        await asyncio.sleep(0.1)
        await pusher.step()
        assert other_portal.received == [], "another ward's portal gets nothing"
        assert len(portal.received) == 2
        sent = verified(secret, *portal.received[-1])
        assert (sent["type"], sent["broadcast_id"], sent["text"]) == (BULLETIN, str(bid), NOTICE["text"])
        summary = push_summary(pushes_of(sample_app, str(bid)))
        assert (summary["delivered"], summary["targets"][0]["target"]) == (1, "portal-00595")
        assert summary["targets"][0]["attempts"] == 2 and summary["targets"][0]["wards"] == ["00595"]

        broadcasts.cancel(sample_app, bid, by="hung.tran", reason="nhầm lịch")
        await pusher.step()
        withdrawn = verified(secret, *portal.received[-1])
        assert (withdrawn["type"], withdrawn["broadcast_id"], withdrawn["reason"]) == (WITHDRAWN, str(bid), "nhầm lịch")
        # Every attempt is an event of the push.
        names = [type(e).__qualname__ for _, e in sample_app.read_events() if type(e).__qualname__.startswith("Push.")]
        assert names == ["Push.Queued", "Push.AttemptFailed", "Push.Delivered", "Push.Queued", "Push.Delivered"]


async def test_a_push_still_failing_is_withdrawn_on_cancel_and_never_sent_again(
    sample_app: Keng, secrets: SecretStore
) -> None:
    async with receiver(*[500] * 50) as app_backend:
        add_integration(
            sample_app,
            secrets,
            name="vn-app",
            kind="app",
            jurisdiction=["021"],
            by="admin",
            report_url=app_backend.url,
            fetch_hosts=["127.0.0.1"],
        )
        bid = await _approved(sample_app)
        pusher = Pusher(sample_app, secrets, backoff_base_s=0.05)
        await pusher.step()
        assert len(app_backend.received) == 1
        broadcasts.cancel(sample_app, bid, by="hung.tran", reason="nhầm lịch")
        for _ in range(3):
            await asyncio.sleep(0.06)
            await pusher.step()
        assert len(app_backend.received) == 1
        (push,) = pushes_of(sample_app, str(bid))
        assert (push.status, push.attempts, push.target_kind) == ("withdrawn", 1, "app")


async def test_the_pusher_holds_only_the_pushes_that_can_still_matter(sample_app: Keng, secrets: SecretStore) -> None:
    async with receiver() as portal:
        add_integration(
            sample_app,
            secrets,
            name="portal-00595",
            kind="portal",
            jurisdiction=["00595"],
            by="admin",
            report_url=portal.url,
            fetch_hosts=["127.0.0.1"],
        )
        ids = [await _approved(sample_app) for _ in range(6)]
        pusher = Pusher(sample_app, secrets, backoff_base_s=0.05)
        await pusher.step()
        assert len(portal.received) == 6 and len(pusher.pushes) == 6  # delivered: kept for their withdrawal
        for bid in ids[:4]:
            broadcasts.cancel(sample_app, bid, by="hung.tran", reason="nhầm lịch")
        await pusher.step()  # the four withdrawals are sent
        await pusher.step()  # and, delivered, forgotten
        assert [orjson.loads(b)["type"] for _, b in portal.received].count(WITHDRAWN) == 4
        live = {p.id for p in pushes_of(sample_app, str(ids[4])) + pushes_of(sample_app, str(ids[5]))}
        assert set(pusher.pushes) == live
        restarted = Pusher(sample_app, secrets, backoff_base_s=0.05)  # from the log: the same two
        await restarted.step()
        assert set(restarted.pushes) == live and len(portal.received) == 10  # nothing sent again
        expiry = max(p.expires_at for p in pusher.pushes.values() if p.expires_at is not None)
        pusher.forget_closed(expiry + KEEP_DELIVERED)
        assert pusher.pushes == {}


async def test_pushes_stop_at_the_bulletins_expiry(sample_app: Keng, secrets: SecretStore) -> None:
    from datetime import timedelta

    async with receiver(*[503] * 50) as portal:
        add_integration(
            sample_app,
            secrets,
            name="portal-00595",
            kind="portal",
            jurisdiction=["00595"],
            by="admin",
            report_url=portal.url,
            fetch_hosts=["127.0.0.1"],
        )
        await _approved(sample_app)
        pusher = Pusher(sample_app, secrets, backoff_base_s=0.05)
        await pusher.step()
        (push,) = pusher.pushes.values()
        assert push.expires_at is not None
        assert pusher.due(push.expires_at + timedelta(seconds=1)) == []
        stored = sample_app.load(Push, push.id, "push")
        assert (stored.status, stored.attempts) == ("expired", 1)


def test_i_heard_it_confirmations_are_recorded(sample_app: Keng, secrets: SecretStore, client: Client) -> None:
    secret = add_integration(sample_app, secrets, name="vn-app", kind="app", jurisdiction=["00595"], by="admin")
    bid = broadcasts.draft(sample_app, by="lan.nguyen", target_areas=["00595"], **NOTICE)
    elsewhere = broadcasts.draft(sample_app, by="lan.nguyen", target_areas=["00598"], **NOTICE)
    body = {"broadcast_id": str(bid), "place": {"group": "00595-T02"}, "count": 3}
    reply = client.signed("/api/v1/heard", orjson.dumps(body), secret, "h-1")
    assert reply.status == 202, reply.body
    assert reply.json() == {"broadcast_id": str(bid), "message_id": "h-1", "ward": "00595", "group": "00595-T02",
                            "count": 3}  # fmt: skip
    assert client.signed("/api/v1/heard", orjson.dumps({"broadcast_id": str(elsewhere)}), secret, "h-2").status == 404
    _ = time.time()


def test_the_read_models_count_heard_confirmations_and_the_response_rate(
    sample_app: Keng, secrets: SecretStore, client: Client
) -> None:
    from datetime import timedelta

    from keng.projections import kpi
    from keng.projections.facts import facts_of
    from keng.projections.fold import fold

    class Docs(dict[tuple[str, str], Any]):
        def get(self, kind: str, key: str) -> Any:  # type: ignore[override]
            return super().get((kind, key))

        def put(self, kind: str, key: str, doc: Any) -> None:
            self[(kind, key)] = doc

        def note(self, row: Any) -> None:
            pass

    secret = add_integration(sample_app, secrets, name="vn-app", kind="app", jurisdiction=["021"], by="admin")
    bid = broadcasts.draft(sample_app, by="lan.nguyen", target_areas=["00595"], **NOTICE)
    for key, count in (("h-1", 2), ("h-2", 5)):
        body = orjson.dumps({"broadcast_id": str(bid), "place": {"ward": "00595"}, "count": count})
        assert client.signed("/api/v1/heard", body, secret, key).status == 202
    for key in ("f-1", "f-2"):
        body = orjson.dumps({"category": "security", "text": "Mất trộm xe máy.", "place": {"ward": "00595"}})
        assert client.signed("/api/v1/feedback", body, secret, key).status == 202
    first = sorted(client.json("GET", "/api/v1/feedback", token=issue_token(sample_app, staff="minh.pham", label="t",
                                                                            by="admin")).json(),
                   key=lambda f: f["message_id"])[0]  # fmt: skip
    from keng.services import feedback

    feedback.triage(sample_app, UUID(first["id"]), ward="00595", by="minh.pham")
    feedback.reply(sample_app, UUID(first["id"]), text="Công an phường đã tiếp nhận.", by="minh.pham")
    docs = Docs()
    for fact in facts_of(sample_app.read_events()):
        fold(fact, docs)
    assert docs.get("heard", str(bid)) == {"total": 7, "wards": {"00595": 7}}
    from keng.domain.ids import area_id

    # Coverage as residents report it: 7 confirmations of 1 broadcast, kept by the ward's unit (codes are reused).
    heard_ward = docs.get("heard-ward", str(area_id("00595")))
    assert (heard_ward["confirmations"], heard_ward["broadcasts"]) == (7, 1) and heard_ward["last_at"]
    kpi_doc = docs.get("kpi", kpi.KEY)
    later = (sample_app.clock() + timedelta(days=3)).isoformat()
    rate = kpi.values(kpi_doc, later)["feedback_response_rate"]
    assert (rate["numerator"], rate["denominator"], rate["value"]) == (1, 2, 50.0)


def test_heard_confirmations_feed_the_coverage_report(sample_app: Keng, secrets: SecretStore, client: Client) -> None:
    from keng.projections import queries
    from keng.runtime.workers.readmodels import caught_up

    secret = add_integration(sample_app, secrets, name="vn-app", kind="app", jurisdiction=["021"], by="admin")
    for n, key in enumerate(("c-1", "c-2")):
        bid = broadcasts.draft(sample_app, by="lan.nguyen", target_areas=["00595"], **NOTICE)
        body = orjson.dumps({"broadcast_id": str(bid), "place": {"ward": "00595"}, "count": 3 + n})
        assert client.signed("/api/v1/heard", body, secret, key).status == 202
    store = caught_up(sample_app)
    try:
        rows = {r["code"]: r for r in queries.coverage(store) if r["level"] == "ward"}
    finally:
        store.close()
    assert (rows["00595"]["heard_confirmations"], rows["00595"]["heard_broadcasts"]) == (7, 2)
    others = [r["heard_confirmations"] for code, r in rows.items() if code != "00595"]
    assert rows["00595"]["heard_last_at"] and others and set(others) == {0}
