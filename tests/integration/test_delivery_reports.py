"""Delivery reports to the city source system: queued when its broadcast ends, POSTed signed, retried with backoff
until a 2xx, every attempt recorded. The receiver is a real HTTP server on a loopback port."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import jsonschema
import orjson
import pytest
from aiohttp import web

from keng.adapters.secrets import SecretStore
from keng.adapters.signing import verify
from keng.adapters.store.access import record_inbound
from keng.adapters.store.app import Keng
from keng.domain.report import DeliveryReport, backoff_s, report_id
from keng.runtime.http.openapi import openapi_document
from keng.runtime.workers.reporter import Reporter
from keng.services import broadcasts
from keng.services.access import add_integration
from tests.outbound_servers import quiet


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert backoff_s(30) == 300.0


async def test_a_cancelled_city_message_is_reported_after_a_failed_attempt(sample_app: Keng, tmp_path: Path) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    answers = [503, 200]

    async def city(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=answers.pop(0))

    receiver = web.Application()
    receiver.router.add_post("/reports", city)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    secrets = SecretStore(tmp_path)
    secret = add_integration(
        sample_app,
        secrets,
        name="city-source",
        kind="city-source",
        jurisdiction=["021"],
        by="admin",
        report_url=f"http://127.0.0.1:{port}/reports",
        fetch_hosts=["127.0.0.1"],  # a loopback receiver must be allowlisted (the outbound guard)
    )
    bid = _city_broadcast(sample_app, secrets)
    broadcasts.cancel(sample_app, bid, by="hung.tran", reason="trùng lặp")
    reporter = Reporter(sample_app, secrets, poll_s=0.05, backoff_base_s=0.1)
    task = asyncio.create_task(reporter.run())
    try:
        deadline = time.monotonic() + 15
        while len(received) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await runner.cleanup()
    assert len(received) == 2
    headers, body = received[-1]
    verify([secret], headers, body, now=time.time())
    report = orjson.loads(body)
    assert (report["message_id"], report["outcome"], report["broadcast_id"]) == ("city-77", "cancelled", str(bid))
    # As the OpenAPI document's `webhooks` describe it: the body by its schema, the signature by its headers.
    document = openapi_document()
    described = document["webhooks"]["deliveryReport"]["post"]
    schema = {**described["requestBody"]["content"]["application/json"]["schema"], "components": document["components"]}
    jsonschema.validate(report, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    schemes = document["components"]["securitySchemes"]
    assert {schemes[name]["name"] for name in described["security"][0]} <= {h.lower() for h in headers}
    stored = sample_app.load(DeliveryReport, report_id(bid, "cancelled"), "report")
    assert (stored.delivered, stored.attempts, stored.last_error) == (True, 2, "HTTP 503")
    # Nothing is queued twice, also by a restarted reporter.
    assert Reporter(sample_app, secrets).queue_new() == 0


async def test_a_report_url_on_loopback_is_refused_unless_allowlisted(sample_app: Keng, tmp_path: Path) -> None:
    secrets = SecretStore(tmp_path)
    with quiet() as receiver:
        add_integration(
            sample_app,
            secrets,
            name="city-source",
            kind="city-source",
            jurisdiction=["021"],
            by="admin",
            report_url=f"http://127.0.0.1:{receiver.port}/reports",
        )
        bid = _city_broadcast(sample_app, secrets)
        broadcasts.cancel(sample_app, bid, by="hung.tran", reason="trùng lặp")
        reporter = Reporter(sample_app, secrets)
        assert reporter.queue_new() == 1
        for report in reporter.due(datetime.now(UTC)):
            await reporter.send(report)
        assert receiver.connections() == 0
    stored = sample_app.load(DeliveryReport, report_id(bid, "cancelled"), "report")
    assert (stored.delivered, stored.attempts, stored.last_error) == (False, 1, "address not allowed")


def _city_broadcast(app: Keng, secrets: SecretStore) -> UUID:
    from keng.adapters.signing import Verified
    from keng.adapters.store.access import VerifiedInbound
    from keng.domain.access import Integration, integration_id

    integration = app.load(Integration, integration_id("city-source"), "integration")
    verified = VerifiedInbound(integration, Verified("city-77", int(time.time()), integration.secrets[0]), "0" * 64)
    actor = verified.actor(app.area_registry().in_force(app.clock()))
    item = app.prepare_broadcast(
        actor,
        source_kind="city-source",
        source_ref="city-77",
        title="Thông báo",
        text="Nội dung",
        priority="normal",
        target_areas=["00595"],
    )
    item.submit(by=actor)
    app.save_new(record_inbound("city-source", verified, {"broadcast_id": str(item.id)}), item, what="test")
    return item.id


def test_a_poll_reads_only_what_is_new_in_the_log_not_everything_since_the_last_report(
    sample_app: Keng, tmp_path: Path
) -> None:
    """The reporter (and the push worker) poll every second for topics that seldom come. Each poll reads on from the
    newest position it saw, not from its last match: reading on from the last match rescanned the whole log every
    second, a cost that grew with the log (12 ms a poll at 48,000 events on the development machine, five such reads
    a second in `keng serve`)."""
    from keng.runtime.workers.pusher import Pusher

    secrets = SecretStore(tmp_path)
    reporter, pusher = Reporter(sample_app, secrets), Pusher(sample_app, secrets)
    for n in range(3):  # events no report or push follows
        broadcasts.draft(
            sample_app, by="lan.nguyen", title=f"Tin {n}", text="Thông báo.", priority="normal", target_areas=["00595"]
        )
    assert reporter.queue_new() == 0 and reporter.due(datetime.now(UTC)) == []
    pusher.queue_new()
    top = sample_app.max_position()
    assert reporter.position == reporter.report_position == pusher.position == pusher.push_position == top
    bid = broadcasts.draft(
        sample_app, by="lan.nguyen", title="Tin", text="Thông báo.", priority="normal", target_areas=["00595"]
    )
    broadcasts.cancel(sample_app, bid, by="lan.nguyen", reason="nhầm")  # a final event after the positions read
    reporter.queue_new()
    assert reporter.position == sample_app.max_position() > top


async def test_a_dispatch_run_worker_holding_the_lead_sends_the_reports(
    sample_app: Keng, store_url: str, tmp_path: Path
) -> None:
    """`keng dispatch run` is a worker like `keng serve`: alone on the store it holds slot 0, the lead, and so sends
    the delivery reports (docs/dispatch.md, Several workers on one store)."""
    received: list[bytes] = []

    async def city(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=200)

    receiver = web.Application()
    receiver.router.add_post("/reports", city)
    runner = web.AppRunner(receiver)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    secrets = SecretStore(tmp_path)
    add_integration(
        sample_app,
        secrets,
        name="city-source",
        kind="city-source",
        jurisdiction=["021"],
        by="admin",
        report_url=f"http://127.0.0.1:{port}/reports",
        fetch_hosts=["127.0.0.1"],
    )
    bid = _city_broadcast(sample_app, secrets)
    broadcasts.cancel(sample_app, bid, by="hung.tran", reason="trùng lặp")
    worker = subprocess.Popen(
        [sys.executable, "-m", "keng.runtime.cli", "--data", str(tmp_path), "--store", store_url,
         "dispatch", "run", "--embedded-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline and worker.poll() is None:
            await asyncio.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(worker.communicate, timeout=30)
        await runner.cleanup()
    assert len(received) == 1, err.decode()[-3000:]
    report = orjson.loads(received[0])
    assert (report["outcome"], report["broadcast_id"]) == ("cancelled", str(bid))
